"""PROCESS.md: unknown or malformed settings stop `mailroom serve` at once, with one line
naming the variable, and nothing is written."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.backends import fresh_postgres
from tests.e2e.conftest import free_port, run_mailroom

QUICK = 15.0  # seconds; a refused start must not hang around (imports alone take ~1 s)


def refused_start(env: dict[str, str], cwd: Path, variable: str) -> str:
    started = time.monotonic()
    done = run_mailroom(env, "serve", "--port", str(free_port()), cwd=cwd, timeout=QUICK)
    elapsed = time.monotonic() - started

    assert done.returncode != 0
    assert elapsed < QUICK
    lines = done.stderr.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {done.stderr!r}"
    assert variable in lines[0]
    return lines[0]


def tables_of(database_url: str) -> list[str]:
    if database_url.startswith("sqlite:///"):
        path = Path(database_url.removeprefix("sqlite:///"))
        if not path.exists():
            return []
        import sqlite3

        with sqlite3.connect(path) as conn:
            return [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        return [r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")]


def test_unknown_time_zone_stops_serve(environment: dict[str, str], tmp_path: Path) -> None:
    line = refused_start({**environment, "MAILROOM_TIMEZONE": "Mars/Base"}, tmp_path, "MAILROOM_TIMEZONE")

    assert "Mars/Base" in line
    assert tables_of(environment["MAILROOM_DATABASE_URL"]) == []  # nothing written
    assert not (tmp_path / "mailroom.db").exists()


def test_unsupported_database_url_stops_serve(tmp_path: Path) -> None:
    refused_start({"MAILROOM_DATABASE_URL": "mysql://x"}, tmp_path, "MAILROOM_DATABASE_URL")

    assert list(tmp_path.iterdir()) == []  # not even a default ./mailroom.db


def test_postgres_without_secret_key_stops_serve(tmp_path: Path) -> None:
    with fresh_postgres() as url:
        refused_start({"MAILROOM_DATABASE_URL": url}, tmp_path, "MAILROOM_SECRET_KEY")

        assert tables_of(url) == []


@pytest.mark.parametrize(("variable", "value"), [
    ("MAILROOM_POLL_SECONDS", "-1"),
    ("MAILROOM_EXTRA_CA_FILE", "/no/such/ca.pem"),
    ("MAILROOM_ADMIN_TOKEN", "short"),
])
def test_other_malformed_settings_stop_serve(tmp_path: Path, variable: str, value: str) -> None:
    database_url = f"sqlite:///{tmp_path / 'mailroom.db'}"

    refused_start({"MAILROOM_DATABASE_URL": database_url, variable: value}, tmp_path, variable)

    assert not (tmp_path / "mailroom.db").exists()


def test_token_create_refuses_bad_settings_the_same_way(tmp_path: Path) -> None:
    done = run_mailroom({"MAILROOM_DATABASE_URL": f"sqlite:///{tmp_path / 'm.db'}", "MAILROOM_TIMEZONE": "Mars/Base"},
                        "token", "create", "--role", "ADMIN", "--name", "x", cwd=tmp_path)

    assert done.returncode != 0
    assert done.stdout == ""  # no token printed
    assert len(done.stderr.splitlines()) == 1 and "MAILROOM_TIMEZONE" in done.stderr
