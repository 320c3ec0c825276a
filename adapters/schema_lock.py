"""One process at a time creates the tables: on a fresh PostgreSQL, replicas and workers that
start together would otherwise race in CREATE TABLE / CREATE INDEX IF NOT EXISTS ("tuple
concurrently updated", duplicate pg_type rows) and one of them would die at start."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

SCHEMA_LOCK = 0x6D61696C726F6F6D  # "mailroom" as a 64-bit advisory lock key


@contextmanager
def schema_lock(env: dict[str, str]) -> Iterator[None]:
    """Held while `bootstrap` creates or checks tables; nothing to do for SQLite, whose
    writers are serialised by the file lock."""
    if env.get("PERSISTENCE_MODULE") != "eventsourcing.postgres":
        yield
        return
    with psycopg.connect(dbname=env["POSTGRES_DBNAME"], host=env["POSTGRES_HOST"], port=env["POSTGRES_PORT"],
                         user=env["POSTGRES_USER"], password=env["POSTGRES_PASSWORD"],
                         connect_timeout=int(env.get("POSTGRES_CONNECT_TIMEOUT", "10")),
                         autocommit=True) as connection:
        connection.execute("SELECT pg_advisory_lock(%s)", (SCHEMA_LOCK,))
        try:
            yield
        finally:
            connection.execute("SELECT pg_advisory_unlock(%s)", (SCHEMA_LOCK,))
