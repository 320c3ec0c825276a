"""Replies through the outbox to a local SMTP server: replies per second, and the time from
`queue_reply` returning until the reply is SENT.

Set-up (untimed), per backend: a fresh database; mailroom's services as in production
(bootstrap), trusting the sink's CA; a mailbox whose outgoing server is the sink; --conversations
customer mails taken in, each opening a conversation. The sink is tests/smtp_server.py's
`SmtpSink` (aiosmtpd) in a process of its own, so that its TLS and parsing do not share this
process's interpreter: STARTTLS with AUTH PLAIN afterwards, as production sends, and plaintext
("NONE", AUTH without TLS) to show the cost of TLS.

- throughput: --replies replies queued (round robin over the conversations) while no sender
  runs, then the outbox follower started in a thread (`services.outbox.run(stop, signal)`, as a
  worker runs it: up to 4 SMTP transactions at once, one connection each) and timed until the
  log holds a Sent event for every one of them; replies/s.
- latency: the follower running in its thread, --replies replies queued one by one at a steady
  --rate per second; per reply, from `queue_reply` returning to its Sent event's timestamp
  (the same wall clock); p50 / p99 / max.

At the end of each run the sink must have accepted every reply exactly once (checked).

`--nodelay` sets TCP_NODELAY on the sender's SMTP sockets (smtplib in this process), which
mailroom does not do: adapters/smtp.py sends the message and its final dot in two writes (the
hand-over is recorded between them), so Nagle's algorithm holds the dot back until the server
acknowledges the data, and the server delays that acknowledgement (about 40 ms on Linux).
`--reuse-tls` makes `ssl.create_default_context()` hand out one context per purpose in this
process: adapters/smtp.py builds a new one for every delivery, which loads the system's CA
bundle again (about 25 ms of CPU each, under the GIL, in every one of the 4 sending threads).

    .venv/bin/python -m bench.outbox [--replies 500] [--rate 10] [--conversations 50]
        [--backend sqlite|postgres|both] [--security STARTTLS|NONE|both] [--nodelay] [--reuse-tls]
"""

from __future__ import annotations

import argparse
import multiprocessing
import smtplib
import socket
import ssl
import statistics
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from multiprocessing.connection import Connection
from typing import Any
from uuid import UUID

from pydantic import SecretStr

from adapters.inbound import arrivals
from adapters.settings import Settings
from api.bootstrap import bootstrap
from api.replies import queue_reply
from api.services import Services
from bench.common import BACKENDS, fresh_database, table
from domain.reply import SENT, Reply
from domain.values import MailProtocol, ServerSettings, TransportSecurity

ADDRESS = "support@acme.example"
USER, PASSWORD = "mailroom@example.test", "smtp-secret"
SECURITIES = ("STARTTLS", "NONE")
SENT_TOPIC = "mailroom:Reply.Sent"


# ----------------------------------------------------------------- the sink, in a process of its own


def _sink_main(mode: str, pipe: Connection) -> None:
    from tests.smtp_server import SmtpSink

    with SmtpSink(mode, USER, PASSWORD) as sink:  # type: ignore[arg-type]
        pipe.send((sink.host, sink.port, sink.ca_file))
        while True:
            command = pipe.recv()
            if command == "count":
                pipe.send(len(sink.messages))
            elif command == "ids":
                pipe.send([_message_id(m.data) for m in sink.messages])
            elif command == "reset":
                sink.reset()
                pipe.send(True)
            else:
                return


def _message_id(data: bytes) -> str:
    from email import message_from_bytes

    return str(message_from_bytes(data)["Message-ID"]).strip().strip("<>")


class Sink:
    """SmtpSink(mode) in a child process; `ids()` the Message-IDs it accepted."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        context = multiprocessing.get_context("spawn")
        self.pipe, child = context.Pipe()
        self.process = context.Process(target=_sink_main, args=(mode, child), daemon=True)
        self.process.start()
        self.host, self.port, self.ca_file = self.pipe.recv()

    def settings(self) -> ServerSettings:
        return ServerSettings(self.host, self.port, TransportSecurity(self.mode), USER)

    def ask(self, command: str) -> Any:
        self.pipe.send(command)
        return self.pipe.recv()

    def close(self) -> None:
        self.pipe.send("stop")
        self.process.join(10)


# ----------------------------------------------------------------- mailroom


def _customer_mail(n: int) -> bytes:
    message = EmailMessage()
    message["From"] = f"Customer {n} <c{n}@customer.example>"
    message["To"] = ADDRESS
    message["Subject"] = f"Order {1000 + n} has not arrived"
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = make_msgid(idstring=f"bench.{n}", domain="customer.example")
    message.set_content(f"Hello,\n\nwhere is order {1000 + n}? It was due last week.\n\nThanks\nCustomer {n}\n")
    return bytes(message)


def _services(url: str, sink: Sink) -> Services:
    settings = Settings(database_url=url, secret_key=SecretStr("bench-secret-key-0123456789"),
                        extra_ca_file=sink.ca_file)
    return bootstrap(settings, verify_login=lambda *args: None)


def _conversations(services: Services, sink: Sink, count: int) -> list[UUID]:
    nowhere = ServerSettings("127.0.0.1", 1, TransportSecurity.NONE, ADDRESS)  # never fetched: no scheduler
    written, _ = services.app.bind_mailbox(ADDRESS, PASSWORD, "Acme Support", MailProtocol.IMAP, nowhere,
                                           sink.settings())
    result = services.app.take_in(written.id, arrivals(
        [(f"imap:INBOX:1:{n}", _customer_mail(n)) for n in range(count)], ADDRESS, services.blobs))
    services.projections.wait_for(result.position, timeout=60)
    return list(result.conversation_ids)


BODY = ("Hello,\n\nthank you for your patience. Your order left our warehouse this morning and should "
        "arrive within two working days; the tracking link follows in a separate mail.\n\nKind regards")


def _queue(services: Services, conversation_ids: list[UUID], n: int) -> UUID:
    written, _ = queue_reply(services, conversation_ids[n % len(conversation_ids)], None, f"{BODY}\n#{n}")
    return written.id


def _sent_count(services: Services) -> int:
    table_name = services.app.recorder.events_table_name  # type: ignore[attr-defined]
    rows = services.database.query(f"SELECT COUNT(*) AS n FROM {table_name} WHERE topic = ?", (SENT_TOPIC,))
    return int(rows[0]["n"])


class Sender:
    """The outbox follower in a thread of its own, as a worker runs it."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.stop = threading.Event()
        signal = services.app.recorder.signal  # type: ignore[attr-defined]
        self.thread = threading.Thread(target=services.outbox.run, args=(self.stop, signal), name="outbox")

    def __enter__(self) -> Sender:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(30)


def _wait_sent(services: Services, total: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while _sent_count(services) < total:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{_sent_count(services)} of {total} replies SENT within {timeout:.0f} s")
        time.sleep(0.05)


@dataclass
class Throughput:
    backend: str
    security: str
    replies: int
    seconds: float


@dataclass
class Latency:
    backend: str
    security: str
    rate: float
    queued_rate: float  # the rate actually achieved by the queueing loop
    seconds: list[float]


def _check_once(services: Services, sink: Sink, ids: list[UUID]) -> None:
    accepted = sink.ask("ids")
    wanted = []
    for reply_id in ids:
        reply = services.app.reply(reply_id)
        assert reply is not None and reply.status == SENT and reply.reason is None, (reply_id, reply)
        wanted.append(reply.mail.message_id)
    assert sorted(accepted) == sorted(wanted), f"the sink accepted {len(accepted)} messages for {len(wanted)} replies"


def throughput(backend: str, security: str, replies: int, conversations: int) -> Throughput:
    sink = Sink(security)
    try:
        with fresh_database(backend) as url:
            services = _services(url, sink)
            try:
                conversation_ids = _conversations(services, sink, conversations)
                ids = [_queue(services, conversation_ids, n) for n in range(replies)]
                started = time.perf_counter()
                with Sender(services):
                    _wait_sent(services, replies, 300)
                seconds = time.perf_counter() - started
                _check_once(services, sink, ids)
            finally:
                services.close()
    finally:
        sink.close()
    return Throughput(backend, security, replies, seconds)


def latency(backend: str, security: str, replies: int, rate: float, conversations: int) -> Latency:
    sink = Sink(security)
    try:
        with fresh_database(backend) as url:
            services = _services(url, sink)
            try:
                conversation_ids = _conversations(services, sink, conversations)
                queued_at: dict[UUID, datetime] = {}
                with Sender(services):
                    warm_up = _queue(services, conversation_ids, 0)  # connections, TLS, caches
                    _wait_sent(services, 1, 30)
                    began = time.perf_counter()
                    for n in range(1, replies + 1):
                        time.sleep(max(0.0, began + (n - 1) / rate - time.perf_counter()))
                        reply_id = _queue(services, conversation_ids, n)
                        queued_at[reply_id] = datetime.now(UTC)
                    queued_rate = replies / max(1e-9, time.perf_counter() - began)
                    _wait_sent(services, replies + 1, 120)
                seconds = []
                for reply_id, at in queued_at.items():
                    reply = services.app.reply(reply_id)
                    assert isinstance(reply, Reply) and reply.status == SENT
                    seconds.append((reply.modified_on - at).total_seconds())  # modified_on: the Sent event's
                _check_once(services, sink, [warm_up, *queued_at])
            finally:
                services.close()
    finally:
        sink.close()
    return Latency(backend, security, rate, queued_rate, sorted(seconds))


def _no_delay() -> None:
    smtp: Any = smtplib.SMTP  # _get_socket is private to smtplib
    connect = smtp._get_socket

    def get_socket(self: smtplib.SMTP, host: str, port: int, timeout: float) -> socket.socket:
        sock: socket.socket = connect(self, host, port, timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    smtp._get_socket = get_socket


def _reuse_tls_context() -> None:
    create = ssl.create_default_context
    made: dict[ssl.Purpose, ssl.SSLContext] = {}

    def cached(purpose: ssl.Purpose = ssl.Purpose.SERVER_AUTH, **kwargs: Any) -> ssl.SSLContext:
        if kwargs:
            return create(purpose, **kwargs)
        if purpose not in made:
            made[purpose] = create(purpose)
        return made[purpose]

    ssl.create_default_context = cached


def percentile(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.outbox", description=__doc__.split("\n\n")[0])
    parser.add_argument("--replies", type=int, default=500, help="replies per run (default 500)")
    parser.add_argument("--rate", type=float, default=10.0,
                        help="replies queued per second for the latency (default 10; keep it below the throughput)")
    parser.add_argument("--conversations", type=int, default=50, help="conversations replied to (default 50)")
    parser.add_argument("--backend", choices=[*BACKENDS, "both"], default="both", help="default both")
    parser.add_argument("--security", choices=[*SECURITIES, "both"], default="both",
                        help="the sink's transport: STARTTLS (+AUTH, as production), NONE, or both (default)")
    parser.add_argument("--nodelay", action="store_true", help="TCP_NODELAY on the sender's SMTP sockets")
    parser.add_argument("--reuse-tls", action="store_true", help="one TLS client context, not one per delivery")
    args = parser.parse_args(argv)
    if args.nodelay:
        _no_delay()
    if args.reuse_tls:
        _reuse_tls_context()
    backends = BACKENDS if args.backend == "both" else (args.backend,)
    securities = SECURITIES if args.security == "both" else (args.security,)
    began = time.perf_counter()
    rates: list[Throughput] = []
    delays: list[Latency] = []
    for backend in backends:
        for security in securities:
            rates.append(throughput(backend, security, args.replies, args.conversations))
            print(f"  {backend} {security} throughput done", flush=True)
            delays.append(latency(backend, security, args.replies, args.rate, args.conversations))
            print(f"  {backend} {security} latency done", flush=True)
    nodelay = (", TCP_NODELAY" if args.nodelay else "") + (", one TLS context" if args.reuse_tls else "")
    print(f"\noutbox throughput: {args.replies} replies queued, then the outbox follower started in a thread "
          f"(4 SMTP transactions at once{nodelay}) until all are SENT")
    print(table(["backend", "security", "replies", "seconds", "replies/s"],
                [[r.backend, r.security, r.replies, f"{r.seconds:.2f}", f"{r.replies / r.seconds:,.0f}"]
                 for r in rates]))
    print(f"\noutbox latency: {args.replies} replies queued at {args.rate:g}/s with the follower running{nodelay}, "
          "queue_reply returned -> Sent event (ms)")
    print(table(["backend", "security", "replies", "queued/s", "p50", "p99", "mean", "max"],
                [[d.backend, d.security, len(d.seconds), f"{d.queued_rate:.1f}",
                  f"{percentile(d.seconds, 50) * 1000:,.1f}", f"{percentile(d.seconds, 99) * 1000:,.1f}",
                  f"{statistics.mean(d.seconds) * 1000:,.1f}", f"{d.seconds[-1] * 1000:,.1f}"] for d in delays]))
    print("every reply was accepted by the sink exactly once (checked)")
    print(f"(total run {time.perf_counter() - began:.0f} s)")


if __name__ == "__main__":
    main()
