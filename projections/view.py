"""A view: tables plus a pure function applying one event to rows of them."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, is_dataclass
from datetime import datetime
from enum import Enum
from typing import Any
from uuid import UUID

from projections.tables import Rows, Table

Handler = Callable[[Any, Rows], None]


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


def event_id(event: Any) -> str:
    """The id of the aggregate an event belongs to, as views store it."""
    return str(event.originator_id)


def event_time(event: Any) -> str:
    return str(event.timestamp.isoformat())


def to_json(value: Any) -> str | None:
    return None if value is None else json.dumps(plain(value), separators=(",", ":"), sort_keys=True)


class View:
    """Subclasses declare `name`, `tables`, and `handlers` from event topic to function.
    Topics, not classes: they are the stable names stored in the log."""

    name: str
    tables: tuple[Table, ...]
    handlers: dict[str, Handler]
    version: int | str = 1  # change when handlers change what they write: the view is then replayed on start

    def apply(self, event: Any, rows: Rows) -> None:
        handler = self.handlers.get(type(event).TOPIC)
        if handler is not None:
            handler(event, rows)
