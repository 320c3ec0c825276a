"""A view: tables plus a pure function applying one event to rows of them.

A view's handlers are keyed by event class and paired with it by `on`, which mypy checks: the
handler's parameter must accept the event class (or its Protocol in domain/events.py), so a
handler reads only attributes the event has. Views are fed domain events the mapper made
(after upcasting), so the class of an event is the class the log names, whatever version
was stored.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, is_dataclass
from datetime import datetime
from enum import Enum
from typing import Any, TypeVar, cast
from uuid import UUID

from domain.events import Event
from projections.tables import Rows, Table

E = TypeVar("E")
Handler = Callable[[E, Rows], None]  # applies one event of a class to the rows
Apply = Callable[[object, Rows], None]  # a handler as dispatch calls it: only with events of its class


@dataclass(frozen=True)
class On:
    """An event class and its handler, paired (and checked) by `on`."""

    event_class: type
    handler: Apply


def on(event_class: type[E], handler: Handler[E]) -> On:
    """The handler for events of exactly `event_class` (no subclasses). Mypy checks that the
    handler accepts that class; dispatch by `type(event)` then only ever calls it with one."""
    return On(event_class, cast(Apply, handler))


def dispatch(*handling: On) -> dict[type, Apply]:
    """Handlers by event class, for `View.handlers`; an event class given twice is an error."""
    handlers: dict[type, Apply] = {}
    for h in handling:
        if h.event_class in handlers:
            raise ValueError(f"two handlers for {h.event_class.__qualname__}")
        handlers[h.event_class] = h.handler
    return handlers


def plain(value: Any) -> Any:
    """Event values as JSON-ready data: ids and enums as strings, records as dicts."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if is_dataclass(value) and not isinstance(value, type):
        return {k: plain(v) for k, v in asdict(value).items()}
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def event_id(event: Event) -> str:
    """The id of the aggregate an event belongs to, as views store it."""
    return str(event.originator_id)


def event_time(event: Event) -> str:
    return str(event.timestamp.isoformat())


def to_json(value: Any) -> str | None:
    return None if value is None else json.dumps(plain(value), separators=(",", ":"), sort_keys=True)


class View:
    """Subclasses declare `name`, `tables`, and `handlers` by event class (`dispatch(on(...), ...)`).
    An event of a class without a handler is ignored."""

    name: str
    tables: tuple[Table, ...]
    handlers: Mapping[type, Apply]
    version: int | str = 1  # change when handlers change what they write: the view is then replayed on start

    def apply(self, event: object, rows: Rows) -> None:
        handler = self.handlers.get(type(event))
        if handler is not None:
            handler(event, rows)
