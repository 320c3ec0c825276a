"""One small SQL surface over the event store's own connection pool, for read models
and other tables beside the log. SQL is written once with `?` placeholders."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from eventsourcing.postgres import PostgresDatastore
from eventsourcing.sqlite import SQLiteDatastore

Row = dict[str, Any]
_PLACEHOLDER = re.compile(r"\?")


class Tx:
    """A transaction: execute, fetch rows as dicts."""

    def __init__(self, cursor: Any, postgres: bool) -> None:
        self._cursor = cursor
        self._postgres = postgres

    def _sql(self, sql: str) -> str:
        return _PLACEHOLDER.sub("%s", sql) if self._postgres else sql

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Tx:
        self._cursor.execute(self._sql(sql), tuple(params))
        return self

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self._cursor.executemany(self._sql(sql), [tuple(r) for r in rows])

    def all(self) -> list[Row]:
        return [dict(r) for r in self._cursor.fetchall()]

    def one(self) -> Row | None:
        row = self._cursor.fetchone()
        return None if row is None else dict(row)

    def scalar(self) -> Any:
        row = self._cursor.fetchone()
        if row is None:
            return None
        return next(iter(dict(row).values()))

    @property
    def rowcount(self) -> int:
        return int(self._cursor.rowcount)


class Database:
    def __init__(self, datastore: SQLiteDatastore | PostgresDatastore) -> None:
        self.datastore = datastore
        self.is_postgres = isinstance(datastore, PostgresDatastore)

    @contextmanager
    def transaction(self, commit: bool = True) -> Iterator[Tx]:
        with self.datastore.transaction(commit=commit) as cursor:
            yield Tx(cursor, self.is_postgres)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        with self.transaction(commit=False) as tx:
            return tx.execute(sql, params).all()

    def connect(self) -> Any:
        """A separate autocommit PostgreSQL connection (LISTEN, advisory locks): not from the pool,
        so it can be held for long without starving it."""
        import psycopg
        from psycopg.rows import dict_row

        assert self.is_postgres, "only PostgreSQL has session connections of its own"
        pool: Any = self.datastore.pool
        info: dict[str, Any] = pool.kwargs
        return psycopg.connect(dbname=info["dbname"], host=info["host"], port=info["port"], user=info["user"],
                               password=info["password"], autocommit=True, row_factory=dict_row)

    def blob_type(self) -> str:
        return "BYTEA" if self.is_postgres else "BLOB"
