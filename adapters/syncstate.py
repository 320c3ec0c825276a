"""Where each mailbox's sync stands: per IMAP folder UIDVALIDITY and the highest UID taken
in, the POP3 UIDLs taken in, and the health of the last attempts. Operational state, not
history: it is advanced only after the messages it covers are recorded, so a crash
re-fetches (and the derived identities make that a no-op), never skips."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from adapters.database import Database

FOLDERS = "mailroom_imap_folders"
UIDLS = "mailroom_pop3_uidls"
HEALTH = "mailroom_sync_health"
BACKOFF_CAP = 3600.0


@dataclass(frozen=True)
class Health:
    last_synced_at: datetime | None
    last_error: str | None
    failures: int
    next_attempt_at: float


class SyncState:
    def __init__(self, database: Database) -> None:
        self.db = database
        with database.transaction() as tx:
            tx.execute(f"CREATE TABLE IF NOT EXISTS {FOLDERS} (mailbox_id TEXT, folder TEXT, uidvalidity BIGINT, "
                       "last_uid BIGINT, PRIMARY KEY (mailbox_id, folder))")
            tx.execute(f"CREATE TABLE IF NOT EXISTS {UIDLS} (mailbox_id TEXT, uidl TEXT, "
                       "PRIMARY KEY (mailbox_id, uidl))")
            tx.execute(f"CREATE TABLE IF NOT EXISTS {HEALTH} (mailbox_id TEXT PRIMARY KEY, last_synced_at TEXT, "
                       "last_error TEXT, failures BIGINT NOT NULL, next_attempt_at DOUBLE PRECISION NOT NULL)")

    # IMAP
    def folder(self, mailbox_id: UUID, folder: str) -> tuple[int, int] | None:
        rows = self.db.query(f"SELECT uidvalidity, last_uid FROM {FOLDERS} WHERE mailbox_id = ? AND folder = ?",
                             (str(mailbox_id), folder))
        return (int(rows[0]["uidvalidity"]), int(rows[0]["last_uid"])) if rows else None

    def advance_folder(self, mailbox_id: UUID, folder: str, uidvalidity: int, last_uid: int) -> None:
        with self.db.transaction() as tx:
            tx.execute(f"INSERT INTO {FOLDERS} (mailbox_id, folder, uidvalidity, last_uid) VALUES (?, ?, ?, ?) "
                       "ON CONFLICT (mailbox_id, folder) DO UPDATE SET uidvalidity = excluded.uidvalidity, "
                       "last_uid = excluded.last_uid", (str(mailbox_id), folder, uidvalidity, last_uid))

    # POP3
    def seen_uidls(self, mailbox_id: UUID) -> set[str]:
        rows = self.db.query(f"SELECT uidl FROM {UIDLS} WHERE mailbox_id = ?", (str(mailbox_id),))
        return {str(r["uidl"]) for r in rows}

    def mark_uidls(self, mailbox_id: UUID, uidls: list[str]) -> None:
        with self.db.transaction() as tx:
            tx.executemany(f"INSERT INTO {UIDLS} (mailbox_id, uidl) VALUES (?, ?) ON CONFLICT DO NOTHING",
                           [(str(mailbox_id), u) for u in uidls])

    # health
    def health(self, mailbox_id: UUID | str) -> Health:
        rows = self.db.query(f"SELECT * FROM {HEALTH} WHERE mailbox_id = ?", (str(mailbox_id),))
        if not rows:
            return Health(None, None, 0, 0.0)
        r = rows[0]
        synced = datetime.fromisoformat(r["last_synced_at"]) if r["last_synced_at"] else None
        return Health(synced, r["last_error"], int(r["failures"]), float(r["next_attempt_at"]))

    def _put_health(self, mailbox_id: UUID, health: Health) -> None:
        with self.db.transaction() as tx:
            tx.execute(f"INSERT INTO {HEALTH} (mailbox_id, last_synced_at, last_error, failures, next_attempt_at) "
                       "VALUES (?, ?, ?, ?, ?) ON CONFLICT (mailbox_id) DO UPDATE SET "
                       "last_synced_at = excluded.last_synced_at, last_error = excluded.last_error, "
                       "failures = excluded.failures, next_attempt_at = excluded.next_attempt_at",
                       (str(mailbox_id), health.last_synced_at.isoformat() if health.last_synced_at else None,
                        health.last_error, health.failures, health.next_attempt_at))

    def succeeded(self, mailbox_id: UUID) -> None:
        self._put_health(mailbox_id, Health(datetime.now(UTC), None, 0, 0.0))

    def failed(self, mailbox_id: UUID, error: str, base_delay: float) -> Health:
        """Records a failure; the next attempt backs off exponentially (capped at an hour)."""
        old = self.health(mailbox_id)
        failures = old.failures + 1
        delay = min(base_delay * 2 ** (failures - 1), BACKOFF_CAP)
        new = Health(old.last_synced_at, error, failures, time.time() + delay)
        self._put_health(mailbox_id, new)
        return new

    def retry_now(self, mailbox_id: UUID) -> None:
        """After an admin fixed the settings: try again at once, not after the backoff."""
        with self.db.transaction() as tx:
            tx.execute(f"UPDATE {HEALTH} SET next_attempt_at = 0 WHERE mailbox_id = ?", (str(mailbox_id),))

    def mailbox_ids(self) -> set[str]:
        """Every mailbox this table keeps state for."""
        rows = self.db.query(f"SELECT mailbox_id FROM {FOLDERS} UNION SELECT mailbox_id FROM {UIDLS} "
                             f"UNION SELECT mailbox_id FROM {HEALTH}")
        return {str(r["mailbox_id"]) for r in rows}

    def forget(self, mailbox_id: UUID) -> None:
        with self.db.transaction() as tx:
            for table in (FOLDERS, UIDLS, HEALTH):
                tx.execute(f"DELETE FROM {table} WHERE mailbox_id = ?", (str(mailbox_id),))
