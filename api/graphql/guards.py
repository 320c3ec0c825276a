"""Text the databases can hold, checked for every request before anything runs.

PostgreSQL's text cannot hold U+0000 (psycopg refuses it with its own message), and no
UTF-8 database can hold an unpaired surrogate (U+D800..U+DFFF, which JSON's "\\ud800" escapes
produce). Instead of letting each resolver find out from the driver, every string a request
brings is checked here, once, for every field and both backends: string literals in the
document by a validation rule (cached with the document's other rules), the variables (any
depth, keys of JSON objects too) and the conversation cursors the API decodes from them by
the extension, before anything runs. Either way the answer is a GraphQL error with
extensions.code BAD_USER_INPUT that names where the character is.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from graphql import (
    ArgumentNode,
    DocumentNode,
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    StringValueNode,
    ValidationRule,
    VariableNode,
)
from strawberry.extensions import SchemaExtension

from projections.conversation_queries import decode_cursor

BAD_INPUT = "BAD_USER_INPUT"
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
PROBLEM = "may not contain U+0000 (NUL) or an unpaired surrogate (U+D800..U+DFFF)"


def unstorable(text: str) -> bool:
    return _UNSTORABLE.search(text) is not None


def bad_input(message: str, nodes: Any = None) -> GraphQLError:
    return GraphQLError(message, nodes, extensions={"code": BAD_INPUT})


class StorableText(ValidationRule):
    """Every string literal of the document (arguments, input objects, variable defaults)."""

    def enter_string_value(self, node: StringValueNode, *_: Any) -> None:
        if unstorable(node.value):
            self.report_error(bad_input(f"a string value {PROBLEM}", node))


def unstorable_variable(variables: Mapping[str, Any] | None) -> str | None:
    """Where the first unstorable character of the variables is, e.g. "$filter.customerEmail"."""

    def find(value: Any, where: str) -> str | None:
        if isinstance(value, str):
            return where if unstorable(value) else None
        if isinstance(value, Mapping):
            for key, item in value.items():
                if isinstance(key, str) and unstorable(key):
                    return f"{where} (a key)"
                found = find(item, f"{where}.{key}")
                if found:
                    return found
        elif isinstance(value, list | tuple):
            for index, item in enumerate(value):
                found = find(item, f"{where}[{index}]")
                if found:
                    return found
        return None

    for name, value in (variables or {}).items():
        found = find(value, f"${name}") if isinstance(name, str) and not unstorable(name) else "a variable's name"
        if found:
            return found
    return None


def _operation(document: DocumentNode, name: str | None) -> OperationDefinitionNode | None:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if name is None:
        return operations[0] if len(operations) == 1 else None
    return next((o for o in operations if o.name is not None and o.name.value == name), None)


def _root_fields(document: DocumentNode, selection_set: SelectionSetNode, seen: set[str]) -> Iterator[FieldNode]:
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            yield selection
        elif isinstance(selection, InlineFragmentNode):
            yield from _root_fields(document, selection.selection_set, seen)
        elif isinstance(selection, FragmentSpreadNode) and selection.name.value not in seen:
            seen.add(selection.name.value)
            fragment = fragments.get(selection.name.value)
            if fragment is not None:
                yield from _root_fields(document, fragment.selection_set, seen)


def unstorable_cursor(document: DocumentNode, operation_name: str | None,
                      variables: Mapping[str, Any] | None) -> FieldNode | None:
    """A `conversations(after:)` cursor that decodes to text the database cannot hold."""
    operation = _operation(document, operation_name)
    if operation is None:
        return None
    defaults = {v.variable.name.value: v.default_value for v in operation.variable_definitions or ()}
    for field in _root_fields(document, operation.selection_set, set()):
        if field.name.value != "conversations":
            continue
        argument: ArgumentNode | None = next((a for a in field.arguments or () if a.name.value == "after"), None)
        if argument is None:
            continue
        value: Any = None
        if isinstance(argument.value, StringValueNode):
            value = argument.value.value
        elif isinstance(argument.value, VariableNode):
            name = argument.value.name.value
            default = defaults.get(name)
            value = (variables or {}).get(name, default.value if isinstance(default, StringValueNode) else None)
        if isinstance(value, str) and (decoded := decode_cursor(value)) is not None and unstorable(decoded):
            return field
    return None


class StorableInput(SchemaExtension):
    """After validation, before execution, where the variables are known: their text, and the
    cursors decoded from them. A refused request is answered with its error alone."""

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        if context.result is None and context.graphql_document is not None:
            error = check(context.graphql_document, context.operation_name, context.variables)
            if error is not None:
                context.result = ExecutionResult(data=None, errors=[error])
        yield


def check(document: DocumentNode, operation_name: str | None,
          variables: Mapping[str, Any] | None) -> GraphQLError | None:
    where = unstorable_variable(variables)
    if where is not None:
        return bad_input(f"variable {where} {PROBLEM}")
    field = unstorable_cursor(document, operation_name, variables)
    if field is not None:
        return bad_input("after: not a cursor this API gave out", field)
    return None
