"""Fresh databases for tests: an SQLite file, or a new PostgreSQL database on 127.0.0.1:5432.

PostgreSQL databases are made ahead and dropped behind by one background thread, so that
CREATE DATABASE and DROP DATABASE run on the other core while tests run. A test that asks for
an initialised database (`fresh_database(..., initialised=True)`, the `environment` fixture's)
gets a copy of a template on which `bootstrap` once created every table, then emptied: the same
empty tables a first start creates, without paying for the DDL in every test. End-to-end tests
and the start-up checks ask for empty databases, so a first start on a bare PostgreSQL stays
covered.
"""

from __future__ import annotations

import os
import queue
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

PG_ADMIN_URL = os.environ.get("MAILROOM_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
TEST_SECRET = "test-secret-key-0123456789"
AHEAD = 2  # initialised databases kept ready


def on_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() == "true"


def unavailable(reason: str) -> None:
    """No silent skips on CI: a missing server fails the run there."""
    if on_ci():
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def _admin_connection():  # type: ignore[no-untyped-def]
    import psycopg

    return psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5)


def postgres_available() -> str | None:
    try:
        with _admin_connection():
            return None
    except Exception as exc:
        return f"PostgreSQL at {PG_ADMIN_URL} is not reachable: {exc}"


def _url(name: str) -> str:
    return f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"


def _new_name() -> str:
    return f"mailroom_test_{uuid.uuid4().hex[:12]}"


def _drop(name: str) -> None:
    with _admin_connection() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _make_template(name: str) -> None:
    """`bootstrap` creates every table in a new database; then every row is deleted."""
    import psycopg

    from adapters.settings import Settings
    from api.bootstrap import bootstrap

    with _admin_connection() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    services = bootstrap(Settings(database_url=_url(name), secret_key=TEST_SECRET),  # type: ignore[arg-type]
                         verify_login=lambda *args: None, discover=lambda *args: None)  # type: ignore[arg-type]
    services.close()
    with psycopg.connect(_url(name), autocommit=True) as conn:
        tables = [f'"{s}"."{t}"' for s, t in conn.execute(
            "SELECT schemaname, tablename FROM pg_tables"
            " WHERE schemaname NOT IN ('pg_catalog', 'information_schema')").fetchall()]
        if tables:
            conn.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")


class _Databases:
    """The background thread: keeps AHEAD initialised databases ready, drops used ones."""

    def __init__(self) -> None:
        self.template = f"mailroom_template_{uuid.uuid4().hex[:12]}"
        _make_template(self.template)
        self.ready: queue.Queue[str | BaseException] = queue.Queue()
        self.to_drop: list[str] = []
        self.wanted = AHEAD
        self.closing = False
        self.changed = threading.Condition()
        self.thread = threading.Thread(target=self._run, name="test-databases", daemon=True)
        self.thread.start()

    def take(self) -> str:
        with self.changed:
            self.wanted += 1
            self.changed.notify()
        made = self.ready.get(timeout=120)
        if isinstance(made, BaseException):
            raise made
        return made

    def drop_later(self, name: str) -> None:
        with self.changed:
            self.to_drop.append(name)
            self.changed.notify()

    def close(self) -> None:
        with self.changed:
            self.closing = True
            self.changed.notify()
        self.thread.join(timeout=120)
        while not self.ready.empty():
            made = self.ready.get_nowait()
            if isinstance(made, str):
                _drop(made)
        _drop(self.template)

    def _run(self) -> None:
        while True:
            with self.changed:
                while not (self.to_drop or self.wanted or self.closing):
                    self.changed.wait()
                drop = self.to_drop.pop(0) if self.to_drop else None
                make = drop is None and self.wanted > 0 and not self.closing
                if make:
                    self.wanted -= 1
                if drop is None and not make:
                    return  # closing, and every used database dropped
            try:
                if drop is not None:
                    _drop(drop)
                else:
                    name = _new_name()
                    with _admin_connection() as conn:
                        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
                    self.ready.put(name)
            except BaseException as exc:  # handed to the test that waits for a database
                if drop is None:
                    self.ready.put(exc)


_databases: _Databases | None = None
_lock = threading.Lock()


def _pool() -> _Databases:
    global _databases
    with _lock:
        if _databases is None:
            _databases = _Databases()
        return _databases


def close_databases() -> None:
    """At the end of the session: drops what is left (see tests/conftest.py)."""
    global _databases
    with _lock:
        databases, _databases = _databases, None
    if databases is not None:
        databases.close()


@contextmanager
def fresh_postgres(initialised: bool = False) -> Iterator[str]:
    """A new database, dropped afterwards (in the background); yields its URL. Empty, or with
    every table `bootstrap` creates, empty, if `initialised`."""
    problem = postgres_available()
    if problem:
        unavailable(problem)
    if initialised:
        name = _pool().take()
    else:
        name = _new_name()
        with _admin_connection() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _url(name)
    finally:
        with _lock:
            databases = _databases
        if databases is not None:
            databases.drop_later(name)
        else:
            _drop(name)


@contextmanager
def fresh_database(backend: str, directory: Path, initialised: bool = False) -> Iterator[dict[str, str]]:
    """The MAILROOM_* environment for a fresh database of the given backend."""
    if backend == "sqlite":
        yield {"MAILROOM_DATABASE_URL": f"sqlite:///{directory / 'mailroom.db'}"}
        return
    with fresh_postgres(initialised) as url:
        yield {"MAILROOM_DATABASE_URL": url, "MAILROOM_SECRET_KEY": TEST_SECRET}
