"""The served schema: the contract's built parts, with request limits.

Limits, all checked before anything is resolved: at most 5,000 tokens, a depth of 12, 50
aliases, and a cost of 150,000 (api/graphql/cost.py: every field the answer would resolve
counts 1, multiplied by the sizes of the lists above it: the page asked for where a list is
paginated (`first`), else a declared expected size, e.g. 20 members per group, 5 groups per
agent, 10 messages per conversation, 1,000 agents; over the budget, the answer is one error
with extensions.code QUERY_TOO_COSTLY naming the limit and the computed cost; lists that turn
out larger than declared are counted again while the answer is built, against the same budget).
Operations estimated at 5,000 or more run on the heavy lane, an event loop in a thread of its
own, so that large answers do not hold up other clients (api/graphql/offload.py).

Errors are logged by operation name, code, path and location: never the query text or the
variables; an exception nobody meant to raise (a database driver's error) reaches the client as
"internal error" with extensions.code INTERNAL_ERROR, without its text (api/graphql/errors.py).
Text that a database cannot hold (U+0000, unpaired surrogates), in any string literal, variable
or cursor, is refused as BAD_USER_INPUT before anything runs (api/graphql/guards.py).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterable
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import (
          AddValidationRules,
          MaxTokensLimiter,
          ParserCache,
          ValidationCache,
          max_aliases,
          query_depth_limiter,
)
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.graphql import OperationType

from api.graphql import errors
from api.graphql.assignment import AssignmentMutations, AssignmentQuery
from api.graphql.audit import AuditMutations, AuditQuery
from api.graphql.conversations import ConversationQuery
from api.graphql.cost import BudgetedExecutor, CostLimit, CostModel
from api.graphql.guards import StorableInput, StorableText
from api.graphql.mutations_admin import AdminMutations
from api.graphql.mutations_mailboxes import MailboxMutations
from api.graphql.offload import HEAVY_LANE, is_heavy
from api.graphql.query import Query as AdminQuery
from api.graphql.replies import ReplyMutations
from api.graphql.sidebar import SidebarMutations, SidebarQuery
from api.graphql.subscriptions import Subscription
from api.graphql.tokens import TokenMutations, TokenQuery

Query = merge_types("Query", (AdminQuery, ConversationQuery, AssignmentQuery, TokenQuery, SidebarQuery, AuditQuery))
Mutation = merge_types(
    "Mutation", (MailboxMutations, AdminMutations, AssignmentMutations, TokenMutations, ReplyMutations,
                 SidebarMutations, AuditMutations))

# The limits' validation rules are made once, not per request (as QueryDepthLimiter and
# MaxAliasesLimiter would), so that a document validated before (same text, same rules) is not
# validated again: parsing and validating a workspace page cost about a tenth of answering it.
LIMITS = (query_depth_limiter.create_validator(max_depth=12, should_ignore=None),
          max_aliases.create_validator(max_alias_count=50),
          StorableText)
CACHED_DOCUMENTS = 256  # distinct query texts kept parsed and validated (LRU)
COST: CostModel  # made from the schema below, used by every request's CostLimit


class Schema(strawberry.Schema):
    """strawberry's Schema; operations estimated heavy run on the heavy lane (api/graphql/offload.py),
    errors are logged without what the client sent and internal ones answered without their text
    (api/graphql/errors.py)."""

    def process_errors(self, errors_: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        """Instead of strawberry's, which logs str(error): the message and an excerpt of the query."""
        operation = None
        if execution_context is not None:
            try:
                operation = execution_context.operation_name
            except Exception:  # a document that did not parse has no operation
                operation = None
        errors.log_errors(errors_, operation)

    async def execute(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> ExecutionResult:
        run = super().execute(query, variable_values, context_value, root_value, operation_name,
                              allowed_operation_types, operation_extensions)
        result = await HEAVY_LANE.run(run) if is_heavy(COST, query, operation_name, variable_values) else await run
        if result.errors:  # logged as they were (process_errors); answered without internals
            result.errors = errors.masked(result.errors)
        return result

    async def stream(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        operation_extensions: dict[str, Any] | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
    ) -> AsyncGenerator[Any, None]:
        """The subscriptions' socket (graphql-transport-ws): subscriptions only, queries and
        mutations being served over HTTP (heavy lane, read-your-writes); each result's errors
        answered without internals, as over HTTP."""
        results = await super().stream(query, variable_values, context_value, root_value, operation_name,
                                       operation_extensions, allowed_operation_types or (OperationType.SUBSCRIPTION,))

        async def masked() -> AsyncGenerator[Any, None]:
            try:
                async for result in results:
                    if isinstance(result, ExecutionResult) and result.errors:
                        result.errors = errors.masked(result.errors)
                    yield result
            finally:
                await results.aclose()

        return masked()


schema = Schema(
    query=Query,
    mutation=Mutation,
    subscription=Subscription,
    # FastExecutor (attribute-only fields without graphql-core's full path per field), holding the answer to the budget
    execution_context_class=BudgetedExecutor,
    extensions=[
        lambda: MaxTokensLimiter(max_token_count=5000),
        lambda: AddValidationRules(list(LIMITS)),
        lambda: ParserCache(maxsize=CACHED_DOCUMENTS),
        lambda: ValidationCache(maxsize=CACHED_DOCUMENTS),
        StorableInput,  # after validation, with the variables
        lambda: CostLimit(COST),  # likewise
    ],
)
COST = CostModel(schema._schema)
errors.redact_access_log()  # uvicorn's access log: the path without its query string
