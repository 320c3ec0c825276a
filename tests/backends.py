"""Fresh databases for tests: an SQLite file, or a new PostgreSQL database on 127.0.0.1:5432."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

PG_ADMIN_URL = os.environ.get("MAILROOM_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
TEST_SECRET = "test-secret-key-0123456789"


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


@contextmanager
def fresh_postgres() -> Iterator[str]:
    """A new empty database, dropped afterwards; yields its URL."""
    problem = postgres_available()
    if problem:
        unavailable(problem)
    name = f"mailroom_test_{uuid.uuid4().hex[:12]}"
    with _admin_connection() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with _admin_connection() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def fresh_database(backend: str, directory: Path) -> Iterator[dict[str, str]]:
    """The MAILROOM_* environment for a fresh database of the given backend."""
    if backend == "sqlite":
        yield {"MAILROOM_DATABASE_URL": f"sqlite:///{directory / 'mailroom.db'}"}
        return
    with fresh_postgres() as url:
        yield {"MAILROOM_DATABASE_URL": url, "MAILROOM_SECRET_KEY": TEST_SECRET}
