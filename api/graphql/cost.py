"""The cost limit: a static estimate of the work a query asks for, checked before it runs.

Depth, token and alias limits do not bound work: `agentGroups { members { groups { members
... } } }` stays within all three and still grows as the group size to the sixth power. So the
served schema also estimates, before execution, how many fields the answer will resolve, and
rejects an operation over `BUDGET` with the error code QUERY_TOO_COSTLY (the message names the
limit and the computed cost; `extensions` carries both).

The model (every figure here is a documented default, not a measurement of the data):

- Every field the answer resolves costs 1 per occurrence in the answer, scalars included; a
  root mutation field (a command, a write, a wait for the views) costs `MUTATION_FIELD` more.
- A list field multiplies the cost of its selections by its size: the page size for
  paginated lists (`conversations(first:)` for its edges, `events(first:)` for its events:
  the argument's value, its default when absent or null, clamped to the resolver's maximum),
  else the declared expected size in `LIST_SIZES` (`DEFAULT_LIST_SIZE` for a list not named
  there). Nested lists multiply: members of groups of members...
- Sizes are read from the request's variables when an argument is a variable (the check
  runs after validation, where the variables are known); a variable that is absent takes its
  declared default, one that is not an integer counts as the maximum.
- Fields are merged by response key as execution merges them, so a fragment repeating fields
  the query already asks does not count twice; @skip/@include are ignored (counted as included).
- Introspection lists are sized from the schema itself (its number of types, the mean number
  of fields per type, ...), so GraphiQL's introspection query passes and deeply nested ones
  (`types { fields { type { fields { type ... } } } } }`) do not.

`BUDGET` is 150,000, about twice the heaviest legitimate query: estimated (tests/integration/
test_query_cost.py lists them) are the web front end's workspace list `conversations(first: 50)`
with assignee, groups, mailbox and messages at 1,256; `agentWorkloads` and `dailyTotals` (1,000
agents) at 3,001; `mailboxes` with every field at 481; `routingRules` with mailboxes, groups and
their members at 27,601; the tests' page with every nested field (assignee's groups and their
members, groups' members, rule, contact, messages with attachments, assignments) at 15,956 for
`first: 50` and 63,806 for `first: 200`; GraphiQL's introspection query at 71,060. The report's
six-level `agentGroups { members { groups { ... } } }` is estimated at 2.1 x 10^13, and even
`agentGroups { members { groups { members { name } } } }` (212,101) is refused.

Declared sizes are expectations, not bounds: a group of 1,000 members where 20 are expected
would let an accepted query build 50 times its estimate. So `BudgetedExecutor` also counts, while
the answer is built, the fields that its lists actually hold (each list's length times the
fields asked of its items) and stops the answer with QUERY_TOO_COSTLY once that count passes the
budget. Accepted answers that are still large run off the server's event loop (offload.py).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable, Iterator, Mapping, Sized
from dataclasses import dataclass
from typing import Any

from graphql import (
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLInterfaceType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    NullValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    get_nullable_type,
    is_list_type,
    is_object_type,
)
from graphql.language import DocumentNode, ValueNode
from strawberry.extensions import SchemaExtension

from api.graphql.conversations import MAX_PAGE as CONVERSATIONS_MAX_PAGE
from api.graphql.executor import FastExecutor
from api.graphql.query import MAX_PAGE as EVENTS_MAX_PAGE

BUDGET = 150_000
CODE = "QUERY_TOO_COSTLY"
MUTATION_FIELD = 100  # a command: a write and a bounded wait for the views its answer reads
DEFAULT_LIST_SIZE = 20

MAX_DEPTH = 32  # never reached by a valid document (the depth limit is 12): a guard for unvalidated ones
PAGE = -1  # a list sized by the page its paginated parent field asked for


@dataclass(frozen=True)
class Page:
    """A paginated field: the argument that sizes its page, its default and its maximum."""

    argument: str
    default: int
    maximum: int


PAGINATED: dict[tuple[str, str], Page] = {
    ("Query", "conversations"): Page("first", 50, CONVERSATIONS_MAX_PAGE),
    ("Query", "events"): Page("first", 100, EVENTS_MAX_PAGE),
}

# Expected sizes of the lists that have no page argument (type name, field name): a desk of
# 1,000 agents in groups of about 20, an agent in up to 5 groups, a conversation with up to
# 10 messages (2 attachments each) routed to 2 groups.
LIST_SIZES: dict[tuple[str, str], int] = {
    ("ConversationConnection", "edges"): PAGE,
    ("EventPage", "events"): PAGE,
    ("Query", "agents"): 1000,
    ("Query", "agentWorkloads"): 1000,
    ("Query", "dailyTotals"): 1000,
    ("Query", "agentGroups"): 100,
    ("Query", "accounts"): 1000,
    ("Query", "routingRules"): 100,
    ("Query", "mailboxes"): 20,
    ("Query", "quarantine"): 100,
    ("Query", "apiTokens"): 100,
    ("Query", "sidebarSources"): 20,
    ("Query", "auditSeals"): 100,
    ("AgentGroup", "members"): 20,
    ("Agent", "groups"): 5,
    ("Conversation", "messages"): 10,
    ("Conversation", "groups"): 2,
    ("Conversation", "assignments"): 5,
    ("Conversation", "sidebar"): 5,
    ("SidebarSection", "records"): 10,
    ("Message", "attachments"): 2,
    ("RoutingRule", "mailboxes"): 5,
    ("RoutingRule", "groups"): 5,
    ("RoutingRule", "conditions"): 10,
    ("BindMailboxPayload", "attempts"): 20,
    # a payload's userErrors: a handful at most
    **{(payload, "userErrors"): 5 for payload in (
        "AccountPayload", "AgentGroupPayload", "AgentPayload", "ApiTokenPayload", "BindMailboxPayload",
        "ContactPayload", "ConversationPayload", "DeletePayload", "MailboxPayload", "RoutingRulePayload",
        "SyncPayload", "ReplyPayload", "RecordPayload", "SidebarSourcePayload")},
}


def introspection_sizes(schema: GraphQLSchema) -> dict[tuple[str, str], int]:
    """Introspection lists sized from the schema: every type, and the mean (rounded up) number
    of fields, arguments, input fields, enum values of a type that has any."""
    types = list(schema.type_map.values())

    def mean(counts: Iterable[int]) -> int:
        found = [c for c in counts if c]
        return max(1, math.ceil(sum(found) / len(found))) if found else 1

    fields = [list(t.fields.values()) for t in types if isinstance(t, GraphQLObjectType | GraphQLInterfaceType)]
    return {
        ("__Schema", "types"): len(types),
        ("__Schema", "directives"): len(schema.directives),
        ("__Type", "fields"): mean(len(f) for f in fields),
        ("__Type", "inputFields"): mean(len(getattr(t, "fields", {})) for t in types
                                        if t.__class__.__name__ == "GraphQLInputObjectType"),
        ("__Type", "enumValues"): mean(len(getattr(t, "values", {})) for t in types
                                       if t.__class__.__name__ == "GraphQLEnumType"),
        ("__Type", "interfaces"): 1,
        ("__Type", "possibleTypes"): 1,
        ("__Field", "args"): mean(len(f.args) for fs in fields for f in fs),
        ("__Directive", "args"): mean(len(d.args) for d in schema.directives),
        ("__Directive", "locations"): 1,
    }


class CostModel:
    """Estimates an operation's cost against one schema (see the module's docstring). Estimates
    are remembered by query text, operation name and the values of the variables that size its
    pages, so that a request's two looks (heavy lane or not, then the limit) and a front end's
    repeated queries cost one walk."""

    REMEMBERED = 1024  # estimates kept; all are forgotten when there are more

    def __init__(self, schema: GraphQLSchema, budget: int = BUDGET) -> None:
        self.schema = schema
        self.budget = budget
        self.sizes = {**introspection_sizes(schema), **LIST_SIZES}
        self._sizing: dict[tuple[str, str | None], tuple[str, ...]] = {}  # the variables an estimate read
        self._estimates: dict[tuple[Any, ...], int] = {}

    def check(self, document: DocumentNode, operation_name: str | None,
              variables: Mapping[str, Any] | None, query: str | None = None) -> GraphQLError | None:
        """The QUERY_TOO_COSTLY error when the operation's estimate is over the budget."""
        cost = self.cost(query, document, operation_name, variables)
        if cost <= self.budget:
            return None
        return GraphQLError(
            f"query cost {cost} is over the limit of {self.budget}: ask for smaller pages (first) or "
            "fewer nested lists (each field counts once per item of the lists above it)",
            extensions={"code": CODE, "cost": cost, "limit": self.budget})

    def cost(self, query: str | None, document: DocumentNode, operation_name: str | None,
             variables: Mapping[str, Any] | None) -> int:
        """estimate(), remembered when the query text is known."""
        if query is None:
            return self.estimate(document, operation_name, variables)
        sizing = self._sizing.get((query, operation_name))
        key: tuple[Any, ...] | None = None
        if sizing is not None:
            key = _key(query, operation_name, sizing, variables)
            try:
                return self._estimates[key]
            except KeyError:
                pass
            except TypeError:  # a variable that is not a plain value: not remembered
                key = None
        read: set[str] = set()
        cost = self.estimate(document, operation_name, variables, read)
        if len(self._estimates) >= self.REMEMBERED:
            self._estimates.clear()
            self._sizing.clear()
        names = self._sizing.setdefault((query, operation_name), tuple(sorted(read)))
        if key is None:
            key = _key(query, operation_name, names, variables)
        with contextlib.suppress(TypeError):
            self._estimates[key] = cost
        return cost

    def estimate(self, document: DocumentNode, operation_name: str | None,
                 variables: Mapping[str, Any] | None, read: set[str] | None = None) -> int:
        """The operation's cost; `read` collects the names of the variables it depends on."""
        operation = _operation(document, operation_name)
        if operation is None:  # execution reports the missing or ambiguous operation
            return 0
        root = self.schema.get_root_type(operation.operation)
        if root is None:
            return 0
        walk = _Walk(self, document, operation, dict(variables or {}), read if read is not None else set())
        extra = MUTATION_FIELD if operation.operation is OperationType.MUTATION else 0
        return walk.selections([operation.selection_set], root, 1, None, extra)


_ABSENT = object()


def _key(query: str, operation_name: str | None, names: tuple[str, ...],
         variables: Mapping[str, Any] | None) -> tuple[Any, ...]:
    """What an estimate depends on: the text, the operation, the sizing variables' values (with
    their types: 1 and True are equal keys otherwise)."""
    values = variables or {}
    return (query, operation_name, *((type(v), v) for v in (values.get(name, _ABSENT) for name in names)))


def _operation(document: DocumentNode, name: str | None) -> OperationDefinitionNode | None:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if name is None:
        return operations[0] if len(operations) == 1 else None
    return next((o for o in operations if o.name is not None and o.name.value == name), None)


class _Walk:
    def __init__(self, model: CostModel, document: DocumentNode, operation: OperationDefinitionNode,
                 variables: dict[str, Any], read: set[str]) -> None:
        self.model = model
        self.read = read
        self.fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
        self.variables = variables
        self.defaults = {v.variable.name.value: v.default_value for v in operation.variable_definitions or ()
                         if v.default_value is not None}

    def collect(self, selection_sets: list[SelectionSetNode], parent: GraphQLObjectType | GraphQLInterfaceType,
                into: dict[str, list[FieldNode]], seen: set[str]) -> None:
        """Fields by response key, through fragments, as execution collects them."""
        for selection_set in selection_sets:
            for selection in selection_set.selections:
                if isinstance(selection, FieldNode):
                    key = selection.alias.value if selection.alias else selection.name.value
                    into.setdefault(key, []).append(selection)
                elif isinstance(selection, InlineFragmentNode):
                    self.collect([selection.selection_set], parent, into, seen)
                elif isinstance(selection, FragmentSpreadNode):
                    name = selection.name.value
                    fragment = self.fragments.get(name)
                    if fragment is not None and name not in seen:
                        seen.add(name)
                        self.collect([fragment.selection_set], parent, into, seen)

    def selections(self, selection_sets: list[SelectionSetNode], parent: Any, multiplier: int,
                   page: int | None, extra: int = 0, depth: int = 0) -> int:
        if not isinstance(parent, GraphQLObjectType | GraphQLInterfaceType) or depth > MAX_DEPTH:
            return 0
        fields: dict[str, list[FieldNode]] = {}
        self.collect(selection_sets, parent, fields, set())
        total = 0
        for nodes in fields.values():
            name = nodes[0].name.value
            total += multiplier * (1 + extra)
            if name.startswith("__") and name not in ("__schema", "__type"):
                continue  # __typename
            definition = _field(self.model.schema, parent, name)
            if definition is None:
                continue
            children = [n.selection_set for n in nodes if n.selection_set is not None]
            if not children:
                continue
            key = (parent.name, name)
            paginated = PAGINATED.get(key)
            inner_page = self.page_size(nodes[0], paginated) if paginated else page
            size = 1
            if is_list_type(get_nullable_type(definition.type)):
                declared = self.model.sizes.get(key, DEFAULT_LIST_SIZE)
                size = (page if page is not None else DEFAULT_LIST_SIZE) if declared == PAGE else declared
            total += self.selections(children, get_named_type(definition.type), multiplier * size, inner_page,
                                     depth=depth + 1)
        return total

    def page_size(self, node: FieldNode, page: Page) -> int:
        argument = next((a for a in node.arguments or () if a.name.value == page.argument), None)
        value: Any = page.default if argument is None else self.value(argument.value, page)
        if value is None:
            value = page.default
        if not isinstance(value, int) or isinstance(value, bool):
            return page.maximum
        return min(max(value, 0), page.maximum)

    def value(self, node: ValueNode, page: Page) -> Any:
        if isinstance(node, IntValueNode):
            return int(node.value)
        if isinstance(node, NullValueNode):
            return None
        if isinstance(node, VariableNode):
            name = node.name.value
            self.read.add(name)
            if name in self.variables:
                return self.variables[name]
            default = self.defaults.get(name)
            return page.default if default is None else self.value(default, page)
        return page.maximum


def _field(schema: GraphQLSchema, parent: GraphQLObjectType | GraphQLInterfaceType, name: str) -> Any:
    if name == "__schema":
        return _introspection(schema, "__schema")
    if name == "__type":
        return _introspection(schema, "__type")
    return parent.fields.get(name)


def _introspection(schema: GraphQLSchema, name: str) -> Any:
    from graphql.type.introspection import SchemaMetaFieldDef, TypeMetaFieldDef

    return SchemaMetaFieldDef if name == "__schema" else TypeMetaFieldDef


class CostLimit(SchemaExtension):
    """Checks the cost after validation, before execution, where the variables are known: a
    query over the budget is answered with its QUERY_TOO_COSTLY error alone."""

    def __init__(self, model: CostModel) -> None:
        self.model = model

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        if context.result is None and context.graphql_document is not None:
            error = self.model.check(context.graphql_document, context.operation_name, context.variables,
                                     context.query)
            if error is not None:
                context.result = ExecutionResult(data=None, errors=[error])
        yield


class BudgetedExecutor(FastExecutor):
    """The executor that holds the answer to the budget while it is built, for data larger than
    the declared sizes (a group of 1,000 members where 20 are expected): every list completed
    adds its length times the fields asked of each item; past the budget, the lists still to
    complete fail with QUERY_TOO_COSTLY instead of being built. The count is a lower bound of
    the fields resolved (objects between lists are not counted), so no answer that fits the
    budget is stopped."""

    budget = BUDGET

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.listed = 0

    def complete_iterable_value(self, item_type: Any, field_details_list: Any, info: Any, path: Any,
                                items: Iterable[Any], position_context: Any) -> Any:
        if isinstance(items, Sized):
            inner = item_type.of_type if isinstance(item_type, GraphQLNonNull) else item_type
            width = len(self.collect_subfields(inner, field_details_list)[0]) if is_object_type(inner) else 1
            self.listed += len(items) * max(width, 1)
            if self.listed > self.budget:
                raise GraphQLError(
                    f"answer over the limit of {self.budget}: its lists hold more than {self.budget} fields, "
                    "the data being larger than the cost model expects; ask for fewer nested lists",
                    extensions={"code": CODE, "limit": self.budget})
        return super().complete_iterable_value(item_type, field_details_list, info, path, items, position_context)
