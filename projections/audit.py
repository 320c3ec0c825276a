"""The audit feed: the event log itself, decoded, in global order. Secrets never appear:
events hold none, and hashes of tokens are withheld as well."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import Notification

from adapters.database import Database
from projections.view import plain

WITHHELD = frozenset({"token_hash"})
META = frozenset({"originator_id", "originator_version", "timestamp", "originator_topic"})


@dataclass(frozen=True)
class AuditEvent:
    position: int
    aggregate_id: UUID
    aggregate_type: str
    version: int
    type: str
    occurred_at: Any
    data: dict[str, Any]


def describe(app: Application[Any], notification: Notification) -> AuditEvent:
    event: Any = app.mapper.to_domain_event(notification)
    name = notification.topic.split(":", 1)[-1]
    aggregate_type, _, event_type = name.rpartition(".")
    data = {k: plain(v) for k, v in vars(event).items() if k not in META and k not in WITHHELD}
    return AuditEvent(notification.id, UUID(str(event.originator_id)), aggregate_type or name,
                      notification.originator_version, event_type, event.timestamp, data)


def page(app: Application[Any], database: Database, after: int, first: int,
         aggregate_id: UUID | None = None) -> list[AuditEvent]:
    if aggregate_id is None:
        notifications = app.recorder.select_notifications(start=after + 1, limit=first)
    else:
        notifications = _of_aggregate(app, database, after, first, aggregate_id)
    return [describe(app, n) for n in notifications]


def _of_aggregate(app: Application[Any], database: Database, after: int, first: int,
                  aggregate_id: UUID) -> list[Notification]:
    recorder: Any = app.recorder
    if database.is_postgres:
        sql = (f"SELECT notification_id AS id, originator_id, originator_version, topic, state "
               f"FROM {recorder.events_table_name} WHERE originator_id = ? AND notification_id > ? "
               "ORDER BY originator_version LIMIT ?")
        key: Any = aggregate_id
    else:
        sql = (f"SELECT rowid AS id, originator_id, originator_version, topic, state "
               f"FROM {recorder.events_table_name} WHERE originator_id = ? AND rowid > ? "
               "ORDER BY originator_version LIMIT ?")
        key = aggregate_id.hex
    rows = database.query(sql, (key, after, first))
    return [Notification(id=int(r["id"]), originator_id=UUID(str(r["originator_id"])),
                         originator_version=int(r["originator_version"]), topic=r["topic"],
                         state=bytes(r["state"])) for r in rows]
