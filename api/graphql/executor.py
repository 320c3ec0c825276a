"""A shorter way through graphql-core for the fields that only read an attribute.

A field without a resolver (a dataclass attribute, or a plain() field of a row type) costs
graphql-core as much as any other: a resolve-info object, strawberry's resolver wrappers, and
four or five nested completion calls, about 8 µs a field. On a list of 1,000 agents, or a page
of 50 conversations with their nested objects, that is most of a request.

FastExecutor serves those fields directly, field by field:

- a field read by strawberry's basic resolver (no resolver, no field extension, no exception
  handler): the attribute; and a field declared READY (metadata {READY: key}) whose resolver,
  not async, answers `source.ready[key]` when that is set: that value, without calling it;
- that value completed as graphql-core completes it: a leaf (scalar or enum) coerced by its
  type (`coerce_output_value`); an object type (without is_type_of) by executing its fields
  like this; anything else (lists above all) through graphql-core's complete_value; each with
  execute_field's error handling around it;
- `__typename`;
- the items of a list of such an object type (however the list was resolved): each item's
  fields executed like this, inside complete_list_item_value's error handling.

Every other field (resolvers, arguments, abstract types) goes through graphql-core as before.
Whenever a value read is anything but regular (an exception, null for a non-null field, an
awaitable, a value its scalar refuses, a READY value not set), that field is executed again the
ordinary way, which then reports exactly what graphql-core reports: the basic resolver only
reads an attribute, so reading it twice changes nothing. With resolver middleware (a schema
extension with a `resolve` hook), @defer or @stream, nothing takes the short way.
tests/unit/test_graphql_executor.py compares answers and errors with graphql-core's own executor.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable
from operator import attrgetter
from typing import Any

from graphql import (
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLResolveInfo,
    Undefined,
    is_leaf_type,
    is_object_type,
)
from graphql.execution.collect_fields import FieldDetailsList, GroupedFieldSet
from graphql.pyutils import Path, gather_with_cancel
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import GraphQLCoreConverter

_PLAIN_VALUES = frozenset({str, int, float, bool})  # never awaitable, never an exception

# How a response field is executed (see _plan): graphql-core's way; a leaf, an object, any
# other value read directly; __typename.
_OTHER, _LEAF, _OBJECT, _VALUE, _TYPENAME = range(5)
_ABSENT = object()  # a reader's answer when it has no value: the field is resolved the ordinary way

# Field metadata: the field's resolver answers `source.ready[key]` whenever that is set (values
# loaded for a whole page at once), so that value can be read without calling the resolver.
READY = "mailroom.ready"

# (kind, response name, field details, reader, field definition, unwrapped type, non-null)
Step = tuple[int, str, FieldDetailsList, Any, Any, Any, bool]


def _reader(field_def: Any) -> Any:
    """source -> value (or _ABSENT) for a field served by strawberry's basic resolver, or
    declared READY; else None."""
    if field_def.args:
        return None
    resolve = field_def.resolve
    field = (field_def.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
    if getattr(resolve, "_is_default", False) is True:
        if field is not None and getattr(field, "default_resolver", None) is getattr and not field.base_resolver:
            return attrgetter(field.python_name)  # what get_result does: getattr(source, python_name)
        return lambda source: resolve(source, None)
    key = (getattr(field, "metadata", None) or {}).get(READY)
    # Only a resolver that answers at once: graphql-core completes an async one's value later,
    # after the fields that follow it (which decides which error a null propagation reports).
    # And none with a permission or other field extension to run.
    if key is not None and field is not None and not field.is_async and not field.extensions:
        return lambda source: source.ready.get(key, _ABSENT)
    return None


class FastExecutor(StrawberryGraphQLCoreExecutionContext):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Plans by grouped field set: graphql-core memoizes the sets per type and selection, so
        # the items of a list share one (kept alive here with its plan, as id() is the key).
        self._plans: dict[int, tuple[GroupedFieldSet, GraphQLObjectType, list[Step] | None]] = {}
        manager = self.middleware_manager
        self._fast = manager is None or getattr(manager, "_middleware_resolvers", None) is None

    def _plan(self, parent_type: GraphQLObjectType, fields: GroupedFieldSet) -> list[Step] | None:
        """The steps for an object's fields; None when no field would take the short way."""
        found = self._plans.get(id(fields))
        if found is not None and found[1] is parent_type:
            return found[2]
        steps: list[Step] = []
        for name, details in fields.items():
            node = details[0].node
            field_name = node.name.value
            if field_name == "__typename" and not node.arguments:
                steps.append((_TYPENAME, name, details, None, None, None, False))
                continue
            field_def = self.schema.get_field(parent_type, field_name)
            if field_def is None:
                steps.append((_OTHER, name, details, None, None, None, False))
                continue
            reader = None if node.arguments else _reader(field_def)
            kind, inner, non_null = _OTHER, None, False
            if reader is not None:
                inner = field_def.type
                if isinstance(inner, GraphQLNonNull):
                    inner, non_null = inner.of_type, True
                if is_leaf_type(inner):
                    kind = _LEAF
                elif is_object_type(inner) and not inner.is_type_of:
                    kind = _OBJECT
                else:
                    kind = _VALUE
            steps.append((kind, name, details, reader, field_def, inner, non_null))
        plan = steps if any(step[0] != _OTHER for step in steps) else None
        self._plans.setdefault(id(fields), (fields, parent_type, plan))  # a set is collected for one type
        return plan

    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        grouped_field_set: GroupedFieldSet,
        position_context: Any,
    ) -> Any:
        plan = self._plan(parent_type, grouped_field_set) if self._fast and position_context is None else None
        if plan is None:
            return super().execute_fields(parent_type, source_value, path, grouped_field_set, position_context)
        results: dict[str, Any] = {}
        is_awaitable = self.is_awaitable
        awaitable_fields: list[str] = []
        try:
            for kind, name, details, reader, field_def, inner, non_null in plan:
                if kind == _TYPENAME:
                    results[name] = parent_type.name
                    continue
                if kind != _OTHER:
                    try:
                        value = reader(source_value)
                    except Exception:  # irregular: run again the ordinary way below, which reports it
                        value = _ABSENT
                    if value is _ABSENT:
                        pass
                    elif value is None:
                        if not non_null:
                            results[name] = None
                            continue
                    elif kind == _LEAF:  # complete_leaf_value, unless graphql-core has more to say
                        if type(value) in _PLAIN_VALUES or not (
                                value is Undefined or isinstance(value, Exception) or is_awaitable(value)):
                            try:
                                coerced = inner.coerce_output_value(value)
                            except Exception:  # irregular: as above
                                coerced = None
                            if coerced is not None and coerced is not Undefined:
                                results[name] = coerced
                                continue
                    elif not (isinstance(value, Exception) or is_awaitable(value)):
                        result = self._complete(kind, parent_type, field_def, inner, details,
                                                Path(path, name, parent_type.name), value)
                        results[name] = result
                        if type(result) is not dict and is_awaitable(result):
                            awaitable_fields.append(name)
                        continue
                result = self.execute_field(parent_type, source_value, details, Path(path, name, parent_type.name),
                                            position_context)
                if result is not Undefined:
                    results[name] = result
                    if is_awaitable(result):
                        awaitable_fields.append(name)
        except Exception:
            if awaitable_fields:
                self.settle_in_background([results[field] for field in awaitable_fields])
            raise
        if not awaitable_fields:
            return results

        async def get_results() -> dict[str, Any]:
            if len(awaitable_fields) == 1:
                field = awaitable_fields[0]
                results[field] = await results[field]
            else:
                awaited = await gather_with_cancel(*(results[field] for field in awaitable_fields))
                results.update(zip(awaitable_fields, awaited, strict=True))
            return results

        return get_results()

    def _complete(self, kind: int, parent_type: GraphQLObjectType, field_def: Any, inner: Any,
                  details: FieldDetailsList, path: Path, value: Any) -> Any:
        """A field's value (not null, not awaitable) completed as execute_field completes a
        resolver's result, with its error handling around it. An object's fields are executed
        directly; other values (lists above all) through complete_value."""
        return_type = field_def.type
        try:
            if kind == _OBJECT:
                grouped, new_defer_usages, _ = self.collect_subfields(inner, details)
                if new_defer_usages:
                    completed = self.execute_collected_subfields(inner, value, path, grouped, new_defer_usages, None)
                else:
                    completed = self.execute_fields(inner, value, path, grouped, None)
            else:
                info = self.build_resolve_info(field_def, [d.node for d in details], parent_type, path)
                completed = self.complete_value(return_type, details, info, path, value, None)
        except Exception as raw_error:
            self.handle_field_error(raw_error, return_type, details, path)
            return None
        if type(completed) is dict or not self.is_awaitable(completed):
            return completed

        async def await_completed(completed: Awaitable[Any]) -> Any:
            try:
                return await completed
            except Exception as raw_error:
                self.handle_field_error(raw_error, return_type, details, path)
                return None

        return await_completed(completed)

    def complete_iterable_value(
        self,
        item_type: Any,
        field_details_list: FieldDetailsList,
        info: GraphQLResolveInfo[Any],
        path: Path,
        items: Iterable[Any],
        position_context: Any,
    ) -> Any:
        object_type = item_type.of_type if isinstance(item_type, GraphQLNonNull) else item_type
        if (not self._fast or position_context is not None or not is_object_type(object_type)
                or object_type.is_type_of or not isinstance(items, list | tuple)
                or self.get_stream_usage(field_details_list, path) is not None):
            return super().complete_iterable_value(item_type, field_details_list, info, path, items,
                                                   position_context)
        grouped, new_defer_usages, _ = self.collect_subfields(object_type, field_details_list)
        if new_defer_usages:
            return super().complete_iterable_value(item_type, field_details_list, info, path, items,
                                                   position_context)
        is_awaitable = self.is_awaitable
        completed: list[Any] = []
        awaitable_indices: list[int] = []
        try:
            for index, item in enumerate(items):
                item_path = path.add_key(index, None)
                if item is None or isinstance(item, Exception) or is_awaitable(item):  # the ordinary way
                    if is_awaitable(item):
                        completed.append(self.complete_awaitable_list_item_value(
                            item, item_type, field_details_list, info, item_path, position_context))
                        awaitable_indices.append(index)
                    elif self.complete_list_item_value(item, completed, item_type, field_details_list, info,
                                                       item_path, position_context):
                        awaitable_indices.append(index)
                    continue
                try:  # complete_list_item_value, with complete_value's steps down to the fields
                    fields = self.execute_fields(object_type, item, item_path, grouped, None)
                except Exception as raw_error:
                    self.handle_field_error(raw_error, item_type, field_details_list, item_path)
                    completed.append(None)
                    continue
                if is_awaitable(fields):
                    completed.append(self._await_item(fields, item_type, field_details_list, item_path))
                    awaitable_indices.append(index)
                else:
                    completed.append(fields)
        except Exception:
            pending = [completed[index] for index in awaitable_indices]
            if pending:
                self.settle_in_background(pending)
            raise
        if not awaitable_indices:
            return completed

        async def get_completed_results() -> list[Any]:
            if len(awaitable_indices) == 1:
                index = awaitable_indices[0]
                completed[index] = await completed[index]
            else:
                awaited = await gather_with_cancel(*(completed[index] for index in awaitable_indices))
                for index, value in zip(awaitable_indices, awaited, strict=True):
                    completed[index] = value
            return completed

        return get_completed_results()

    async def _await_item(self, fields: Awaitable[Any], item_type: Any, details: FieldDetailsList,
                          item_path: Path) -> Any:
        try:
            return await fields
        except Exception as raw_error:
            self.handle_field_error(raw_error, item_type, details, item_path)
            return None
