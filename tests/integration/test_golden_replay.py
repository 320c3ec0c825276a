"""A log recorded by an earlier version must replay forever: event topics and their
attributes are a stored format. If this fails after a rename, add an upcaster or a
topic mapping (register_topic), never edit the golden files."""

from __future__ import annotations

import json
from pathlib import Path
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from api.bootstrap import Services
from domain.agents import Agent, AgentGroup
from domain.customers import Contact
from domain.mailbox import Mailbox
from domain.routing import RoutingRule
from domain.values import AgentStatus, AssignmentStrategy

DATA = Path(__file__).resolve().parent.parent / "data"


def load_golden_log(services: Services) -> list[StoredEvent]:
    events = [
        StoredEvent(originator_id=UUID(e["originator_id"]), originator_version=e["originator_version"],
                    topic=e["topic"], state=e["state"].encode())
        for e in map(json.loads, (DATA / "golden_events.jsonl").read_text().splitlines())
    ]
    services.app.recorder.insert_events(events)
    return events


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
