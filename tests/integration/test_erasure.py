"""Erasing a customer (issue 14), on both backends: personal data is sealed in the log as it is
stored; eraseCustomer deletes the key and the blobs; afterwards nothing of the customer is
readable through the API, an export or any read model (live, or rebuilt from the log), while
`audit verify` still passes (chain and re-derived decisions) and other customers are untouched.
An erasure cut short at any step is finished by running it again."""

from __future__ import annotations

import asyncio
import io
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any
from uuid import UUID

import pytest

from adapters.blobs import blob_key
from adapters.inbound import arrivals
from api import audit
from api.erasure import erase_customer
from api.graphql.common import Context
from api.graphql.schema import schema
from api.replies import queue_reply
from api.services import Services
from domain.commands.tokens import Principal
from domain.personal import ERASED_TEXT, is_erased
from domain.reply import QUEUED
from domain.routing import RuleSpec
from domain.sidebar import MatchKey, SidebarFieldSpec, SourceKind, SourceSpec
from domain.values import AssignmentStrategy, MailProtocol, Role, ServerSettings, TransportSecurity
from projections.rebuild import verify as verify_view
from tests.integration.assign_support import team
from tests.integration.test_graphql_reads import run
from tests.smtp_server import SmtpSink

ADDRESS = "support@acme.example"
IMAP = ServerSettings("imap.acme.example", 993, TransportSecurity.TLS, ADDRESS)
JANE, OLGA = "jane.roe@customer.example", "olga@other.example"
LOGO = b"\x89PNG shared logo bytes" * 20  # the same attachment in both customers' mail: one blob
SECRET_WORDS = ("jane roe", "jane.roe", "dear jane", "pineapple", "cancel-my-contract", "jane-invoice.pdf", "vip-gold")
ADMIN = Principal(Role.ADMIN, None, None)


@pytest.fixture
def services(make_services: Callable[..., Services], smtp: SmtpSink, monkeypatch: pytest.MonkeyPatch) -> Services:
    monkeypatch.setenv("MAILROOM_EXTRA_CA_FILE", smtp.ca_file)
    return make_services(verify_login=lambda *args: None)


def mail(sender: str, name: str, subject: str, body: str, attachments: dict[str, bytes],
         in_reply_to: str | None = None) -> bytes:
    message = EmailMessage()
    message["From"] = f"{name} <{sender}>"
    message["To"] = ADDRESS
    message["Subject"] = subject
    message["Date"] = format_datetime(datetime(2026, 11, 30, 9, 0, tzinfo=UTC))
    message["Message-ID"] = make_msgid(domain="mail.example")
    if in_reply_to:
        message["In-Reply-To"] = message["References"] = f"<{in_reply_to}>"
    message.set_content(body)
    for filename, data in attachments.items():
        message.add_attachment(data, maintype="application", subtype="octet-stream", filename=filename)
    return bytes(message)


class Scene:
    """Jane (contact with an owner, two conversations, an attachment, a reply sent, a sidebar
    record) and Olga (a conversation with the same logo attachment), on a CONTACT_OWNER rule."""

    def __init__(self, services: Services, smtp: SmtpSink) -> None:
        app = self.app = services.app
        self.services = services
        written, _ = app.bind_mailbox(ADDRESS, smtp.password, "Acme Support", MailProtocol.IMAP, IMAP, smtp.settings())
        self.mailbox = written.id
        self.agents, group = team(services, ["ann", "bob"])
        app.create_routing_rule(RuleSpec("all", [self.mailbox], [group], AssignmentStrategy.CONTACT_OWNER,
                                         fallback_strategy=AssignmentStrategy.ROUND_ROBIN))
        app.create_sidebar_source(SourceSpec("CRM", "crm", SourceKind.RECORDS, None, MatchKey.CUSTOMER_EMAIL,
                                             [SidebarFieldSpec("plan", "Plan")]))
        account = app.upsert_account(None, "Customer Inc", ["customer.example"], self.agents["bob"]).id
        app.upsert_contact(JANE, "Jane Roe", account, self.agents["ann"])
        self.record = app.upsert_record("crm", "crm-1001", "Jane Roe VIP-gold", JANE, None, None,
                                        {"plan": "vip-gold", "phone": "555-0100"}, "https://crm.example/jane").id
        self.jane = [self.take_in(JANE, "Jane Roe", "Please cancel-my-contract", "I want pineapple refunds.",
                                  {"jane-invoice.pdf": b"%PDF jane's invoice", "logo.png": LOGO}),
                     self.take_in(JANE, "Jane Roe", "Second thing", "pineapple again", {})]
        self.olga = self.take_in(OLGA, "Olga Other", "Olga's question", "Where is my parcel?", {"logo.png": LOGO})
        written, _ = queue_reply(services, self.jane[0], self.agents["ann"], "Dear Jane, we cancel it.")
        self.reply = written.id
        deadline = time.monotonic() + 15
        while (reply := app.reply(self.reply)) is not None and reply.status == QUEUED and time.monotonic() < deadline:
            services.outbox.catch_up()
            time.sleep(0.05)
        self.settle()

    def take_in(self, sender: str, name: str, subject: str, body: str, attachments: dict[str, bytes]) -> UUID:
        raw = mail(sender, name, subject, body, attachments)
        result = self.app.take_in(self.mailbox, arrivals([(f"imap:INBOX:1:{time.monotonic_ns()}", raw)], ADDRESS,
                                                        self.services.blobs))
        assert result.taken == 1
        self.settle()
        return UUID(str(result.conversation_ids[0]))

    def settle(self) -> None:
        head = self.services.projections.head()
        assert self.services.assigner.wait_for(head)
        assert self.services.projections.wait_for(self.services.projections.head())


def stored_states(services: Services) -> bytes:
    table = services.app.recorder.events_table_name  # type: ignore[attr-defined]
    return b"\n".join(bytes(r["state"]) for r in services.database.query(f"SELECT state FROM {table}"))


def read_models(services: Services) -> str:
    """Every row of every view table, as text."""
    tables = [t.name for view in services.projections.views.values() for t in view.tables]
    return "\n".join(str(dict(r)) for t in tables for r in services.database.query(f"SELECT * FROM {t}"))


def leaks(text: str) -> list[str]:
    low = text.lower()
    return [w for w in SECRET_WORDS if w in low]


CONVERSATION = """query($id: UUID!) { conversation(id: $id) { customerEmail subject
  messages { from fromName to subject text html attachments { filename } }
  sidebar { title records { title fields url } } } }"""


def test_personal_data_is_sealed_in_the_log_and_readable_while_the_key_is_there(services: Services,
                                                                                  smtp: SmtpSink) -> None:
    scene = Scene(services, smtp)
    assert leaks(stored_states(services).decode("utf-8", "replace")) == []  # sealed as stored
    shown = run(services, CONVERSATION, ADMIN, id=str(scene.jane[0]))["conversation"]
    assert shown["customerEmail"] == JANE and shown["subject"] == "Please cancel-my-contract"
    assert [m["fromName"] for m in shown["messages"]] == ["Jane Roe", "Acme Support"]
    assert "jane-invoice.pdf" in [a["filename"] for a in shown["messages"][0]["attachments"]]
    assert services.app.find(scene.jane[0]).customer_email == JANE  # the aggregate reads it back


def test_erasure_leaves_nothing_readable_and_the_log_still_verifies(services: Services, smtp: SmtpSink) -> None:
    scene = Scene(services, smtp)
    olga_before = run(services, CONVERSATION, ADMIN, id=str(scene.olga))["conversation"]
    decided = services.database.query("SELECT conversation_id, agent_id, reason FROM rm_assignments ORDER BY 1, 2")

    erased = run(services, """mutation { eraseCustomer(email: "Jane.Roe@Customer.example") {
        customer conversations messages contacts records blobs userErrors { code message } } }""",
                 ADMIN)["eraseCustomer"]
    assert erased["userErrors"] == [] and is_erased(erased["customer"])
    assert (erased["conversations"], erased["messages"], erased["contacts"], erased["records"]) == (2, 3, 1, 1)
    assert erased["blobs"] > 0

    # the API: tombstones where Jane was; the conversations, statuses and assignments stay
    for cid in scene.jane:
        shown = run(services, CONVERSATION, ADMIN, id=str(cid))["conversation"]
        assert shown["customerEmail"] == erased["customer"] and shown["subject"] == ERASED_TEXT
        assert leaks(str(shown)) == [], shown
    contact = run(services, f'{{ contact(email: "{JANE}") {{ email name }} }}', ADMIN)["contact"]
    assert contact is None or leaks(str(contact)) == []
    found = run(services, """{ conversations(filter: {text: "pineapple"}) { totalCount } }""", ADMIN)
    assert found["conversations"]["totalCount"] == 0
    # Olga is untouched: her conversation, and the logo blob she shares with Jane
    assert run(services, CONVERSATION, ADMIN, id=str(scene.olga))["conversation"] == olga_before
    assert services.blobs.get(blob_key(LOGO)) == LOGO
    assert services.database.query("SELECT conversation_id, agent_id, reason FROM rm_assignments ORDER BY 1, 2") \
        == decided

    # read models, live and rebuilt from the log, and the export: nothing of Jane
    assert leaks(read_models(services)) == []
    for view in services.projections.views.values():
        assert verify_view(services.projections, view) == [], view.name  # the tombstones are what a rebuild gives
    out = io.StringIO()
    audit.export(services, out)
    assert leaks(out.getvalue()) == []
    assert leaks(str(run(services, "{ events(first: 500) { events { data } } }", ADMIN))) == []

    report = audit.verify(services)
    assert report.ok, report.summary()

    # Jane writes again: a new key, readable; and she can be erased again
    again = scene.take_in(JANE, "Jane Roe", "Pineapple is back", "hello", {})
    assert run(services, CONVERSATION, ADMIN, id=str(again))["conversation"]["customerEmail"] == JANE
    assert erase_customer(services, JANE).conversations == 3
    assert leaks(read_models(services)) == []
    assert audit.verify(services).ok


def test_erasure_needs_admin_and_a_valid_address(services: Services, smtp: SmtpSink) -> None:
    Scene(services, smtp)
    bad = run(services, 'mutation { eraseCustomer(email: "not an address") { customer userErrors { field code } } }',
              ADMIN)["eraseCustomer"]
    assert bad["customer"] is None and bad["userErrors"][0]["field"] == ["email"]
    for role in (Role.AUDITOR, Role.AGENT):
        result = asyncio.run(schema.execute(f'mutation {{ eraseCustomer(email: "{JANE}") {{ customer }} }}',
                                            context_value=Context(services=services,
                                                                  principal=Principal(role, None, None))))
        assert result.errors and "FORBIDDEN" in str(result.errors[0].extensions or result.errors[0].message)
    assert leaks(read_models(services)) != []  # nothing was erased


class Crash(Exception):
    pass


@pytest.mark.parametrize("step", ["blobs", "key", "event"])
def test_an_erasure_cut_short_at_any_step_is_finished_by_running_it_again(
        services: Services, smtp: SmtpSink, monkeypatch: pytest.MonkeyPatch, step: str) -> None:
    scene = Scene(services, smtp)
    targets: dict[str, tuple[Any, str]] = {
        "blobs": (services.blobs, "delete_many"), "key": (services.keyring, "erase"),
        "event": (services.app, "record_erasure")}
    owner, name = targets[step]
    original = getattr(owner, name)

    def done_then_crash(*args: Any, **kwargs: Any) -> Any:
        original(*args, **kwargs)
        raise Crash(step)

    monkeypatch.setattr(owner, name, done_then_crash)
    with pytest.raises(Crash):
        erase_customer(services, JANE)
    monkeypatch.undo()
    erase_customer(services, JANE)
    scene.settle()
    assert leaks(read_models(services)) == []
    for cid in scene.jane:
        assert run(services, CONVERSATION, ADMIN, id=str(cid))["conversation"]["subject"] == ERASED_TEXT
    assert audit.verify(services).ok


def test_kill_9_during_an_erasure_leaves_it_done_or_retryable(services: Services, smtp: SmtpSink) -> None:
    """`mailroom customer erase` in a process of its own, killed (SIGKILL) as soon as Jane's
    first blob is gone (mid-erasure), then at a random moment; running it again finishes it."""
    scene = Scene(services, smtp)
    first_blob = services.database.query("SELECT raw_blob FROM rm_messages WHERE conversation_id = ? AND seq = 0",
                                         (str(scene.jane[0]),))[0]["raw_blob"]
    command = [sys.executable, "-m", "api.cli", "customer", "erase", JANE]
    erasing = subprocess.Popen(command, env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while services.blobs.size(first_blob) is not None and erasing.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    erasing.kill()
    erasing.wait()
    again = subprocess.Popen(command, env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(random.uniform(0.2, 2.0))
    again.kill()
    again.wait()
    finished = subprocess.run(command, env=os.environ.copy(), capture_output=True, text=True, timeout=60)
    assert finished.returncode == 0, finished.stderr
    assert "erased as erased-" in finished.stdout
    scene.settle()
    assert leaks(read_models(services)) == []
    assert services.blobs.size(first_blob) is None and services.blobs.get(blob_key(LOGO)) == LOGO
    assert run(services, CONVERSATION, ADMIN, id=str(scene.olga))["conversation"]["customerEmail"] == OLGA
    assert audit.verify(services).ok


def test_mail_sealed_under_a_key_erased_meanwhile_is_sealed_again_under_a_new_key(services: Services,
                                                                                  smtp: SmtpSink) -> None:
    """Another process erases Jane while this one holds her key (cached for sealing): the events'
    transaction finds the key gone, the save fails whole, the retry seals under a new key."""
    scene = Scene(services, smtp)
    with services.database.transaction() as tx:  # as `mailroom customer erase` elsewhere deletes it
        tx.execute("DELETE FROM mailroom_customer_keys")
    later = scene.take_in(JANE, "Jane Roe", "Pineapple once more", "still here", {})
    shown = run(services, CONVERSATION, ADMIN, id=str(later))["conversation"]
    assert shown["customerEmail"] == JANE and shown["subject"] == "Pineapple once more"
    assert len(services.database.query("SELECT key_id FROM mailroom_customer_keys")) == 1  # Jane's new key


def test_many_new_customers_in_one_save_each_get_a_key_and_an_owner(services: Services) -> None:
    """One take_in batch opens conversations for many new customers: their keys and owners are
    stored with the events in one transaction, and each reads back as itself."""
    app = services.app
    written, _ = app.bind_mailbox(ADDRESS, "pw", "Acme Support", MailProtocol.IMAP, IMAP, None)
    senders = [f"customer{n}@many.example" for n in range(30)]
    result = app.take_in(written.id, arrivals([(f"imap:INBOX:1:{n}", mail(s, f"Customer {n}", f"Hello {n}", "hi", {}))
                                               for n, s in enumerate(senders)], ADDRESS, services.blobs))
    assert result.taken == len(senders)
    assert services.projections.wait_for(result.position)
    shown = {r["customer_email"] for r in services.database.query("SELECT customer_email FROM rm_conversations")}
    assert shown == set(senders)
    assert len(services.database.query("SELECT person FROM mailroom_customer_keys")) == len(senders)
    assert len(services.database.query("SELECT aggregate_id FROM mailroom_personal_owners")) == len(senders)
