"""Content-addressed blob store (raw messages, message bodies and header maps, attachments,
sanitised HTML) in a table beside the log: the same bytes are stored once, and writing them
again is a no-op. Events refer to blobs by key; erasing content is deleting its blobs."""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from typing import Any

from adapters.database import Database, Tx
from domain.mail import content_key

TABLE = "mailroom_blobs"


def blob_key(data: bytes) -> str:
    """sha256 of the bytes: the same key the domain refers to blobs by (domain.mail.content_key)."""
    return content_key(data)


def read_many(tx: Tx, keys: Iterable[str]) -> dict[str, bytes]:
    """The stored blobs among `keys`, in one statement of the caller's transaction (missing ones: absent)."""
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    marks = ", ".join("?" for _ in wanted)
    rows = tx.execute(f"SELECT sha256, data FROM {TABLE} WHERE sha256 IN ({marks})", wanted).all()
    return {str(r["sha256"]): zlib.decompress(bytes(r["data"])) for r in rows}


def compress_all(blobs: Iterable[bytes]) -> list[tuple[str, int, bytes]]:
    """(key, size, compressed) for each distinct blob: CPU work that may run in another process."""
    rows: dict[str, tuple[str, int, bytes]] = {}
    for data in blobs:
        key = blob_key(data)
        if key not in rows:
            rows[key] = (key, len(data), zlib.compress(data, 1))
    return list(rows.values())


class BlobStore:
    def __init__(self, database: Database, create_table: bool = True) -> None:
        self.database = database
        if create_table:
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

    def get_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        """The stored blobs among `keys`, by one query (missing ones are absent)."""
        with self.database.transaction(commit=False) as tx:
            return read_many(tx, keys)

    def delete_many(self, keys: Iterable[str]) -> int:
        """Deletes these blobs (erasure); how many were there."""
        wanted = sorted(set(keys))
        deleted = 0
        for begin in range(0, len(wanted), 500):
            part = wanted[begin:begin + 500]
            marks = ", ".join("?" for _ in part)
            with self.database.transaction() as tx:
                deleted += len(tx.execute(f"SELECT sha256 FROM {TABLE} WHERE sha256 IN ({marks})", part).all())
                tx.execute(f"DELETE FROM {TABLE} WHERE sha256 IN ({marks})", part)
        return deleted

    def size(self, key: str) -> int | None:
        rows = self.database.query(f"SELECT size FROM {TABLE} WHERE sha256 = ?", (key,))
        return int(rows[0]["size"]) if rows else None


def blobs_of(app: Any) -> BlobStore:
    """The blob store beside an application's event store: `app.blobs` if the composition root
    set one, else one over the application's own datastore, set up there on first use."""
    store: BlobStore | None = getattr(app, "blobs", None)
    if store is None:
        store = BlobStore(Database(app.factory.datastore), create_table=False)
        app.blobs = store
    return store
