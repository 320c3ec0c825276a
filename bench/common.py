"""Shared by the benchmarks: throw-away databases on both backends, services over them, tables."""

from __future__ import annotations

import cProfile
import io
import os
import pstats
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from pydantic import SecretStr

from adapters.settings import Settings
from api.bootstrap import bootstrap
from api.services import Services
from domain.ports import LoginRefused
from domain.values import MailProtocol, ServerSettings

PG_ADMIN_URL = os.environ.get("MAILROOM_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
BACKENDS = ("sqlite", "postgres")


def _admin() -> Any:
    import psycopg

    return psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5)


@contextmanager
def fresh_database(backend: str) -> Iterator[str]:
    """A mailroom database URL: a new SQLite file in a temp dir, or a new PostgreSQL database."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="mailroom-bench-") as directory:
            yield f"sqlite:///{directory}/bench.db"
        return
    name = f"mailroom_bench_{uuid.uuid4().hex[:12]}"
    with _admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        with _admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _no_login(protocol: MailProtocol, server: ServerSettings, password: str) -> None:
    raise LoginRefused("BENCH", "benchmarks do not log in to mail servers")


def services(url: str) -> Services:
    """Mailroom wired as in production (bootstrap), over the given database."""
    settings = Settings(database_url=url, secret_key=SecretStr("bench-secret-key-0123456789"))
    return bootstrap(settings, verify_login=_no_login)


def timed(run: Callable[[], object]) -> tuple[float, float]:
    """Seconds the call took: wall clock, and this process's CPU time."""
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - wall, time.process_time() - cpu


def profiled(run: Callable[[], object], top: int = 25) -> str:
    """Runs the call under cProfile; the top functions by cumulative and by own time."""
    profile = cProfile.Profile()
    profile.runcall(run)
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out).strip_dirs()
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)
    return out.getvalue()


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain-text table: first column left-aligned, the rest right-aligned."""
    cells = [[str(c) for c in header], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]

    def line(row: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))

    return "\n".join([line(cells[0]), line(["-" * w for w in widths]), *map(line, cells[1:])])
