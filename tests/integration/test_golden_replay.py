"""A log recorded by an earlier version must replay forever: event topics and their
attributes are a stored format. If this fails after a rename, add an upcaster or a
topic mapping (register_topic), never edit the golden files.

The golden logs (tests/data, recorded by tests/data/record_golden.py) together hold an event
of every persisted topic, and of every class version of it: golden_events.jsonl the
directory, golden_events_mail_v1.jsonl everything (bodies inline in MessageReceived v1),
golden_events_mail_v2.jsonl everything again (bodies in blobs: golden_blobs_v2.json),
golden_events_access_v*.jsonl who may act (issue 8: assignment overrides; see test_golden_access.py),
golden_events_replies_v*.jsonl the outbox's steps (issue 10; see test_golden_replies.py),
golden_events_sidebar_v*.jsonl the sidebar's sources and records (issue 12; test_golden_sidebar.py),
golden_events_audit_v*.jsonl a seal of the log (issue 14), golden_events_erasure_v*.jsonl a
customer's sealed personal data and their erasure (issue 14).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import resolve_topic

from api.bootstrap import Services
from domain.agents import Agent, AgentGroup
from domain.claims import Claim
from domain.conversation import OPEN, Conversation, InboundKey, QuarantinedMessage
from domain.customers import Contact
from domain.mail import ReceivedMail, conversation_ref, message_key
from domain.mailbox import Mailbox
from domain.personal import ERASED_TEXT, is_erased
from domain.routing import RoutingRule
from domain.tokens import ApiToken
from domain.values import AgentStatus, AssignmentStrategy
from projections.arrivals import arrival
from projections.conversations import Conversations
from tests.unit.test_transcodings import domain_event_classes

DATA = Path(__file__).resolve().parent.parent / "data"
DIRECTORY_LOG = "golden_events.jsonl"
MAIL_LOGS = {"golden_events_mail_v1.jsonl": None, "golden_events_mail_v2.jsonl": "golden_blobs_v2.json"}
ACCESS_LOGS = ["golden_events_access_v1.jsonl", "golden_events_access_v2.jsonl"]  # record_golden.py: "access"
REPLIES_LOGS = ["golden_events_replies_v1.jsonl"]  # record_golden.py: "replies"
SIDEBAR_LOGS = ["golden_events_sidebar_v1.jsonl"]  # record_golden.py: "sidebar"
AUDIT_LOGS = ["golden_events_audit_v1.jsonl"]  # record_golden.py: "audit"
ERASURE_LOGS = ["golden_events_erasure_v1.jsonl"]  # record_golden.py: "erasure"
ALL_LOGS = [DIRECTORY_LOG, *MAIL_LOGS, *ACCESS_LOGS, *REPLIES_LOGS, *SIDEBAR_LOGS, *AUDIT_LOGS, *ERASURE_LOGS]


def read_log(name: str) -> list[StoredEvent]:
    return [
        StoredEvent(originator_id=UUID(e["originator_id"]), originator_version=e["originator_version"],
                    topic=e["topic"], state=e["state"].encode())
        for e in map(json.loads, (DATA / name).read_text().splitlines())
    ]


def load_golden_log(services: Services, name: str = DIRECTORY_LOG) -> list[StoredEvent]:
    events = read_log(name)
    services.app.recorder.insert_events(events)
    blobs = MAIL_LOGS.get(name)
    if blobs is not None:  # the bodies and header maps its events refer to, stored as intake stores them
        services.blobs.put_many(text.encode() for text in json.loads((DATA / blobs).read_text()).values())
    return events


def view_rows(services: Services, view_name: str) -> dict[str, list[dict[str, Any]]]:
    view = services.projections.views[view_name]
    return {table.name: services.database.query(f"SELECT * FROM {table.name} ORDER BY {', '.join(table.key)}")
            for table in view.tables}


# --------------------------------------------------------------------- the logs cover everything


def recorded_event_classes() -> list[type[Any]]:
    """Every event class that is ever stored: all but the bases of named creation events
    (Conversation.Created is never recorded, Conversation.Opened is)."""
    classes = domain_event_classes()
    return [c for c in classes if not any(o is not c and issubclass(o, c) for o in classes)]


def stored_versions() -> set[tuple[str, int]]:
    found = set()
    for name in ALL_LOGS:
        for event in read_log(name):
            found.add((event.topic, int(json.loads(event.state).get("class_version", 1))))
    return found


@pytest.mark.parametrize("event_class", recorded_event_classes(), ids=lambda c: c.__qualname__)
def test_every_persisted_topic_has_a_golden_event_of_every_version(event_class: type[Any]) -> None:
    """A new event class, or a new class version of one, needs golden events (record_golden.py)."""
    stored = stored_versions()
    for version in range(1, getattr(event_class, "class_version", 1) + 1):
        assert (event_class.TOPIC, version) in stored, f"no golden {event_class.TOPIC} of version {version}"


@pytest.mark.parametrize("name", ALL_LOGS)
def test_every_golden_event_reads_with_exactly_the_attributes_its_class_declares(
        services: Services, name: str) -> None:
    """A renamed or dropped attribute fails here even where nothing reads it."""
    for stored in read_log(name):
        event = services.app.mapper.to_domain_event(stored)
        assert type(event) is resolve_topic(stored.topic)
        declared = {f.name for f in dataclasses.fields(type(event))}  # type: ignore[arg-type]
        assert set(vars(event)) == declared, (stored.topic, stored.originator_version)


# --------------------------------------------------------------------- the directory (2026-11)


def test_old_log_rebuilds_the_same_directory(services: Services) -> None:
    load_golden_log(services)
    services.projections.catch_up()
    expected = json.loads((DATA / "golden_directory.json").read_text())
    for table in services.projections.views["directory"].tables:
        rows = services.database.query(f"SELECT * FROM {table.name} ORDER BY {', '.join(table.key)}")
        assert rows == expected[table.name], table.name


def test_old_log_loads_every_aggregate_with_its_state(services: Services) -> None:
    events = load_golden_log(services)
    by_topic = {e.topic: e.originator_id for e in events}
    mailbox = services.app.repository.get(by_topic["mailroom:Mailbox.Bound"])
    assert isinstance(mailbox, Mailbox)
    assert (mailbox.display_name, mailbox.enabled, mailbox.outgoing.port if mailbox.outgoing else None) == (
        "Support desk", True, 465)
    assert mailbox.subject_template == "Re: {subject} [{conversation_ref}]"
    group = services.app.repository.get(by_topic["mailroom:AgentGroup.MembersRemoved"])
    assert isinstance(group, AgentGroup) and len(group.member_ids) == 1
    bob = services.app.repository.get(group.member_ids[0])
    assert isinstance(bob, Agent) and (bob.name, bob.status) == ("Bob", AgentStatus.ONLINE)
    rule = services.app.repository.get(by_topic["mailroom:RoutingRule.Changed"])
    assert isinstance(rule, RoutingRule)
    assert (rule.spec.strategy, rule.spec.priority, rule.spec.enabled) == (AssignmentStrategy.LOAD_BALANCED, 20, False)
    contact = services.app.repository.get(Contact.create_id("carol@acme.com"))
    assert isinstance(contact, Contact) and (contact.name, contact.owner_id) == ("Carol C.", None)


# --------------------------------------------------------------------- mail, before and after blobs

CONVERSATION_ID = Conversation.create_id(conversation_ref(message_key("q1@customer.example")))


@pytest.mark.parametrize("name", MAIL_LOGS)
def test_mail_log_loads_every_aggregate_with_its_state(services: Services, name: str) -> None:
    events = load_golden_log(services, name)
    loaded = {i: services.app.repository.get(i) for i in dict.fromkeys(e.originator_id for e in events)}
    by_topic = {e.topic: loaded[e.originator_id] for e in events}

    mailbox = by_topic["mailroom:Mailbox.FoldersChanged"]
    assert isinstance(mailbox, Mailbox)
    assert (mailbox.folders, mailbox.failing, mailbox.last_error, mailbox.deleted) == (
        ["INBOX", "Support"], False, None, False)
    deleted = by_topic["mailroom:Mailbox.Deleted"]
    assert isinstance(deleted, Mailbox) and deleted.deleted
    released = by_topic["mailroom:Claim.Released"]
    assert isinstance(released, Claim) and released.owner_id is None
    token = by_topic["mailroom:ApiToken.Revoked"]
    assert isinstance(token, ApiToken) and token.revoked

    conversation = loaded[CONVERSATION_ID]
    assert isinstance(conversation, Conversation)
    eve = conversation.assignee_id
    assert isinstance(loaded[eve], Agent) and loaded[eve].name == "Eve"  # type: ignore[union-attr]
    assert (conversation.status, conversation.message_count, conversation.rule_id) == (
        OPEN, 2, by_topic["mailroom:RoutingRule.Created"].id)
    assert conversation.subject == "Invoice 1042 is wrong"
    keys = [a for a in loaded.values() if isinstance(a, InboundKey)]
    assert sorted(k.key for k in keys) == ["q1@customer.example", "q2@customer.example"]
    assert all(k.conversation_id == CONVERSATION_ID for k in keys)
    assert all((k.raw_blob is None) == name.endswith("v1.jsonl") for k in keys)  # v1 keys cannot tell mails apart
    quarantined = by_topic["mailroom:QuarantinedMessage.Quarantined"]
    assert isinstance(quarantined, QuarantinedMessage) and quarantined.size == 15


@pytest.mark.parametrize("name", MAIL_LOGS)
def test_mail_log_gives_routing_the_first_message_with_body_and_headers(services: Services, name: str) -> None:
    load_golden_log(services, name)
    arrived = arrival(services.app, CONVERSATION_ID)
    assert arrived is not None
    assert arrived.customer_email == "dora@customer.example"
    assert arrived.facts.body == "Hello,\n\nthe invoice total is wrong.\n"
    assert arrived.facts.headers["x-priority"] == "1"
    assert arrived.facts.subject == "Invoice 1042 is wrong"
    received: Any = next(iter(services.app.repository.event_store.get(CONVERSATION_ID, gt=1, lte=2)))
    assert isinstance(received.mail, ReceivedMail)
    assert (received.mail.text_blob is None) == name.endswith("v1.jsonl")


@pytest.mark.parametrize("name", MAIL_LOGS)
def test_mail_log_rebuilds_the_same_conversations(services: Services, name: str) -> None:
    load_golden_log(services, name)
    services.projections.catch_up()
    expected = json.loads((DATA / name.replace("golden_events_", "golden_conversations_").replace(
        ".jsonl", ".json")).read_text())
    assert view_rows(services, Conversations.name) == expected


# --------------------------------------------------------------------- an erased customer (2026-12)


def test_an_erased_customers_log_rebuilds_as_tombstones(services: Services) -> None:
    """Sealed fields whose key is gone read as tombstones: the views hold the conversation, the
    contact and the record, with nothing of the customer (Dora) in them."""
    load_golden_log(services, ERASURE_LOGS[0])
    services.projections.catch_up()
    conversation = services.database.query("SELECT customer_email, subject FROM rm_conversations")
    assert len(conversation) == 1 and is_erased(conversation[0]["customer_email"])
    assert conversation[0]["subject"] == ERASED_TEXT
    contact = services.database.query("SELECT email, name FROM rm_contacts")
    assert contact == [{"email": conversation[0]["customer_email"], "name": None}]
    records = services.database.query("SELECT title, customer_email, fields FROM rm_sidebar_records")
    assert records == [{"title": ERASED_TEXT, "customer_email": conversation[0]["customer_email"], "fields": "{}"}]
    everything = str([services.database.query(f"SELECT * FROM {t.name}")
                      for v in services.projections.views.values() for t in v.tables]).lower()
    assert "dora" not in everything and "forget me" not in everything
