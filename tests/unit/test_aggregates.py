"""Aggregates: the events they record, and replay giving back the same state. Ids that are derived."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from domain.agents import Agent, AgentGroup
from domain.application import Mailroom
from domain.claims import Claim
from domain.customers import Account, Contact
from domain.ids import claim_id, contact_id, token_id
from domain.mailbox import DEFAULT_SUBJECT_TEMPLATE, Mailbox
from domain.routing import RoutingRule, RuleSpec
from domain.tokens import TOKEN_PREFIX, ApiToken, hash_token, new_token_value
from domain.values import (
    AgentStatus,
    AssignmentStrategy,
    Condition,
    ConditionField,
    ConditionMatch,
    ConditionOperator,
    MailProtocol,
    Role,
    ServerSettings,
    TransportSecurity,
)

IMAP = ServerSettings("imap.example.com", 993, TransportSecurity.TLS, "support@example.com")
SMTP = ServerSettings("smtp.example.com", 587, TransportSecurity.STARTTLS, "support@example.com")


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch) -> Iterator[Mailroom]:
    """In memory; replay needs no ports."""
    monkeypatch.delenv("MAILROOM_PERSISTENCE_MODULE", raising=False)
    application = Mailroom(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    yield application
    application.close()


def state(aggregate: Aggregate) -> dict[str, Any]:
    return {k: v for k, v in vars(aggregate).items() if k != "_pending_events"}


def replayed(app: Mailroom, aggregate: Aggregate) -> Any:
    """Saves, then reconstructs from the stored events; the copy must equal the original."""
    before = state(aggregate)
    app.save(aggregate)
    copy = app.repository.get(aggregate.id)
    assert copy is not aggregate
    assert state(copy) == before
    return copy


def event_names(aggregate: Aggregate) -> list[str]:
    return [type(e).__name__ for e in aggregate.pending_events]


# --- agents -----------------------------------------------------------------------------


def test_agent_events_and_replay(app: Mailroom) -> None:
    agent = Agent(name="Ann", email="ann@example.com", status=AgentStatus.ONLINE, capacity=5)
    agent.edit("Ann B.", "ann.b@example.com")
    agent.change_status(AgentStatus.AWAY)
    agent.change_capacity(None)
    assert event_names(agent) == [
        "Created", "Edited", "StatusChanged", "CapacityChanged"
    ]
    copy = replayed(app, agent)
    assert (copy.name, copy.email, copy.status, copy.capacity) == (
        "Ann B.", "ann.b@example.com", AgentStatus.AWAY, None
    )
    assert copy.version == 4


def test_agent_group_keeps_joining_order_through_replay(app: Mailroom) -> None:
    a, b, c, d = (uuid4() for _ in range(4))
    group = AgentGroup(name="Tier 1", member_ids=[b, a])
    group.add_members([d, c])
    group.remove_members([a])
    copy = replayed(app, group)
    assert copy.member_ids == [b, d, c]
    assert copy.deleted is False
    copy.delete()
    assert replayed(app, copy).deleted is True


def test_agent_group_copies_the_given_members() -> None:
    given = [uuid4()]
    group = AgentGroup(name="G", member_ids=given)
    given.append(uuid4())
    assert len(group.member_ids) == 1


def test_joining_ignores_existing_and_repeated_ids_first_mention_first() -> None:
    a, b, c, d = (uuid4() for _ in range(4))
    group = AgentGroup(name="G", member_ids=[a, b])
    assert group.joining([c, a, d, c, b, d]) == [c, d]
    assert group.joining([a, b]) == []
    assert group.joining([]) == []


# --- customers --------------------------------------------------------------------------


def test_account_events_and_replay(app: Mailroom) -> None:
    owner = uuid4()
    account = Account(name="ACME", domains=["acme.com"], owner_id=None)
    account.update("ACME Corp", ["acme.com", "acme.org"])
    account.change_owner(owner)
    assert event_names(account) == ["Created", "Updated", "OwnerChanged"]
    copy = replayed(app, account)
    assert (copy.name, copy.domains, copy.owner_id) == ("ACME Corp", ["acme.com", "acme.org"], owner)


def test_contact_id_is_derived_from_the_email_case_insensitively(app: Mailroom) -> None:
    one = Contact(email="Ann@Example.com", name=None, account_id=None, owner_id=None)
    two = Contact(email=" ann@example.COM ", name="Ann", account_id=None, owner_id=None)
    assert one.id == two.id == contact_id("ann@example.com") == Contact.create_id("ANN@EXAMPLE.COM")
    assert Contact.create_id("bob@example.com") != one.id
    app.save(one)
    with pytest.raises(IntegrityError):  # one contact per address, even when two writers race
        app.save(two)


def test_contact_events_and_replay(app: Mailroom) -> None:
    account, owner = uuid4(), uuid4()
    contact = Contact(email="ann@example.com", name=None, account_id=None, owner_id=None)
    contact.update("Ann", account)
    contact.change_owner(owner)
    copy = replayed(app, contact)
    assert (copy.email, copy.name, copy.account_id, copy.owner_id) == ("ann@example.com", "Ann", account, owner)


# --- claims -----------------------------------------------------------------------------


def test_claim_take_and_release_survive_replay(app: Mailroom) -> None:
    owner = uuid4()
    claim = Claim("agent-email", "ann@example.com")
    assert claim.owner_id is None
    claim.take(owner)
    assert claim.owner_id == owner
    copy = replayed(app, claim)
    assert copy.owner_id == owner
    copy.release()
    assert copy.owner_id is None
    again = replayed(app, copy)
    assert again.owner_id is None
    assert again.version == 3


def test_claim_id_is_derived_from_kind_and_normalised_key() -> None:
    claim = Claim("agent-email", "Ann@Example.com")
    assert claim.id == Claim.create_id("agent-email", " ann@example.com ") == claim_id("agent-email", "ANN@example.com")
    # The same address may be claimed once per kind: an agent and a mailbox can share it.
    assert claim_id("mailbox-address", "ann@example.com") != claim.id


def test_second_claim_of_one_key_cannot_be_saved(app: Mailroom) -> None:
    first = Claim("mailbox-address", "support@example.com")
    first.take(uuid4())
    second = Claim("mailbox-address", "SUPPORT@example.com")
    second.take(uuid4())
    app.save(first)
    with pytest.raises(IntegrityError):
        app.save(second)
    assert app.repository.get(first.id).owner_id == first.owner_id


# --- mailboxes --------------------------------------------------------------------------


def test_mailbox_is_recorded_as_bound_with_defaults(app: Mailroom) -> None:
    secret = uuid4()
    mailbox = Mailbox(
        address="support@example.com",
        display_name="Support",
        protocol=MailProtocol.IMAP,
        incoming=IMAP,
        outgoing=None,
        secret_ref=secret,
    )
    assert event_names(mailbox) == ["Bound"]
    copy = replayed(app, mailbox)
    assert copy.subject_template == DEFAULT_SUBJECT_TEMPLATE
    assert (copy.footer, copy.enabled, copy.deleted, copy.status) == ("", True, False, "CONNECTED")
    assert copy.secret_ref == secret


def test_mailbox_events_and_replay(app: Mailroom) -> None:
    mailbox = Mailbox(
        address="support@example.com",
        display_name="Support",
        protocol=MailProtocol.IMAP,
        incoming=IMAP,
        outgoing=None,
        secret_ref=uuid4(),
    )
    pop = ServerSettings("pop.example.com", 995, TransportSecurity.TLS, "support@example.com")
    new_secret = uuid4()
    mailbox.change_settings("Help desk", MailProtocol.POP3, pop, SMTP)
    mailbox.change_password(new_secret)
    mailbox.set_reply_settings("[{mailbox}] {subject}", "-- \nThe team")
    mailbox.disable()
    assert mailbox.status == "DISABLED"
    assert event_names(mailbox) == [
        "Bound", "SettingsChanged", "PasswordChanged", "ReplySettingsChanged", "Disabled"
    ]
    copy = replayed(app, mailbox)
    assert (copy.display_name, copy.protocol, copy.incoming, copy.outgoing) == (
        "Help desk", MailProtocol.POP3, pop, SMTP
    )
    assert copy.secret_ref == new_secret
    assert (copy.subject_template, copy.footer) == ("[{mailbox}] {subject}", "-- \nThe team")
    assert copy.status == "DISABLED"
    copy.enable()
    copy.delete()
    again = replayed(app, copy)
    assert (again.enabled, again.deleted, again.status) == (True, True, "CONNECTED")


# --- tokens -----------------------------------------------------------------------------


def test_token_is_issued_and_revoked_through_replay(app: Mailroom) -> None:
    agent = uuid4()
    token = ApiToken(name="CI", role=Role.AGENT, agent_id=agent, token_hash=hash_token("mr_secret"))
    assert event_names(token) == ["Issued"]
    copy = replayed(app, token)
    assert (copy.name, copy.role, copy.agent_id, copy.revoked) == ("CI", Role.AGENT, agent, False)
    copy.revoke()
    assert replayed(app, copy).revoked is True


def test_token_id_is_derived_from_the_hash() -> None:
    value = new_token_value()
    token = ApiToken(name="CI", role=Role.ADMIN, agent_id=None, token_hash=hash_token(value))
    assert token.id == token_id(hash_token(value)) == ApiToken.create_id(hash_token(value))
    assert token_id(hash_token(value + "x")) != token.id


def test_hash_token_is_deterministic_and_hides_the_value() -> None:
    value = new_token_value()
    assert hash_token(value) == hash_token(value)
    assert hash_token(value) != value
    assert value not in hash_token(value)
    assert len(hash_token(value)) == 64
    assert set(hash_token(value)) <= set("0123456789abcdef")
    assert hash_token(value) != hash_token(new_token_value())


def test_new_token_value_is_prefixed_long_and_fresh() -> None:
    values = {new_token_value() for _ in range(50)}
    assert len(values) == 50
    for value in values:
        assert value.startswith(TOKEN_PREFIX) and TOKEN_PREFIX == "mr_"
        assert len(value) >= 40
        assert value.isascii() and " " not in value


# --- routing rules ----------------------------------------------------------------------


def test_routing_rule_events_and_replay(app: Mailroom) -> None:
    spec = RuleSpec(
        name="VIP",
        mailbox_ids=[uuid4(), uuid4()],
        group_ids=[uuid4()],
        strategy=AssignmentStrategy.ACCOUNT_OWNER,
        priority=-5,
        match=ConditionMatch.ANY,
        conditions=[
            Condition(ConditionField.HEADER, ConditionOperator.EQUALS, "1", header_name="X-Priority"),
            Condition(ConditionField.HAS_ATTACHMENT, ConditionOperator.IS_TRUE),
        ],
        fallback_strategy=AssignmentStrategy.ROUND_ROBIN,
    )
    rule = RoutingRule(spec=spec)
    changed = RuleSpec(name="VIP off", mailbox_ids=spec.mailbox_ids, group_ids=[], strategy=spec.strategy,
                       enabled=False)
    rule.change(changed)
    assert event_names(rule) == ["Created", "Changed"]
    copy = replayed(app, rule)
    assert copy.spec == changed
    assert isinstance(copy.spec, RuleSpec)
    copy.delete()
    assert replayed(app, copy).deleted is True


def test_created_rule_spec_survives_replay_exactly(app: Mailroom) -> None:
    spec = RuleSpec(
        name="Invoices",
        mailbox_ids=[UUID(int=1)],
        group_ids=[UUID(int=2), UUID(int=3)],
        strategy=AssignmentStrategy.LOAD_BALANCED,
        conditions=[Condition(ConditionField.SUBJECT, ConditionOperator.MATCHES_REGEX, r"invoice #\d+")],
    )
    copy = replayed(app, RoutingRule(spec=spec))
    assert copy.spec == spec
    assert all(isinstance(i, UUID) for i in copy.spec.mailbox_ids + copy.spec.group_ids)
    assert all(isinstance(c, Condition) for c in copy.spec.conditions)
