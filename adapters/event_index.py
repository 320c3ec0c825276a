"""Which aggregates exist, asked of the event store's table in one query per 500 ids."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from adapters.database import Database
from domain.ports import EventIndex

CHUNK = 500


class StoredEventIndex(EventIndex):
    def __init__(self, database: Database, events_table: str) -> None:
        self.database = database
        self.table = events_table

    def existing(self, ids: set[UUID]) -> set[UUID]:
        wanted = list(ids)
        found: set[UUID] = set()
        for start in range(0, len(wanted), CHUNK):
            part = wanted[start:start + CHUNK]
            rows: list[dict[str, Any]]
            if self.database.is_postgres:
                rows = self.database.query(
                    f"SELECT DISTINCT originator_id FROM {self.table} WHERE originator_id = ANY(?)", (part,))
            else:  # SQLite keeps ids as hex text
                marks = ", ".join("?" for _ in part)
                rows = self.database.query(
                    f"SELECT DISTINCT originator_id FROM {self.table} WHERE originator_id IN ({marks})",
                    [u.hex for u in part])
            found.update(UUID(str(r["originator_id"])) for r in rows)
        return found
