"""Mail intake end to end: N realistic messages (about 5 KB each) in a private Dovecot become
conversations through `MailboxSync.of(services).sync(mailbox_id)`, on SQLite and PostgreSQL,
next to the raw imapclient fetch rate of the same mailbox in the same run.

Set-up (untimed): a private Dovecot (tests/dovecot.py) with one user; the messages are
APPENDed over one IMAP connection (MULTIAPPEND, 100 messages per command). About 30% are
replies threading to an earlier message (In-Reply-To/References), 30% are plain + HTML
alternatives, 15% carry a small attachment, some have non-ASCII text. One untimed raw fetch
warms Dovecot's indexes and the page cache.

Per backend (--backend: one of them, or both), --rounds times (the best round counts; machine
load varies), each round on a fresh SQLite file / PostgreSQL database with mailroom wired by
bootstrap (real mail-server logins) and the mailbox bound over plain IMAP on loopback:
  raw fetch   imapclient: login, EXAMINE, SEARCH ALL, fetch(uids, ["BODY.PEEK[]"]) 200 at a time
  end-to-end  MailboxSync.sync(mailbox_id), then services.projections.wait_for(report.position):
              until the conversations are in the read model (checked afterwards, untimed). As
              `mailroom serve` runs them, each view's log follower follows the log in a thread of
              its own during the sync (--serial: they catch up afterwards instead).
The breakdown times the phases of the best end-to-end round by wrapping functions with timers
(each row is time spent in that function itself, not in the wrapped functions it calls), so the
rows add up to the end-to-end time. --profile adds one more end-to-end run per backend (fresh
database again) under cProfile.

    .venv/bin/python -m bench.intake [--messages 2000] [--rounds 3] [--backend sqlite|postgres|both]
        [--serial] [--profile]
"""

from __future__ import annotations

import argparse
import functools
import random
import textwrap
import threading
import time
import types
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any
from uuid import UUID

from imapclient import IMAPClient
from pydantic import SecretStr

import adapters.blobs
import adapters.inbound
import adapters.locks
import api.processes.sync
from adapters.imap import ImapSession
from adapters.settings import Settings
from api.bootstrap import bootstrap, real_login
from api.processes.sync import MailboxSync
from api.services import Services
from bench.common import BACKENDS, fresh_database, profiled, table
from projections.conversation_queries import ConversationFilter
from projections.tables import Rows
from tests.dovecot import Dovecot
from tests.integration.intake_support import bind

GOAL = 1000.0  # messages/s end to end on PostgreSQL
FETCH_BATCH = 200  # messages per raw UID FETCH
APPEND_BATCH = 100  # messages per MULTIAPPEND
PASSWORD = "bench-pass-0123"
SEED = 11

# -- the messages ----------------------------------------------------------------------------

_VOCABULARY = (
    "invoice order account payment refund delivery parcel tracking number address customer support "
    "subscription renewal plan upgrade downgrade password login error message screen browser update "
    "warehouse shipment return label receipt discount voucher code price total tax shipping express "
    "yesterday today tomorrow morning afternoon week month please could would should thanks again "
    "the a an of to in for on with at by from about after before still not yet already also only "
    "we I you they it this that my your our their is was were has have had will can cannot did "
    "received charged twice missing damaged wrong size colour replacement exchange cancel confirm"
)
_WORDS = _VOCABULARY.split()
_FIRST = ("Carol", "Dave", "Erin", "Frank", "Grace", "Heidi", "Ivan", "Judy", "Mallory", "Niaj", "Olivia",
          "Peggy", "Rupert", "Sybil", "Trent", "Victor", "Walter", "Zoë", "Jürgen", "Ana")
_LAST = ("Smith", "Jones", "Müller", "García", "Rossi", "Dubois", "Nowak", "Silva", "Kim", "Larsen")
_DOMAINS = ("customer.example", "mail.example.org", "shop.example.net", "corp.example.com", "web.example")
_TOPICS = ("Invoice {n} is missing", "Order {n} not delivered", "Refund for order {n}", "Cannot log in",
           "Question about my subscription", "Wrong item in parcel {n}", "Change delivery address",
           "Payment failed for order {n}", "Discount code {n} does not work", "Damaged goods, order {n}")
_SERIALISE = policy.default.clone(linesep="\r\n")


def _sentence(rng: random.Random) -> str:
    words = rng.choices(_WORDS, k=rng.randint(8, 18))
    return " ".join(words).capitalize() + rng.choice((".", ".", ".", "?", "!"))


def _paragraphs(rng: random.Random, chars: int) -> list[str]:
    out: list[str] = []
    total = 0
    while total < chars:
        paragraph = " ".join(_sentence(rng) for _ in range(rng.randint(2, 5)))
        out.append(paragraph)
        total += len(paragraph) + 2
    return out


def _html(paragraphs: list[str], name: str) -> str:
    body = "\n".join(f'<p style="margin:0 0 8px 0">{p}</p>' for p in paragraphs)
    return (f'<html><head><meta charset="utf-8"></head><body style="font-family:Arial,sans-serif">'
            f"<div>Hello,</div>\n{body}\n<div>Kind regards,<br>{name}</div></body></html>")


@dataclass
class Corpus:
    raws: list[bytes]
    threads: int  # messages that open a conversation (the others are replies)


def corpus(n: int, seed: int = SEED) -> Corpus:
    """N messages of about 5 KB: distinct Message-IDs, ~30% replies to an earlier message (with
    a quoted part), ~30% text + HTML alternatives, ~15% with a small attachment."""
    rng = random.Random(seed)
    customers = [(f"{rng.choice(_FIRST)} {rng.choice(_LAST)}", f"c{i}@{rng.choice(_DOMAINS)}") for i in range(300)]
    sent: list[tuple[str, str, list[str], tuple[str, str]]] = []  # (message_id, subject, references, customer)
    start = datetime(2024, 3, 4, 8, 0, tzinfo=UTC)
    raws: list[bytes] = []
    threads = 0
    for i in range(n):
        reply = bool(sent) and rng.random() < 0.3
        if reply:
            parent_id, parent_subject, parent_refs, customer = rng.choice(sent[-300:])
            subject = parent_subject if parent_subject.startswith("Re: ") else f"Re: {parent_subject}"
            references = [*parent_refs[-9:], parent_id]
        else:
            customer = rng.choice(customers)
            subject = rng.choice(_TOPICS).format(n=rng.randint(10_000, 99_999))
            references = []
            threads += 1
        message_id = f"<{i:06d}.{rng.getrandbits(48):012x}@{customer[1].split('@')[1]}>"
        name, address = customer
        html = rng.random() < 0.3
        attachment = rng.random() < 0.15
        # Sizes chosen so that the raw message (CRLF, headers, MIME overhead) is about 5 KB.
        text_chars = 3700 - (1900 if html else 0) - (1500 if attachment else 0) - (300 if reply else 0)
        paragraphs = _paragraphs(rng, text_chars)
        if rng.random() < 0.7:  # most clients wrap lines (7bit); the others' long lines go quoted-printable
            paragraphs = [textwrap.fill(p, 72) for p in paragraphs]
        text = "Hello,\n\n" + "\n\n".join(paragraphs) + f"\n\nKind regards,\n{name}\n"
        if reply:
            text += "\nOn an earlier day, support wrote:\n" + "\n".join(
                f"> {line}" for line in _paragraphs(rng, 250))

        message = EmailMessage()
        when = start + timedelta(seconds=37 * i)
        message["Return-Path"] = f"<{address}>"
        message["Received"] = (f"from mx{i % 7}.{address.split('@')[1]} (mx{i % 7}.{address.split('@')[1]} "
                               f"[192.0.2.{i % 250 + 1}]) by mail.example.com (Postfix) with ESMTPS id "
                               f"{rng.getrandbits(40):010X}; {format_datetime(when)}")
        message["Received"] = f"by mx{i % 7}.{address.split('@')[1]} with HTTP; {format_datetime(when)}"
        message["From"] = f"{name} <{address}>"
        message["To"] = "Support <support@example.com>"
        if rng.random() < 0.1:
            message["Cc"] = f"{rng.choice(customers)[0]} <{rng.choice(customers)[1]}>"
        message["Subject"] = subject
        message["Date"] = format_datetime(when)
        message["Message-ID"] = message_id
        if references:
            message["In-Reply-To"] = references[-1]
            message["References"] = " ".join(references)
        message["User-Agent"] = rng.choice(("Mozilla Thunderbird 115.8", "Apple Mail (2.3731)",
                                            "Microsoft Outlook 16.0", "Roundcube Webmail/1.6.5"))
        message["X-Originating-IP"] = f"[198.51.100.{i % 250 + 1}]"
        message.set_content(text)
        if html:
            message.add_alternative(_html(paragraphs, name), subtype="html")
        if attachment:
            data = rng.randbytes(1000)
            message.add_attachment(data, maintype="application", subtype="pdf", filename=f"scan-{i}.pdf")
        raws.append(message.as_bytes(policy=_SERIALISE))
        sent.append((message_id, subject, references, customer))
    return Corpus(raws, threads)


def deliver(dovecot: Dovecot, user: str, raws: Sequence[bytes]) -> None:
    """APPENDs the messages over one connection, many per command (MULTIAPPEND) if offered."""
    client = IMAPClient(dovecot.host, port=dovecot.imap_port, ssl=False, timeout=60)
    try:
        client.login(user, PASSWORD)
        if client.has_capability("MULTIAPPEND"):
            for start in range(0, len(raws), APPEND_BATCH):
                client.multiappend("INBOX", raws[start:start + APPEND_BATCH])
        else:
            for raw in raws:
                client.append("INBOX", raw)
    finally:
        client.logout()


def raw_fetch(dovecot: Dovecot, user: str) -> tuple[int, int, float]:
    """imapclient alone: login, EXAMINE, SEARCH, BODY.PEEK[] in batches; (messages, bytes, seconds)."""
    start = time.perf_counter()
    client = IMAPClient(dovecot.host, port=dovecot.imap_port, ssl=False, timeout=60)
    try:
        client.login(user, PASSWORD)
        client.select_folder("INBOX", readonly=True)
        uids = client.search(["ALL"])
        count = size = 0
        for first in range(0, len(uids), FETCH_BATCH):
            fetched = client.fetch(uids[first:first + FETCH_BATCH], ["BODY.PEEK[]"])
            count += len(fetched)
            size += sum(len(values[b"BODY[]"]) for values in fetched.values())
    finally:
        client.logout()
    return count, size, time.perf_counter() - start


# -- timing the phases -------------------------------------------------------------------------


class Phases:
    """Exclusive time per label: a wrapped call's time minus that of wrapped calls inside it. Kept per
    thread, so if the code under test ever works in threads, the rows add up to more than the wall time."""

    def __init__(self) -> None:
        self.seconds: defaultdict[str, float] = defaultdict(float)
        self.calls: Counter[str] = Counter()
        self._local = threading.local()

    def wrap(self, label: str, func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def run(*args: Any, **kwargs: Any) -> Any:
            # per open wrapped call of this thread: time of the wrapped calls inside it
            children: list[float] = self._local.__dict__.setdefault("children", [])
            children.append(0.0)
            start = time.perf_counter()
            try:
                return func(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - start
                self.seconds[label] += elapsed - children.pop()
                self.calls[label] += 1
                if children:
                    children[-1] += elapsed

        return run


@contextmanager
def patched(target: Any, name: str, value: Any) -> Iterator[None]:
    """Sets target.name for the block (a class, module or instance attribute), then restores it."""
    own = name in vars(target)
    original = vars(target).get(name)
    setattr(target, name, value)
    try:
        yield
    finally:
        if own:
            setattr(target, name, original)
        else:
            delattr(target, name)


# (group, label) in the order printed
PHASES = (
    ("fetch", "IMAP login + logout"),
    ("fetch", "IMAP EXAMINE, UID SEARCH, RFC822.SIZE"),
    ("fetch", "IMAP UID FETCH BODY.PEEK[] (+ parse response)"),
    ("parse+blobs", "MIME parse (parse_mail)"),
    ("parse+blobs", "blob keys (sha256), Arrival objects"),
    ("parse+blobs", "blob compress (zlib)"),
    ("parse+blobs", "blob insert (BlobStore.put_many)"),
    ("take_in/save", "repository.get lookups (_find)"),
    ("take_in/save", "domain: threading, new aggregates"),
    ("take_in/save", "save: collect + encode events"),
    ("take_in/save", "save: insert events (recorder)"),
    ("projections", "read log (select_notifications)"),
    ("projections", "decode events + apply handlers"),
    ("projections", "row reads (Rows.get)"),
    ("projections", "row writes (Rows.flush)"),
    ("projections", "positions, lock, commit, wait_for"),
    ("sync", "lock, lease, cursor, secrets, other"),
)


@contextmanager
def instrumented(services: Services, phases: Phases) -> Iterator[None]:
    """Wraps the functions of one end-to-end run with `phases` timers (exclusive times)."""
    label = {lab: lab for _, lab in PHASES}
    app, proj = services.app, services.projections
    sync_other = label["lock, lease, cursor, secrets, other"]
    wraps: list[tuple[Any, str, str]] = [
        (ImapSession, "__init__", label["IMAP login + logout"]),
        (ImapSession, "close", label["IMAP login + logout"]),
        (ImapSession, "open_folder", label["IMAP EXAMINE, UID SEARCH, RFC822.SIZE"]),
        (ImapSession, "new_uids", label["IMAP EXAMINE, UID SEARCH, RFC822.SIZE"]),
        (ImapSession, "sizes", label["IMAP EXAMINE, UID SEARCH, RFC822.SIZE"]),
        (ImapSession, "fetch", label["IMAP UID FETCH BODY.PEEK[] (+ parse response)"]),
        (adapters.inbound, "parse_mail", label["MIME parse (parse_mail)"]),
        (api.processes.sync, "arrivals", label["blob keys (sha256), Arrival objects"]),
        (services.blobs, "put_many", label["blob insert (BlobStore.put_many)"]),
        (app, "_find", label["repository.get lookups (_find)"]),
        (app, "take_in", label["domain: threading, new aggregates"]),
        (app, "save", label["save: collect + encode events"]),
        (app.recorder, "insert_events", label["save: insert events (recorder)"]),
        (proj, "read", label["read log (select_notifications)"]),
        (proj, "apply", label["decode events + apply handlers"]),
        (Rows, "get", label["row reads (Rows.get)"]),
        (Rows, "flush", label["row writes (Rows.flush)"]),
        (proj, "wait_for", label["positions, lock, commit, wait_for"]),
        (MailboxSync, "sync", sync_other),
        (services.locks, "acquire", sync_other),
        (adapters.locks._PgLease, "renew", sync_other),
        (adapters.locks._SqliteLease, "renew", sync_other),
        (services.sync_state, "advance_folder", sync_other),
    ]
    if hasattr(app, "known_ids"):  # a bulk existence check, where the application has one
        wraps.append((app, "known_ids", label["repository.get lookups (_find)"]))
    compress = phases.wrap(label["blob compress (zlib)"], zlib.compress)
    with ExitStack() as stack:
        stack.enter_context(patched(adapters.blobs, "zlib", types.SimpleNamespace(
            compress=compress, decompress=zlib.decompress)))
        for target, name, lab in wraps:
            stack.enter_context(patched(target, name, phases.wrap(lab, getattr(target, name))))
        yield


# -- one backend -------------------------------------------------------------------------------


SEALED = True  # customers' personal data sealed under their keys (issue 14); --unsealed measures without


def make_services(url: str) -> Services:
    settings = Settings(database_url=url, secret_key=SecretStr("bench-secret-key-0123456789"))
    services = bootstrap(settings, verify_login=real_login(settings))
    if not SEALED:
        services.app.mapper.keyring = None  # type: ignore[attr-defined]  # the SealingMapper then stores plain
    return services


FOLLOW = True  # as `mailroom serve` runs: each view's log follower in its own thread, woken by commits


def end_to_end(services: Services, mailbox_id: UUID) -> tuple[Any, float, float]:
    """sync + wait_for; (report, wall seconds, this process's CPU seconds)."""
    stop = threading.Event()
    signal = services.app.recorder.signal  # type: ignore[attr-defined]
    followers = [threading.Thread(target=f.run, args=(stop, signal), daemon=True)
                 for f in services.projections.followers.values()] if FOLLOW else []
    wall, cpu = time.perf_counter(), time.process_time()
    for follower in followers:
        follower.start()
    report = MailboxSync.of(services).sync(mailbox_id)
    caught_up = services.projections.wait_for(report.position, timeout=60.0)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    stop.set()
    for follower in followers:
        follower.join()
    if not caught_up:
        raise RuntimeError("the projections did not catch up")
    return report, wall, cpu


def check(services: Services, report: Any, mail: Corpus) -> None:
    """The run did the whole job: every message taken in, the conversations in the read model."""
    n = len(mail.raws)
    if report.error or (report.fetched, report.opened, report.quarantined) != (n, mail.threads, 0):
        raise RuntimeError(f"unexpected sync report {report} (wanted {n} fetched, {mail.threads} opened)")
    _, _, total = services.conversations.page(ConversationFilter(), 1, None)
    messages = services.database.query("SELECT COUNT(*) AS n FROM rm_messages")[0]["n"]
    if (total, messages) != (mail.threads, n):
        raise RuntimeError(f"read model has {total} conversations, {messages} messages; "
                           f"wanted {mail.threads}, {n}")


@dataclass
class Result:
    """One backend: its best end-to-end round (with that round's phases), every round's rate, the best raw fetch."""

    backend: str
    messages: int
    seconds: float
    cpu: float
    phases: Phases
    rates: list[float]
    raw_rate: float
    profile: str = ""


def one_round(backend: str, dovecot: Dovecot, user: str, mail: Corpus) -> tuple[float, float, Phases]:
    """A fresh database, mailroom over it, the mailbox bound; one instrumented end-to-end sync."""
    phases = Phases()
    with fresh_database(backend) as url:
        services = make_services(url)
        try:
            mailbox_id, _ = bind(services, dovecot, user=user, password=PASSWORD)
            with instrumented(services, phases):
                report, seconds, cpu = end_to_end(services, mailbox_id)
            check(services, report, mail)
        finally:
            services.close()
    return seconds, cpu, phases


def measure(backend: str, dovecot: Dovecot, user: str, mail: Corpus, rounds: int, profile: bool) -> Result:
    """Rounds of raw fetch then end to end, alternating, so load on the shared machine hits both alike."""
    n = len(mail.raws)
    raw_rates: list[float] = []
    runs: list[tuple[float, float, Phases]] = []
    for _ in range(rounds):
        count, _, raw_seconds = raw_fetch(dovecot, user)
        raw_rates.append(count / raw_seconds)
        runs.append(one_round(backend, dovecot, user, mail))
    seconds, cpu, phases = min(runs, key=lambda run: run[0])
    result = Result(backend, n, seconds, cpu, phases, [n / run[0] for run in runs], max(raw_rates))
    if profile:
        with fresh_database(backend) as url:
            services = make_services(url)
            try:
                mailbox_id, _ = bind(services, dovecot, user=user, password=PASSWORD)
                result.profile = profiled(lambda: end_to_end(services, mailbox_id), top=35)
            finally:
                services.close()
    return result


def breakdown(results: Sequence[Result]) -> str:
    header = ["phase"]
    for r in results:
        header += [f"{r.backend} s", "%", "ms/msg", "calls"]
    rows: list[list[object]] = []

    def add(name: str, values: list[float], calls: list[int | str]) -> None:
        row: list[object] = [name]
        for r, v, n in zip(results, values, calls, strict=True):
            row += [f"{v:.3f}", f"{100 * v / r.seconds:.1f}", f"{1000 * v / r.messages:.3f}", n]
        rows.append(row)

    for group in dict.fromkeys(g for g, _ in PHASES):
        labels = [lab for g, lab in PHASES if g == group]
        add(f"{group} (total)", [sum(r.phases.seconds[lab] for lab in labels) for r in results], [""] * len(results))
        for lab in labels:
            add(f"  {lab}", [r.phases.seconds[lab] for r in results], [r.phases.calls[lab] for r in results])
    add("unaccounted", [r.seconds - sum(r.phases.seconds.values()) for r in results], [""] * len(results))
    add("end to end", [r.seconds for r in results], [""] * len(results))
    return table(header, rows)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.intake", description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2000, help="messages in the mailbox (default 2000)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per backend; the best counts (default 3)")
    parser.add_argument("--profile", action="store_true", help="cProfile one more end-to-end run per backend")
    parser.add_argument("--backend", choices=[*BACKENDS, "both"], default="both", help="default both")
    parser.add_argument("--serial", action="store_true",
                        help="no projection driver during the sync: it catches up afterwards (the breakdown then "
                             "adds up to the end-to-end time)")
    parser.add_argument("--unsealed", action="store_true",
                        help="store personal data unsealed (no per-customer keys): the cost of sealing, by difference")
    args = parser.parse_args(argv)
    global FOLLOW, SEALED
    FOLLOW = not args.serial
    SEALED = not args.unsealed

    started = time.perf_counter()
    mail = corpus(args.messages)
    sizes = [len(raw) for raw in mail.raws]
    dovecot = Dovecot()
    results: list[Result] = []
    try:
        dovecot.start()
        user = f"bench{time.time_ns() % 10**9}"
        dovecot.add_user(user, PASSWORD)
        append_seconds = time.perf_counter()
        deliver(dovecot, user, mail.raws)
        append_seconds = time.perf_counter() - append_seconds
        warm = raw_fetch(dovecot, user)  # untimed: Dovecot builds its index and cache, the page cache fills
        if warm[0] != len(mail.raws):
            raise RuntimeError(f"the mailbox holds {warm[0]} messages, not {len(mail.raws)}")
        backends = BACKENDS if args.backend == "both" else (args.backend,)
        results = [measure(backend, dovecot, user, mail, args.rounds, args.profile) for backend in backends]
    finally:
        dovecot.close()

    print(f"intake end to end: {len(sizes)} messages in Dovecot (mean {sum(sizes) / len(sizes) / 1024:.1f} KB, "
          f"{min(sizes)}..{max(sizes)} bytes), {mail.threads} conversations; appended in {append_seconds:.1f} s; "
          f"take_in batches of {api.processes.sync.BATCH_MESSAGES}; best of {args.rounds} rounds")
    rows = []
    for r in results:
        rate = r.messages / r.seconds
        goal = "" if r.backend != "postgres" else ("ok" if rate >= GOAL else "short") + f" {GOAL:,.0f}"
        rows.append([r.backend, r.messages, f"{r.seconds:.2f}", f"{rate:,.0f}", " ".join(f"{x:,.0f}" for x in r.rates),
                     f"{100 * r.cpu / r.seconds:.0f}%", f"{r.raw_rate:,.0f}", goal])
    print(table(["backend", "messages", "end-to-end s", "end-to-end msgs/s", "each round", "client CPU",
                 "raw fetch msgs/s", "goal"], rows))
    print("\nwhere the end-to-end time goes, best round (time in each function itself, wrapped calls excluded)")
    print(breakdown(results))
    for r in results:
        if r.profile:
            print(f"\n--- profile: end-to-end intake on {r.backend} ---\n{r.profile}")
    print(f"\n(total run time {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
