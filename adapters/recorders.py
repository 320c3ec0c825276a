"""The event store's recorders, extended so a follower's effects and its position commit together.

`app.save(*aggregates, advance=Advance(name, expected, new))` writes the aggregates' events and
moves the follower's stored position from `expected` to `new` in one transaction. If the stored
position is no longer `expected` (another process advanced it), nothing is written and
`PositionMoved` is raised: a stale follower cannot record anything, by construction.

Every commit also bumps an in-process signal, so followers in this process wake on the change
itself instead of polling.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor

from adapters.keyring import Keyring
from domain.commands.base import PositionMoved

POSITIONS = "rm_positions"
ADVANCE_SQL = f"UPDATE {POSITIONS} SET position = %s WHERE view = %s AND position = %s RETURNING position"


@dataclass(frozen=True)
class Advance:
    """Move follower `name` from `expected` to `new`, or fail the whole transaction."""

    name: str
    expected: int
    new: int


class LogSignal:
    """A counter bumped on every commit by this process; waiters block until it moves."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self.count = 0

    def bump(self) -> None:
        with self._condition:
            self.count += 1
            self._condition.notify_all()

    def wait(self, seen: int, timeout: float) -> int:
        with self._condition:
            self._condition.wait_for(lambda: self.count != seen, timeout=timeout)
            return self.count


def _moved(advance: Advance) -> PositionMoved:
    return PositionMoved(f"follower {advance.name} is no longer at {advance.expected}")


def _sqlite_rows(c: Any, sql: str, params: Sequence[Any]) -> list[Any]:
    c.execute(sql, params)
    return list(c.fetchall())


def _rows(curs: Any, sql: str, params: Sequence[Any]) -> list[Any]:
    # psycopg's pipeline mode (the recorder's): a query's rows are read from a cursor of its own
    # (the recorder's cursor has the earlier statements' results queued).
    if not sql.lstrip().upper().startswith("SELECT"):
        curs.execute(sql, params)
        return []
    with curs.connection.cursor() as query:
        query.execute(sql, params)
        return list(query.fetchall())


class SQLiteRecorder(SQLiteApplicationRecorder):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.signal = LogSignal()
        self.keyring: Keyring | None = None  # given by api/bootstrap.py

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        ids = super().insert_events(stored_events, **kwargs)
        self.signal.bump()
        return ids

    def _insert_events(self, c: SQLiteCursor, stored_events: Sequence[StoredEvent],
                       **kwargs: Any) -> Sequence[int] | None:
        advance: Advance | None = kwargs.get("advance")
        if advance is not None:
            c.execute(ADVANCE_SQL.replace("%s", "?"), (advance.new, advance.name, advance.expected))
            if c.fetchone() is None:
                raise _moved(advance)
        # The events first: the keys check reads, and a deferred SQLite transaction that reads
        # before it writes fails at once (SQLITE_BUSY, no busy wait) when another connection
        # committed in between.
        ids = super()._insert_events(c, stored_events, **kwargs)
        if self.keyring is not None:  # owners and keys of the personal data sealed in the events
            self.keyring.store_pending(lambda sql, params: _sqlite_rows(c, sql, params))
        return ids


class PostgresRecorder(PostgresApplicationRecorder):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.signal = LogSignal()
        self.keyring: Keyring | None = None  # given by api/bootstrap.py

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        if kwargs.get("advance") is not None:
            # The database-function path skips _insert_events, where the position moves.
            assert not self.datastore.enable_db_functions, "followers need POSTGRES_ENABLE_DB_FUNCTIONS off"
        ids: Sequence[int] | None = super().insert_events(stored_events, **kwargs)
        self.signal.bump()
        return ids

    def _insert_events(self, curs: Any, stored_events: Sequence[StoredEvent], **kwargs: Any) -> None:
        advance: Advance | None = kwargs.get("advance")
        if advance is not None:
            curs.execute(ADVANCE_SQL, (advance.new, advance.name, advance.expected))
            if curs.fetchone() is None:
                raise _moved(advance)
        if self.keyring is not None:
            self.keyring.store_pending(lambda sql, params: _rows(curs, sql.replace("?", "%s"), params))
        super()._insert_events(curs, stored_events, **kwargs)


SQLITE_TOPIC = f"{__name__}:SQLiteRecorder"
POSTGRES_TOPIC = f"{__name__}:PostgresRecorder"
