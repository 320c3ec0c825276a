"""Helpers for the outbox chaos test (test_outbox_chaos.py): real `mailroom worker` processes
killed with SIGKILL and restarted, an SMTP sink that can stop a client just before the final
dot, a database write lock held from the test process, and what the log says about replies.

How a sender is stopped between its message data and its final dot: the sink calls
`before_data` (in its own thread) just before it answers DATA with 354; the test takes the
database's write lock there (`WriteBlock`). The sender then sends the whole message and waits
in `record_handover` (the hand-over is a write) until it is killed: the server has every byte
but the dot.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any
from uuid import UUID

from adapters.inbound import arrivals
from api.replies import queue_reply
from api.services import Services
from domain.reply import QUEUED, Reply
from domain.values import MailProtocol, ServerSettings, TransportSecurity
from tests.smtp_server import SmtpSink, _Smtp

ROOT = Path(__file__).resolve().parents[2]
ADDRESS = "support@acme.example"
# Nothing listens on port 1: the mailbox is disabled anyway, so the workers never sync it.
NOWHERE = ServerSettings("127.0.0.1", 1, TransportSecurity.NONE, ADDRESS)
WORKER = [sys.executable, "-m", "api.cli", "worker"]


# ----------------------------------------------------------------- the SMTP sink


class ChaosSink(SmtpSink):
    """An SmtpSink that calls `before_data()` (once, then it is cleared) in the server's thread
    just before it answers a DATA command with 354, while the client waits for that answer."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.before_data: Callable[[], None] | None = None
        super().__init__(*args, **kwargs)

    def _on_connect(self, connection: _Smtp, opened: bool) -> None:
        if opened:
            push = connection.push

            async def pushing(status: str) -> None:
                if status.startswith("354"):
                    with self._lock:
                        hook, self.before_data = self.before_data, None
                    if hook is not None:
                        hook()
                await push(status)

            connection.push = pushing  # type: ignore[method-assign,assignment]
        super()._on_connect(connection, opened)


def message_ids(sink: SmtpSink) -> Counter[str]:
    """How many times the sink accepted each Message-ID (without angle brackets)."""
    return Counter(str(message_from_bytes(m.data)["Message-ID"]).strip().strip("<>") for m in sink.messages)


# ----------------------------------------------------------------- the database's write lock


class WriteBlock:
    """Holds the database's write lock from the test process: SQLite's RESERVED lock (BEGIN
    IMMEDIATE on a connection of its own), PostgreSQL's EXCLUSIVE lock on the events table (what
    eventsourcing's recorder takes to insert, SELECTs still pass). Every event write of every
    process waits (SQLite: up to its 5 s busy timeout) until `release()`."""

    def __init__(self, services: Services, database_url: str) -> None:
        self.postgres = services.database.is_postgres
        self.table = str(services.app.recorder.events_table_name)  # type: ignore[attr-defined]
        self.url = database_url
        self.connection: Any = None

    def acquire(self) -> None:
        if self.postgres:
            import psycopg

            self.connection = psycopg.connect(self.url, autocommit=True)
            self.connection.execute("BEGIN")
            self.connection.execute(f"LOCK TABLE {self.table} IN EXCLUSIVE MODE")
        else:
            path = self.url.removeprefix("sqlite:///")
            self.connection = sqlite3.connect(path, timeout=10, isolation_level=None, check_same_thread=False)
            self.connection.execute("BEGIN IMMEDIATE")

    def release(self) -> None:
        if self.connection is not None:
            self.connection.execute("ROLLBACK")
            self.connection.close()
            self.connection = None


# ----------------------------------------------------------------- worker processes


@dataclass
class Kill:
    """One SIGKILL: how far each attempt its victim held had gone ("claimed": before the
    hand-over record, "handed over": after it); none: between two replies."""

    scenario: str
    pid: int
    stages: list[str]


def stage(reply: Reply) -> str:
    return "handed over" if reply.handed_over else "claimed"


class Workers:
    """`count` `mailroom worker` processes over the test's database (its MAILROOM_* environment)."""

    def __init__(self, count: int, logs: Path) -> None:
        self.logs = logs
        self.processes: list[subprocess.Popen[bytes]] = []
        self.started_at: list[float] = []
        self.spawned = 0
        self.killed: set[int] = set()
        for _ in range(count):
            self.processes.append(self._spawn())
            self.started_at.append(time.monotonic())

    def _spawn(self) -> subprocess.Popen[bytes]:
        self.spawned += 1
        with open(self.logs / f"worker-{self.spawned}.log", "wb") as out:
            return subprocess.Popen(WORKER, cwd=ROOT, env=os.environ.copy(), stdout=out, stderr=subprocess.STDOUT)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.processes]

    def kill_and_restart(self, pid: int, before_restart: Callable[[], None] = lambda: None) -> None:
        """SIGKILL, reaped at once (an SQLite lease names a pid: a zombie would still hold it);
        `before_restart` runs while the other workers are on their own; then a new worker."""
        slot = self.pids.index(pid)
        process = self.processes[slot]
        self.killed.add(pid)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        assert process.returncode == -signal.SIGKILL, process.returncode
        before_restart()
        self.processes[slot] = self._spawn()
        self.started_at[slot] = time.monotonic()

    def wait_until_up(self, seconds: float) -> None:
        """Until every worker has run at least `seconds` (it has booted and follows the log)."""
        for started in self.started_at:
            time.sleep(max(0.0, started + seconds - time.monotonic()))

    def check_alive(self) -> None:
        for process in self.processes:
            if process.pid not in self.killed:
                assert process.poll() is None, f"worker {process.pid} exited: {self.output()}"

    def output(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-2000:]}"
                         for p in sorted(self.logs.glob("worker-*.log")))

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=15)


@contextmanager
def workers(count: int, logs: Path) -> Iterator[Workers]:
    running = Workers(count, logs)
    try:
        yield running
    finally:
        running.stop()


def pid_of(worker: str | None) -> int:
    """The pid in an outbox worker name ("host:pid:random"); 0 for none."""
    return int(worker.split(":")[-2]) if worker else 0


# ----------------------------------------------------------------- mailbox, mails, replies


def customer_mail(n: int) -> bytes:
    message = EmailMessage()
    message["From"] = f"Customer {n} <c{n}@customer.example>"
    message["To"] = ADDRESS
    message["Subject"] = f"Order {1000 + n} has not arrived"
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = make_msgid(idstring=f"chaos.{n}", domain="customer.example")
    message.set_content(f"Where is order {1000 + n}?\nThanks")
    return bytes(message)


def conversations(services: Services, sink: SmtpSink, count: int) -> list[UUID]:
    """A mailbox sending through the sink, `count` customer mails taken in (one conversation
    each), then the mailbox disabled so that no worker tries to fetch its mail."""
    written, _ = services.app.bind_mailbox(ADDRESS, sink.password, "Acme Support", MailProtocol.IMAP, NOWHERE,
                                           sink.settings())
    result = services.app.take_in(written.id, arrivals(
        [(f"imap:INBOX:1:{n}", customer_mail(n)) for n in range(count)], ADDRESS, services.blobs))
    done = services.app.update_mailbox(written.id, enabled=False)
    services.projections.wait_for(done.position)
    return list(result.conversation_ids)


@dataclass
class Outbox:
    """The replies the test queued, round robin over its conversations."""

    services: Services
    conversation_ids: list[UUID]
    ids: list[UUID] = field(default_factory=list)
    message_id: dict[UUID, str] = field(default_factory=dict)

    def queue(self, count: int) -> list[UUID]:
        new = []
        for _ in range(count):
            n = len(self.ids)
            conversation_id = self.conversation_ids[n % len(self.conversation_ids)]
            written, row = queue_reply(self.services, conversation_id, None, f"Reply {n}: it ships today.")
            self.ids.append(written.id)
            self.message_id[written.id] = row["message_id"]
            new.append(written.id)
        return new

    def replies(self, ids: list[UUID] | None = None) -> dict[UUID, Reply]:
        found = {i: self.services.app.reply(i) for i in list(self.ids if ids is None else ids)}
        return {i: r for i, r in found.items() if r is not None}

    def pending(self) -> list[Reply]:
        return [r for r in self.replies().values() if r.status == QUEUED]

    def claimed(self) -> list[Reply]:
        """The replies a sender holds a claim on: the lease holder's attempts (up to 4 at once),
        and claims of killed senders that nobody has settled yet."""
        return [r for r in self.pending() if r.claimed_by is not None]

    def in_flight(self) -> tuple[int, list[Reply]]:
        """The sender and its attempts, when no claim is left over from a kill."""
        claimed = self.claimed()
        senders = {pid_of(r.claimed_by) for r in claimed}
        assert len(senders) == 1, [(r.id, r.claimed_by, step_reasons(self.services, r.id)) for r in claimed]
        return senders.pop(), claimed

    def wait_settled(self, ids: list[UUID] | None, seconds: float, check: Callable[[], None]) -> list[Reply]:
        """Until none of these replies is QUEUED (all of them: None); returns those still queued."""
        deadline = time.monotonic() + seconds
        while True:
            check()
            left = [r for r in self.replies(ids).values() if r.status == QUEUED]
            if not left or time.monotonic() > deadline:
                return left
            time.sleep(0.05)


def step_reasons(services: Services, reply_id: UUID) -> list[tuple[str, str | None]]:
    """The reply's recorded steps: (event name, reason or response) in order."""
    steps = []
    for event in services.app.repository.event_store.get(reply_id):
        name = type(event).__qualname__.split(".")[-1]
        steps.append((name, getattr(event, "reason", None) or getattr(event, "response", None)))
    return steps
