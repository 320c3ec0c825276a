"""The audit chain: a log follower (projections/follower.py) that extends the hash chain
(domain/audit.py) over each batch of stored events and keeps, per position, the digest
(`audit_chain`), and the seals it meets in the log (`audit_seals`, for Query.auditSeals). Rows
and position are written in one transaction under the position row's lock, as the views do
(projections/driver.py), so the chain is computed incrementally, once, whoever drives it.

After each catch-up, with MAILROOM_SEAL_EVERY = N > 0, once the chain has passed the last seal
by N positions, it seals the digest at the last position up to the latest multiple of N: every
process computes the same position, hence the same seal id (domain/audit.py), and a second
process racing the first is refused by the event store, which is ignored.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from eventsourcing.application import Application
from eventsourcing.persistence import IntegrityError, Notification

from adapters.database import Database, Tx
from domain.audit import GENESIS, SEALED_TOPIC, AuditSeal, link
from projections.driver import POSITIONS, lock_position

log = logging.getLogger("mailroom.audit")
NAME = "audit_chain"
CHAIN = "audit_chain"
SEALS = "audit_seals"
BATCH = 2000


class AuditChain:
    """The follower's consumer (projections/follower.py Consumer), and the seals' writer."""

    name = NAME
    batch_size = BATCH

    def __init__(self, app: Application[Any], database: Database, seal_every: int = 0) -> None:
        self.app = app
        self.database = database
        self.seal_every = seal_every
        self._last: tuple[int, bytes] = (0, GENESIS)  # the last position this process chained, its digest

    def create_tables(self) -> None:
        with self.database.transaction() as tx:
            tx.execute(f"CREATE TABLE IF NOT EXISTS {POSITIONS} (view TEXT PRIMARY KEY, position BIGINT NOT NULL)")
            tx.execute(f"CREATE TABLE IF NOT EXISTS {CHAIN} (position BIGINT PRIMARY KEY, digest TEXT NOT NULL)")
            tx.execute(f"CREATE TABLE IF NOT EXISTS {SEALS} (position BIGINT PRIMARY KEY, digest TEXT NOT NULL, "
                       "sealed_at TEXT NOT NULL, event_position BIGINT NOT NULL)")
            tx.execute(f"INSERT INTO {POSITIONS} (view, position) VALUES (?, 0) ON CONFLICT (view) DO NOTHING",
                       (NAME,))

    def read(self, after: int, limit: int) -> Sequence[Notification]:
        return self.app.recorder.select_notifications(start=after + 1, limit=limit)

    def head(self) -> int:
        return int(self.app.recorder.max_notification_id() or 0)

    # ------------------------------------------------------------------ the follower's side

    def stored_position(self) -> int:
        rows = self.database.query(f"SELECT position FROM {POSITIONS} WHERE view = ?", (NAME,))
        return int(rows[0]["position"]) if rows else 0

    def consume(self, position: int, batch: Sequence[Notification]) -> bool:
        seals = [self._seal_row(n) for n in batch if n.topic == SEALED_TOPIC]
        with self.database.transaction() as tx:
            if lock_position(tx, NAME) != position:
                return False
            digest = self._digest_at(tx, position)
            rows: list[tuple[int, str]] = []
            for n in batch:
                digest = link(digest, n.originator_id, n.originator_version, n.topic, n.state)  # type: ignore[arg-type]
                rows.append((n.id, digest.hex()))
            tx.executemany(f"INSERT INTO {CHAIN} (position, digest) VALUES (?, ?)", rows)
            tx.executemany(f"INSERT INTO {SEALS} (position, digest, sealed_at, event_position) VALUES (?, ?, ?, ?) "
                           "ON CONFLICT (position) DO NOTHING", seals)
            tx.execute(f"UPDATE {POSITIONS} SET position = ? WHERE view = ?", (batch[-1].id, NAME))
        self._last = (batch[-1].id, digest)
        return True

    def _seal_row(self, notification: Notification) -> tuple[int, str, str, int]:
        event: Any = self.app.mapper.to_domain_event(notification)
        return int(event.position), str(event.digest), event.timestamp.isoformat(), notification.id

    def _digest_at(self, tx: Tx, position: int) -> bytes:
        if position == 0:
            return GENESIS
        if self._last[0] == position:
            return self._last[1]
        found = tx.execute(f"SELECT digest FROM {CHAIN} WHERE position = ?", (position,)).scalar()
        if found is None:
            raise RuntimeError(f"{CHAIN} has no digest at its stored position {position}")
        return bytes.fromhex(str(found))

    def after_catch_up(self, renew: Callable[[], Any] | None = None) -> int:
        """Seals automatically every `seal_every` positions (see the module's docstring)."""
        if self.seal_every <= 0:
            return 0
        head = self.stored_position()
        last = int(self.database.query(f"SELECT MAX(position) AS p FROM {SEALS}")[0]["p"] or 0)
        if head - last < self.seal_every:
            return 0
        boundary = head // self.seal_every * self.seal_every
        rows = self.database.query(f"SELECT position, digest FROM {CHAIN} WHERE position <= ? "
                                   "ORDER BY position DESC LIMIT 1", (boundary,))
        if not rows or int(rows[0]["position"]) <= last:
            return 0
        return int(self.record(int(rows[0]["position"]), str(rows[0]["digest"])))

    # ------------------------------------------------------------------ seals

    def digest(self, position: int) -> str:
        """The chained digest at `position` (hex); GENESIS at 0."""
        if position == 0:
            return GENESIS.hex()
        found = self.database.query(f"SELECT digest FROM {CHAIN} WHERE position = ?", (position,))
        if not found:
            raise LookupError(f"no chained event at position {position}")
        return str(found[0]["digest"])

    def record(self, position: int, digest: str) -> bool:
        """Records a seal; False if that position was sealed already (by another process)."""
        try:
            self.app.save(AuditSeal(position, digest))
        except IntegrityError:
            log.info("position %s was sealed already", position)
            return False
        log.info("sealed the log at position %s: %s", position, digest)
        return True

    def seal_head(self) -> tuple[int, str]:
        """Seals the chain where it stands (the caller caught it up): (position, digest)."""
        position = self.stored_position()
        digest = self.digest(position)
        self.record(position, digest)
        return position, digest

    def seals(self) -> list[dict[str, Any]]:
        """The seals chained so far, oldest first."""
        return self.database.query(f"SELECT position, digest, sealed_at FROM {SEALS} ORDER BY position")
