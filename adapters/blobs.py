"""Content-addressed blob store (raw messages, attachments, sanitised HTML) in a table
beside the log: the same bytes are stored once, and writing them again is a no-op."""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Iterable

from adapters.database import Database

TABLE = "mailroom_blobs"


def blob_key(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def compress_all(blobs: Iterable[bytes]) -> list[tuple[str, int, bytes]]:
    """(key, size, compressed) for each distinct blob: CPU work that may run in another process."""
    rows: dict[str, tuple[str, int, bytes]] = {}
    for data in blobs:
        key = blob_key(data)
        if key not in rows:
            rows[key] = (key, len(data), zlib.compress(data, 1))
    return list(rows.values())


class BlobStore:
    def __init__(self, database: Database) -> None:
        self.database = database
        with database.transaction() as tx:
            tx.execute(
                f"CREATE TABLE IF NOT EXISTS {TABLE} (sha256 TEXT PRIMARY KEY, size BIGINT NOT NULL, "
                f"data {database.blob_type()} NOT NULL)"
            )

    def put_many(self, blobs: Iterable[bytes]) -> list[str]:
        """Stores each blob (compressed) unless present; returns their keys in order."""
        blobs = list(blobs)
        self.put_rows(compress_all(blobs))
        return [blob_key(data) for data in blobs]

    def put_rows(self, rows: list[tuple[str, int, bytes]]) -> None:
        """Stores rows made by compress_all (a blob already present is left as it is)."""
        if rows:
            with self.database.transaction() as tx:
                tx.executemany(
                    f"INSERT INTO {TABLE} (sha256, size, data) VALUES (?, ?, ?) ON CONFLICT (sha256) DO NOTHING",
                    rows,
                )

    def put(self, data: bytes) -> str:
        return self.put_many([data])[0]

    def get(self, key: str) -> bytes | None:
        rows = self.database.query(f"SELECT data FROM {TABLE} WHERE sha256 = ?", (key,))
        return zlib.decompress(bytes(rows[0]["data"])) if rows else None

    def size(self, key: str) -> int | None:
        rows = self.database.query(f"SELECT size FROM {TABLE} WHERE sha256 = ?", (key,))
        return int(rows[0]["size"]) if rows else None
