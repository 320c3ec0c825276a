"""Latency of one mail, end to end: from its APPEND to a real Dovecot mailbox until the served
GraphQL API shows its conversation assigned, with `mailroom serve` (and its workers) as in
production: the mailbox watched by IDLE, a routing rule, agents.

Set-up (untimed), per backend: a private Dovecot (tests/dovecot.py) with one user; a fresh
database; `mailroom serve --port P` over it (MAILROOM_EXTRA_CA_FILE = the test CA,
MAILROOM_POLL_SECONDS=3600: only IDLE brings mail in); an ADMIN token from `mailroom token
create`; over GraphQL the mailbox bound over implicit TLS, --agents agents in one group, and two
routing rules (a subject keyword rule with ROUND_ROBIN, then a catch-all with LOAD_BALANCED).
Three warm-up mails, each awaited, are not counted.

Then --mails mails (about 5 KB: text, every third with an HTML alternative; each from a new
customer, so each opens a conversation) are APPENDed one at a time every --interval seconds
over one IMAP connection. From the APPEND until its conversation is seen assigned, the bench
asks `conversations(filter: {customerEmail: ...})` every 10 ms. Per mail, all on the same clock:
  append->visible     the APPEND command sent, until the GraphQL answer shows an assignee (the
                      figure, nothing subtracted);
  append->notice      until a second IDLE session the bench holds on the same mailbox hears the
                      new EXISTS: the mail server's own IDLE notice (Dovecot 2.3 sends some at
                      once and some about 0.5 s later, often only with the next change);
  append->received    until the MessageReceived event's timestamp (the sync took the mail in:
                      IDLE notice, new IMAP session, fetch, parse, blobs, take_in);
  notice->visible     beyond the IDLE notice the bench's session heard (mailroom's own session
                      may hear it at another time: some values are negative);
  ... , prompt        the same over the mails whose notice the bench heard within 100 ms and that
                      were not taken in together with the next mail: mailroom's own share, as
                      far as it can be seen from outside (the goal's figure);
  received->visible   the MessageReceived event until GraphQL shows it assigned, in two parts:
  received->assigned  the MessageReceived event to the Assigned event (the assigner), and
  assigned->visible   the Assigned event to the first GraphQL answer showing it (the views, and
                      the 10 ms poll).
Event timestamps are read from the log after the run. The bench also counts the mails taken in
by the same sync as the mail APPENDed after them (their notice came late). Goals beyond the mail
server's IDLE notice: p50 < 300 ms, p99 < 600 ms.

    .venv/bin/python -m bench.latency [--mails 100] [--interval 0.5] [--agents 10]
        [--backend sqlite|postgres|both]
"""

from __future__ import annotations

import argparse
import itertools
import math
import random
import secrets
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
from imapclient import IMAPClient

from api.processes.assigner import recorded_outcome
from bench.common import BACKENDS, fresh_database, services, table
from bench.intake import _SERIALISE, _html, _paragraphs
from bench.startup import MAILROOM, free_port, server_env
from domain.conversation import Conversation
from tests.dovecot import Dovecot

GOAL_P50, GOAL_P99 = 0.300, 0.600  # seconds beyond the mail server's IDLE notice
POLL = 0.010
PROMPT_NOTICE = 0.1  # an IDLE notice heard this soon after the APPEND counts as prompt
KEYWORD = "invoice"
WARM_UP = 3
USER_ERRORS = "userErrors { field message code }"
MESSAGE_RECEIVED: Any = Conversation.MessageReceived
PROMPT = "notice->visible, prompt"
FIGURES = ("append->visible", "append->notice", "append->received", "notice->visible", PROMPT, "received->visible",
           "received->assigned", "assigned->visible")


@dataclass
class Mail:
    sender: str
    raw: bytes
    appended: float = 0.0  # time.time() just before the APPEND command
    noticed: float | None = None  # the bench's own IDLE session heard the EXISTS
    visible: float | None = None  # a GraphQL answer showed it assigned
    conversation_id: str | None = None
    received: float | None = None  # MessageReceived event timestamp
    assigned: float | None = None  # Assigned event timestamp
    batched: bool = False  # taken in by the same sync as the next mail

    def figures(self) -> dict[str, float]:
        assert self.visible is not None and self.received is not None and self.assigned is not None
        out = {"append->visible": self.visible - self.appended, "append->received": self.received - self.appended,
               "received->visible": self.visible - self.received, "received->assigned": self.assigned - self.received,
               "assigned->visible": self.visible - self.assigned}
        if self.noticed is not None:
            out["append->notice"] = self.noticed - self.appended
            out["notice->visible"] = self.visible - self.noticed
            if self.noticed - self.appended < PROMPT_NOTICE and not self.batched:
                out[PROMPT] = self.visible - self.noticed
        return out


def make_mail(rng: random.Random, i: int, to: str) -> Mail:
    """About 5 KB from a customer of its own; every third has an HTML alternative, every second
    names the keyword in its subject."""
    sender = f"latency{i}.{secrets.token_hex(3)}@customer{i % 50}.example"
    paragraphs = _paragraphs(rng, 3600 if i % 3 else 1800)
    message = EmailMessage()
    when = datetime.now(UTC) - timedelta(seconds=5)
    message["Received"] = (f"from mx{i % 7}.customer.example ([192.0.2.{i % 250 + 1}]) by mail.example.com "
                           f"(Postfix) with ESMTPS id {rng.getrandbits(40):010X}; {format_datetime(when)}")
    message["From"] = f"Customer {i} <{sender}>"
    message["To"] = to
    message["Subject"] = (f"Invoice {10_000 + i} is missing" if i % 2 else f"Order {10_000 + i} not delivered")
    message["Date"] = format_datetime(when)
    message["Message-ID"] = f"<latency{i}.{secrets.token_hex(6)}@customer.example>"
    message.set_content("Hello,\n\n" + "\n\n".join(paragraphs) + f"\n\nKind regards,\nCustomer {i}\n")
    if i % 3 == 0:
        message.add_alternative(_html(paragraphs, f"Customer {i}"), subtype="html")
    return Mail(sender, message.as_bytes(policy=_SERIALISE))


class Server:
    """`mailroom serve` as a subprocess, spoken to over HTTP."""

    def __init__(self, url: str, directory: Path, ca_file: str) -> None:
        self.env = {**server_env(url), "MAILROOM_EXTRA_CA_FILE": ca_file}
        self.dir = directory
        self.port = free_port()
        self.client = httpx.Client(timeout=30.0)
        self.log = (directory / "server.log").open("ab")
        self.process = subprocess.Popen([MAILROOM, "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                                        env=self.env, cwd=directory, stdin=subprocess.DEVNULL, stdout=self.log,
                                        stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mailroom serve exited:\n{self.tail()}")
            try:
                if self.client.get(f"{self.url}/healthz").json()["ready"]:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"mailroom serve not ready in 60 s:\n{self.tail()}")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def tail(self) -> str:
        return (self.dir / "server.log").read_text(errors="replace")[-3000:]

    def token(self) -> str:
        done = subprocess.run([MAILROOM, "token", "create", "--role", "ADMIN", "--name", "bench"], env=self.env,
                              cwd=self.dir, capture_output=True, text=True, timeout=60, check=True,
                              stdin=subprocess.DEVNULL)
        return done.stdout.strip().splitlines()[-1]

    def gql(self, token: str, query: str, **variables: Any) -> dict[str, Any]:
        response = self.client.post(f"{self.url}/graphql", json={"query": query, "variables": variables},
                                    headers={"Authorization": f"Bearer {token}"})
        body = response.json()
        if response.status_code != 200 or body.get("errors"):
            raise RuntimeError(f"GraphQL: {response.status_code} {body}")
        return dict(body["data"])

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        self.client.close()
        self.log.close()


def set_up(server: Server, token: str, dovecot: Dovecot, user: str, password: str, agents: int) -> str:
    """The mailbox bound over TLS, agents in a group, two rules; the mailbox's address."""
    address = f"support-{secrets.token_hex(3)}@helpdesk.example"
    bound = server.gql(token, f"""mutation($i: BindMailboxInput!) {{ bindMailbox(input: $i) {{
        mailbox {{ id status }} {USER_ERRORS} }} }}""", i={
        "address": address, "password": password, "protocol": "IMAP",
        "incoming": {"host": dovecot.host, "port": dovecot.imaps_port, "security": "TLS", "username": user}})
    payload = bound["bindMailbox"]
    assert payload["userErrors"] == [] and payload["mailbox"]["status"] == "CONNECTED", payload
    mailbox_id = payload["mailbox"]["id"]
    members = []
    for i in range(agents):
        made = server.gql(token, f"""mutation($i: CreateAgentInput!) {{ createAgent(input: $i) {{ agent {{ id }}
            {USER_ERRORS} }} }}""", i={"name": f"Agent {i}", "email": f"agent{i}-{secrets.token_hex(3)}@desk.example"})
        members.append(made["createAgent"]["agent"]["id"])
    group = server.gql(token, f"""mutation($i: CreateAgentGroupInput!) {{ createAgentGroup(input: $i) {{
        group {{ id }} {USER_ERRORS} }} }}""", i={"name": "Tier 1", "memberIds": members})
    group_id = group["createAgentGroup"]["group"]["id"]
    rule = f"""mutation($i: RoutingRuleInput!) {{ createRoutingRule(input: $i) {{ rule {{ id }} {USER_ERRORS} }} }}"""
    for spec in ({"name": "Invoices", "priority": 10, "strategy": "ROUND_ROBIN",
                  "conditions": [{"field": "SUBJECT", "operator": "CONTAINS", "value": KEYWORD}]},
                 {"name": "Everything else", "priority": 100, "strategy": "LOAD_BALANCED"}):
        made = server.gql(token, rule, i={"mailboxIds": [mailbox_id], "groupIds": [group_id], **spec})
        assert made["createRoutingRule"]["userErrors"] == [], made
    return address


CONVERSATION = """query($f: ConversationFilter) { conversations(filter: $f, first: 1) {
    edges { node { id assignee { id } } } } }"""


class Notices:
    """A second IDLE session on the mailbox: when the server announces each new message."""

    def __init__(self, dovecot: Dovecot, user: str, password: str) -> None:
        self.client = IMAPClient(dovecot.host, port=dovecot.imap_port, ssl=False, timeout=30)
        self.client.login(user, password)
        self.exists = int(self.client.select_folder("INBOX")[b"EXISTS"])
        self.at: dict[int, float] = {}  # message sequence number -> time the EXISTS was heard
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.client.idle()
        try:
            while not self.stop.is_set():
                for response in self.client.idle_check(timeout=0.2):
                    if len(response) >= 2 and response[1] == b"EXISTS":
                        now = time.time()
                        for n in range(self.exists + 1, int(response[0]) + 1):
                            self.at.setdefault(n, now)
                        self.exists = max(self.exists, int(response[0]))
        finally:
            self.client.idle_done()
            self.client.logout()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)


def run(server: Server, token: str, appender: IMAPClient, mails: list[Mail], interval: float) -> None:
    """Appends each mail on schedule; polls GraphQL for the pending ones every POLL seconds."""
    pending: dict[int, Mail] = {}
    began = time.monotonic()
    i = 0
    while i < len(mails) or pending:
        if i < len(mails) and time.monotonic() >= began + i * interval:
            mail = mails[i]
            mail.appended = time.time()
            appender.append("INBOX", mail.raw)
            pending[i] = mail
            i += 1
        for k, mail in list(pending.items()):
            edges = server.gql(token, CONVERSATION, f={"customerEmail": mail.sender})["conversations"]["edges"]
            if edges and edges[0]["node"]["assignee"] is not None:
                mail.visible = time.time()
                mail.conversation_id = edges[0]["node"]["id"]
                del pending[k]
            elif time.time() - mail.appended > 60:
                raise RuntimeError(f"mail {k} not assigned after 60 s:\n{server.tail()}")
        time.sleep(POLL)


def timestamps(url: str, mails: list[Mail]) -> None:
    """Each mail's MessageReceived and first Assigned event times, from the log."""
    wired = services(url)
    try:
        for mail in mails:
            assert mail.conversation_id is not None
            events: list[Any] = list(wired.app.repository.event_store.get(UUID(mail.conversation_id)))
            for event in events:
                if isinstance(event, MESSAGE_RECEIVED) and mail.received is None:
                    mail.received = event.timestamp.timestamp()
                outcome = recorded_outcome(event)
                if outcome is not None and outcome.kind == "assigned" and mail.assigned is None:
                    mail.assigned = event.timestamp.timestamp()
    finally:
        wired.close()


@dataclass
class Result:
    backend: str
    mails: list[Mail] = field(default_factory=list)

    def values(self, figure: str) -> list[float]:
        return sorted(v for m in self.mails if (v := m.figures().get(figure)) is not None)


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile of sorted values."""
    return values[min(len(values) - 1, max(0, math.ceil(p / 100 * len(values)) - 1))]


def one_backend(backend: str, dovecot: Dovecot, count: int, interval: float, agents: int) -> Result:
    user, password = f"latency{secrets.token_hex(3)}", "bench pass " + secrets.token_hex(4)
    dovecot.add_user(user, password)
    rng = random.Random(7)
    with fresh_database(backend) as url, tempfile.TemporaryDirectory(prefix="mailroom-latency-") as directory:
        server = Server(url, Path(directory), dovecot.ca_file)
        appender = notices = None
        mails: list[Mail] = []
        try:
            token = server.token()
            address = set_up(server, token, dovecot, user, password, agents)
            appender = IMAPClient(dovecot.host, port=dovecot.imap_port, ssl=False, timeout=30)
            appender.login(user, password)
            notices = Notices(dovecot, user, password)
            first = notices.exists + 1 + WARM_UP  # the sequence number of the first measured mail
            for j in range(WARM_UP):
                run(server, token, appender, [make_mail(rng, -1 - j, address)], interval)
            mails = [make_mail(rng, j, address) for j in range(count)]
            run(server, token, appender, mails, interval)
        finally:
            if notices is not None:
                notices.close()
                for k, mail in enumerate(mails):
                    mail.noticed = notices.at.get(first + k)
            if appender is not None:
                appender.logout()
            server.stop()
        timestamps(url, mails)
    for mail, after in itertools.pairwise(mails):
        assert mail.received is not None and after.received is not None
        mail.batched = abs(after.received - mail.received) < 0.05
    return Result(backend, mails)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.latency", description=__doc__.split("\n\n")[0])
    parser.add_argument("--mails", type=int, default=100, help="mails measured per backend (default 100)")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between APPENDs (default 0.5)")
    parser.add_argument("--agents", type=int, default=10, help="agents in the group (default 10)")
    parser.add_argument("--backend", choices=[*BACKENDS, "both"], default="both", help="default both")
    args = parser.parse_args(argv)
    backends = BACKENDS if args.backend == "both" else (args.backend,)
    began = time.perf_counter()
    results = []
    with Dovecot() as dovecot:
        for backend in backends:
            results.append(one_backend(backend, dovecot, args.mails, args.interval, args.agents))
            print(f"  {backend} done", flush=True)
    rows = []
    for r in results:
        for figure in FIGURES:
            values = r.values(figure)
            if not values:
                continue
            p50, p99 = percentile(values, 50), percentile(values, 99)
            goal = ""
            if figure == PROMPT:
                goal = "ok" if p50 < GOAL_P50 and p99 < GOAL_P99 else "OVER"
                goal += f" {GOAL_P50 * 1000:.0f}/{GOAL_P99 * 1000:.0f}"
            rows.append([figure, r.backend, len(values), f"{p50 * 1000:,.0f}", f"{p99 * 1000:,.0f}",
                         f"{statistics.mean(values) * 1000:,.0f}", f"{values[0] * 1000:,.0f}",
                         f"{values[-1] * 1000:,.0f}", goal])
    print(f"\nlatency of one mail: {args.mails} mails, one every {args.interval} s, APPEND to Dovecot until "
          f"GraphQL shows it assigned (ms)")
    print(table(["span", "backend", "mails", "p50", "p99", "mean", "min", "max", "goal"], rows))
    for r in results:
        late = [k for k, mail in enumerate(r.mails) if mail.batched]
        prompt = [k for k in late if (n := r.mails[k].noticed) is not None and n - r.mails[k].appended < PROMPT_NOTICE]
        print(f"{r.backend}: {len(late)} of {len(r.mails)} mails were taken in by the same sync as the mail "
              f"APPENDed {args.interval} s after them; for {len(prompt)} of those the bench's own IDLE session "
              "had heard of them within 100 ms")
    print(f"(total run {time.perf_counter() - began:.0f} s)")


if __name__ == "__main__":
    main()
