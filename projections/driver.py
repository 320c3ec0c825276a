"""The one projection driver: follows the log in order and applies each event to each
view exactly once (view rows and position written in one transaction).

Any process may drive a view: the position row is write-locked first, so two
drivers serialise instead of applying a batch twice. SQLite is followed by
polling; PostgreSQL wakes on the event store's NOTIFY.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from eventsourcing.application import Application
from eventsourcing.persistence import IntegrityError, Notification, OperationalError

from adapters.database import Database, Tx
from projections.tables import Rows
from projections.view import View

log = logging.getLogger("mailroom.projections")
POSITIONS = "rm_positions"
SHAPES = "rm_view_shapes"
BATCH = 1000
STARTUP_ATTEMPTS = 20


class Projections:
    def __init__(self, app: Application[Any], database: Database, views: Sequence[View]) -> None:
        self.app = app
        self.database = database
        self.views = {view.name: view for view in views}
        self._lock = threading.Lock()
        self.applied = 0  # events applied by this process, for /metrics

    def create_tables(self) -> None:
        """Creates the views' tables; a view whose table definitions changed since they were
        created is dropped and replayed from the start (read models are derived data).

        Processes starting together (two `mailroom worker`s) race here: on SQLite the read
        snapshot taken by the first statements cannot be upgraded to a write once another process
        has written ("database is locked" at once, no busy wait); on PostgreSQL concurrent
        CREATE TABLE IF NOT EXISTS can collide. Both are retried from a fresh transaction."""
        for attempt in range(STARTUP_ATTEMPTS):
            try:
                self._create_tables()
                return
            except (OperationalError, IntegrityError):
                if attempt == STARTUP_ATTEMPTS - 1:
                    raise
                time.sleep(0.05 * (attempt + 1))

    def _create_tables(self) -> None:
        with self.database.transaction() as tx:
            tx.execute(f"CREATE TABLE IF NOT EXISTS {POSITIONS} (view TEXT PRIMARY KEY, position BIGINT NOT NULL)")
            tx.execute(f"CREATE TABLE IF NOT EXISTS {SHAPES} (view TEXT PRIMARY KEY, shape TEXT NOT NULL)")
            for view in self.views.values():
                shape = view_shape(view)
                known = tx.execute(f"SELECT shape FROM {SHAPES} WHERE view = ?", (view.name,)).scalar()
                if known is not None and known != shape:
                    log.warning("view %s changed shape: rebuilding it from the log", view.name)
                    for table in view.tables:
                        table.drop(tx)
                    tx.execute(f"DELETE FROM {POSITIONS} WHERE view = ?", (view.name,))
                for table in view.tables:
                    table.create(tx)
                tx.execute(f"INSERT INTO {SHAPES} (view, shape) VALUES (?, ?) ON CONFLICT (view) "
                           "DO UPDATE SET shape = excluded.shape", (view.name, shape))
                tx.execute(f"INSERT INTO {POSITIONS} (view, position) VALUES (?, 0) ON CONFLICT (view) DO NOTHING",
                           (view.name,))

    def positions(self) -> dict[str, int]:
        rows = self.database.query(f"SELECT view, position FROM {POSITIONS}")
        return {r["view"]: int(r["position"]) for r in rows if r["view"] in self.views}

    def head(self) -> int:
        return int(self.app.recorder.max_notification_id() or 0)

    def read(self, after: int, limit: int = BATCH, stop: int | None = None) -> Sequence[Notification]:
        return self.app.recorder.select_notifications(start=after + 1, limit=limit, stop=stop)

    def apply(self, view: View, notifications: Sequence[Notification], rows: Rows) -> None:
        """Applies events to the unit of work; the caller flushes it inside its transaction."""
        for notification in notifications:
            view.apply(self.app.mapper.to_domain_event(notification), rows)

    def _advance(self, view: View) -> int:
        """One batch for one view in one transaction; returns how many events it applied.

        The batch is read before the write transaction: reading the log takes a second
        connection, and asking the pool for one while holding its (SQLite) writer deadlocked
        against a command waiting for the writer, until the pool's 5 s timeout failed it."""
        while True:
            position = self.positions().get(view.name, 0)
            batch = self.read(position)
            if not batch:
                return 0
            with self.database.transaction() as tx:
                if lock_position(tx, view.name) != position:
                    continue  # another driver applied events meanwhile: read again
                rows = Rows(tx)
                self.apply(view, batch, rows)
                rows.flush()
                tx.execute(f"UPDATE {POSITIONS} SET position = ? WHERE view = ?", (batch[-1].id, view.name))
            self.applied += len(batch)
            return len(batch)

    def catch_up(self) -> int:
        """Applies everything recorded so far to every view."""
        done = 0
        with self._lock:
            for view in self.views.values():
                while (applied := self._advance(view)) > 0:
                    done += applied
        return done

    def wait_for(self, position: int | None, timeout: float = 5.0) -> bool:
        """Read-your-writes: true once every view includes `position`."""
        if position is None:
            return True
        deadline = time.monotonic() + timeout
        while True:
            self.catch_up()
            if min(self.positions().values(), default=0) >= position:
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)

    def run(self, stop: threading.Event, poll_seconds: float = 0.25) -> None:
        """Follows the log until `stop` is set."""
        wait = self._waiter(stop, poll_seconds)
        while not stop.is_set():
            try:
                self.catch_up()
            except Exception:  # keep following; the failure is visible in the log and metrics
                log.exception("projection batch failed; retrying")
                stop.wait(1.0)
            wait()

    def _waiter(self, stop: threading.Event, poll_seconds: float) -> Callable[[], None]:
        if self.database.is_postgres:
            return NotifyWaiter(self.app, self.database, stop).wait

        def sleep() -> None:
            stop.wait(poll_seconds)

        return sleep


def view_shape(view: View) -> str:
    """A fingerprint of the view's table definitions."""
    text = repr([view.version, *((t.name, sorted(t.columns.items()), t.key, t.indexes) for t in view.tables)])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def lock_position(tx: Tx, view_name: str) -> int:
    # A no-op write takes the row's write lock (SQLite: the database's) before reading.
    tx.execute(f"UPDATE {POSITIONS} SET position = position WHERE view = ?", (view_name,))
    return int(tx.execute(f"SELECT position FROM {POSITIONS} WHERE view = ?", (view_name,)).scalar())


class NotifyWaiter:
    """Blocks until the event store's channel is notified (or a safety timeout)."""

    def __init__(self, app: Application[Any], database: Database, stop: threading.Event,
                 timeout: float = 5.0) -> None:
        recorder: Any = app.recorder
        self.channel = recorder.channel_name
        self.database = database
        self.stop = stop
        self.timeout = timeout
        self.conn: Any = None

    def wait(self) -> None:
        try:
            if self.conn is None or self.conn.closed:
                self.conn = self.database.connect()
                self.conn.execute(f'LISTEN "{self.channel}"')
            # Wait in short slices so that `stop` (server shutdown) is seen promptly.
            deadline = time.monotonic() + self.timeout
            while not self.stop.is_set() and time.monotonic() < deadline:
                for _ in self.conn.notifies(timeout=0.2, stop_after=1):
                    return
        except Exception:
            log.warning("LISTEN connection lost; reconnecting", exc_info=True)
            self.conn = None
            self.stop.wait(1.0)
