"""The views' side of the log followers (projections/follower.py): each view is a follower
whose rows and position are written in one transaction, so each event is applied once.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Sequence
from typing import Any

from eventsourcing.application import Application
from eventsourcing.persistence import IntegrityError, Notification, OperationalError

from adapters.database import Database, Tx
from projections.follower import Follower
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
        self.followers = {
            view.name: Follower(ViewConsumer(self, view), lambda after, limit: self.read(after, limit), self.head)
            for view in views
        }

    @property
    def applied(self) -> int:
        """Events applied by this process, for /metrics."""
        return sum(f.consumed for f in self.followers.values())

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

    def catch_up(self) -> int:
        """Applies everything recorded so far to every view (each view on its own: one that
        fails does not hold up the others; the first failure is raised after all have run)."""
        done, failure = 0, None
        for follower in self.followers.values():
            try:
                done += follower.catch_up()
            except Exception as exc:
                failure = failure or exc
        if failure is not None:
            raise failure
        return done

    def wait_for(self, position: int | None, timeout: float = 5.0) -> bool:
        """Catches up here, then true once every view includes `position` (CLI and tests;
        requests use `reached`, which never does the work itself)."""
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

    def reached(self, position: int | None, views: Sequence[str] | None = None, timeout: float = 5.0) -> bool:
        """Read-your-writes for a request: waits, bounded, until the named views (all by
        default) include `position`, whichever process applies them."""
        if position is None:
            return True
        names = list(views) if views is not None else list(self.views)
        signal = self.app.recorder.signal  # type: ignore[attr-defined]
        deadline = time.monotonic() + timeout
        while True:
            seen = signal.count
            positions = self.positions()
            if all(positions.get(name, 0) >= position for name in names):
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            signal.wait(seen, min(left, 0.05))  # positions moved by other processes are polled


class ViewConsumer:
    """Applies batches to one view: rows and position in one transaction, under the position
    row's write lock, so several processes may drive a view without applying a batch twice."""

    batch_size = BATCH

    def __init__(self, projections: Projections, view: View) -> None:
        self.name = view.name
        self.view = view
        self.projections = projections

    def stored_position(self) -> int:
        return self.projections.positions().get(self.name, 0)

    def consume(self, position: int, batch: Sequence[Notification]) -> bool:
        # The batch was read before the write transaction: reading the log takes a second
        # connection, and asking the pool for one while holding its (SQLite) writer deadlocked.
        with self.projections.database.transaction() as tx:
            if lock_position(tx, self.name) != position:
                return False
            rows = Rows(tx)
            self.projections.apply(self.view, batch, rows)
            rows.flush()
            tx.execute(f"UPDATE {POSITIONS} SET position = ? WHERE view = ?", (batch[-1].id, self.name))
        return True


def view_shape(view: View) -> str:
    """A fingerprint of the view's table definitions."""
    text = repr([view.version, *((t.name, sorted(t.columns.items()), t.key, t.indexes) for t in view.tables)])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def lock_position(tx: Tx, view_name: str) -> int:
    # A no-op write takes the row's write lock (SQLite: the database's) before reading.
    tx.execute(f"UPDATE {POSITIONS} SET position = position WHERE view = ?", (view_name,))
    return int(tx.execute(f"SELECT position FROM {POSITIONS} WHERE view = ?", (view_name,)).scalar())
