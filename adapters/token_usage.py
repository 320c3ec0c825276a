"""When each API token was last used: operational state beside the log, never an event (a
request is not a change of anything an auditor replays).

Written at most once a minute per token: each process remembers when it last wrote a token's
time and skips the write within EVERY seconds of it, and the statement itself only moves a row
that is at least EVERY seconds old, so several API processes together still change a token's
row about once a minute. `last_used_at` is therefore exact to about a minute. A token used for
the first time is written at once (no row yet)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from uuid import UUID

from adapters.database import Database

TABLE = "mailroom_token_usage"
EVERY = 60.0  # seconds between two writes of one token's time
REMEMBERED = 10_000  # tokens whose last write a process remembers (then it starts afresh)


class TokenUsage:
    def __init__(self, database: Database, every: float = EVERY) -> None:
        self.db = database
        self.every = every
        self._written: dict[UUID, float] = {}  # token -> monotonic time of this process's last write
        self._lock = threading.Lock()
        self.create_table(database)

    @staticmethod
    def create_table(database: Database) -> None:
        """Made by bootstrap under the schema lock, so that replicas starting together do not race."""
        with database.transaction() as tx:
            tx.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (token_id TEXT PRIMARY KEY, last_used_at TEXT NOT NULL)")

    def used(self, token_id: UUID, now: datetime | None = None) -> bool:
        """Notes a use of the token; True when it was written (not within `every` of the last)."""
        clock = time.monotonic()
        with self._lock:
            last = self._written.get(token_id)
            if last is not None and clock - last < self.every:
                return False
            if len(self._written) >= REMEMBERED:
                self._written.clear()
            self._written[token_id] = clock
        moment = (now or datetime.now(UTC)).astimezone(UTC)
        stale = (moment - timedelta(seconds=self.every)).isoformat()
        with self.db.transaction() as tx:
            tx.execute(f"INSERT INTO {TABLE} (token_id, last_used_at) VALUES (?, ?) ON CONFLICT (token_id) "
                       f"DO UPDATE SET last_used_at = excluded.last_used_at WHERE {TABLE}.last_used_at <= ?",
                       (str(token_id), moment.isoformat(), stale))
        return True

    def last_used(self, token_id: UUID) -> datetime | None:
        rows = self.db.query(f"SELECT last_used_at FROM {TABLE} WHERE token_id = ?", (str(token_id),))
        return datetime.fromisoformat(rows[0]["last_used_at"]) if rows else None
