"""Snapshots of a log follower's in-memory state, by log position: a start reads only what
came after the last snapshot. One row per follower; a snapshot is a cache, never the truth
(the log is), so writing it in a transaction of its own is safe."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from adapters.database import Database

TABLE = "follower_snapshots"


@dataclass(frozen=True)
class Snapshot:
    position: int
    version: int
    state: dict[str, Any]


class FollowerSnapshots:
    def __init__(self, database: Database) -> None:
        self.database = database

    def create_table(self) -> None:
        with self.database.transaction() as tx:
            tx.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (name TEXT PRIMARY KEY, position BIGINT NOT NULL, "
                       "version INTEGER NOT NULL, state TEXT NOT NULL)")

    def save(self, name: str, snapshot: Snapshot) -> None:
        """Keeps the newest snapshot (a slower process never replaces a newer one)."""
        text = json.dumps(snapshot.state, separators=(",", ":"))
        with self.database.transaction() as tx:
            tx.execute(f"INSERT INTO {TABLE} (name, position, version, state) VALUES (?, ?, ?, ?) "
                       "ON CONFLICT (name) DO UPDATE SET position = excluded.position, version = excluded.version, "
                       f"state = excluded.state WHERE {TABLE}.position <= excluded.position",
                       (name, snapshot.position, snapshot.version, text))

    def load(self, name: str, at_most: int) -> Snapshot | None:
        """The stored snapshot, if it is not beyond `at_most` (the follower's stored position)."""
        rows = self.database.query(f"SELECT position, version, state FROM {TABLE} WHERE name = ? AND position <= ?",
                                   (name, at_most))
        if not rows:
            return None
        row = rows[0]
        return Snapshot(int(row["position"]), int(row["version"]), json.loads(row["state"]))

    def forget(self, name: str) -> None:
        with self.database.transaction() as tx:
            tx.execute(f"DELETE FROM {TABLE} WHERE name = ?", (name,))
