"""Commands through the in-memory application: what gets written, and what is refused."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from uuid import UUID, uuid4

import pytest

from domain.agents import Agent, AgentGroup
from domain.application import Mailroom
from domain.claims import Claim
from domain.commands.agents import EMAIL_CLAIM
from domain.commands.base import KEEP
from domain.commands.mailboxes import ADDRESS_CLAIM, BindFailed
from domain.commands.tokens import Principal
from domain.errors import Problem, Rejected
from domain.mailbox import Mailbox
from domain.ports import Discovery, LoginRefused, References, SecretStore, Tried
from domain.routing import RoutingRule, RuleSpec
from domain.tokens import ApiToken, hash_token
from domain.values import (
    AgentStatus,
    AssignmentStrategy,
    Condition,
    ConditionField,
    ConditionOperator,
    MailProtocol,
    Role,
    ServerSettings,
    TransportSecurity,
)

GOOD = "right-password"


class FakeSecrets(SecretStore):
    def __init__(self) -> None:
        self.stored: dict[UUID, str] = {}

    def put(self, plaintext: str) -> UUID:
        ref = uuid4()
        self.stored[ref] = plaintext
        return ref

    def get(self, ref: UUID) -> str:
        return self.stored[ref]


class FakeLogin:
    """Accepts `password` only; `refuse_with` makes it answer with another code (e.g. UNREACHABLE)."""

    def __init__(self) -> None:
        self.calls: list[tuple[MailProtocol, ServerSettings, str]] = []
        self.password = GOOD
        self.refuse_with: str | None = None

    def __call__(self, protocol: MailProtocol, settings: ServerSettings, password: str) -> None:
        self.calls.append((protocol, settings, password))
        if self.refuse_with:
            raise LoginRefused(self.refuse_with, "the server could not be reached")
        if password != self.password:
            raise LoginRefused("AUTH_FAILED", "the server refused the user name or password")


class FakeReferences(References):
    def __init__(self) -> None:
        self.mailbox_rules: dict[UUID, list[str]] = {}
        self.group_rules: dict[UUID, list[str]] = {}

    def rules_using_mailbox(self, mailbox_id: UUID) -> list[str]:
        return self.mailbox_rules.get(mailbox_id, [])

    def rules_using_group(self, group_id: UUID) -> list[str]:
        return self.group_rules.get(group_id, [])


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch) -> Iterator[Mailroom]:
    monkeypatch.delenv("MAILROOM_PERSISTENCE_MODULE", raising=False)
    application = Mailroom(
        env={"PERSISTENCE_MODULE": "eventsourcing.popo"},
        secrets=FakeSecrets(),
        verify_login=FakeLogin(),
        references=FakeReferences(),
    )
    yield application
    application.close()


def login(app: Mailroom) -> FakeLogin:
    assert isinstance(app.verify_login, FakeLogin)
    return app.verify_login


def secrets(app: Mailroom) -> FakeSecrets:
    assert isinstance(app.secrets, FakeSecrets)
    return app.secrets


def references(app: Mailroom) -> FakeReferences:
    assert isinstance(app.references, FakeReferences)
    return app.references


def log_end(app: Mailroom) -> int:
    return app.recorder.max_notification_id() or 0


def stored_states(app: Mailroom) -> list[str]:
    return [n.state.decode() for n in app.recorder.select_notifications(1, 1000)]


def refused(command: Callable[..., Any], *args: Any, **kwargs: Any) -> list[Problem]:
    """Runs a command that must be refused without writing anything; returns its problems."""
    app: Mailroom = command.__self__  # type: ignore[attr-defined]
    before = log_end(app)
    with pytest.raises(Rejected) as raised:
        command(*args, **kwargs)
    assert log_end(app) == before, "a refused command wrote events"
    return raised.value.problems


def codes(problems: list[Problem]) -> list[tuple[tuple[str, ...] | None, str]]:
    return [(p.field, p.code) for p in problems]


def imap(port: int = 993, username: str = "", host: str = "imap.example.com") -> ServerSettings:
    return ServerSettings(host, port, TransportSecurity.TLS, username)


def bind(app: Mailroom, address: str = "support@example.com", **kwargs: Any) -> UUID:
    kwargs.setdefault("incoming", imap())
    written, _ = app.bind_mailbox(address, kwargs.pop("password", GOOD), **kwargs)
    return written.id


# --- binding mailboxes ------------------------------------------------------------------


def test_bind_normalises_the_address_and_fills_defaults(app: Mailroom) -> None:
    written, attempts = app.bind_mailbox("  Support@Example.COM ", GOOD, incoming=imap())
    mailbox = app.repository.get(written.id)
    assert isinstance(mailbox, Mailbox)
    assert mailbox.address == "support@example.com"
    assert mailbox.display_name == "support@example.com"
    assert mailbox.incoming.username == "support@example.com"  # empty user name means the address
    assert mailbox.protocol is MailProtocol.IMAP
    assert mailbox.status == "CONNECTED"
    assert secrets(app).get(mailbox.secret_ref) == GOOD
    assert written.position == log_end(app)
    [(protocol, settings, password)] = login(app).calls
    assert (protocol, settings.username, password) == (MailProtocol.IMAP, "support@example.com", GOOD)
    assert [(a.source, a.outcome) for a in attempts] == [("given", "ok")]
    claim = app.repository.get(Claim.create_id(ADDRESS_CLAIM, "support@example.com"))
    assert claim.owner_id == mailbox.id


def test_bind_keeps_given_display_name_and_username(app: Mailroom) -> None:
    mailbox_id = bind(app, display_name="  Help desk ", incoming=imap(username="helpdesk"))
    mailbox = app.repository.get(mailbox_id)
    assert mailbox.display_name == "Help desk"
    assert mailbox.incoming.username == "helpdesk"


@pytest.mark.parametrize(
    ("port", "given", "expected"),
    [
        (995, None, MailProtocol.POP3),
        (110, None, MailProtocol.POP3),
        (993, None, MailProtocol.IMAP),
        (143, None, MailProtocol.IMAP),
        (995, MailProtocol.IMAP, MailProtocol.IMAP),
        (993, MailProtocol.POP3, MailProtocol.POP3),
    ],
)
def test_bind_infers_protocol_from_port_unless_given(
    app: Mailroom, port: int, given: MailProtocol | None, expected: MailProtocol
) -> None:
    mailbox_id = bind(app, protocol=given, incoming=imap(port=port))
    assert app.repository.get(mailbox_id).protocol is expected
    assert login(app).calls[0][0] is expected  # the login tried is the protocol stored


@pytest.mark.parametrize("again", ["support@example.com", "SUPPORT@Example.com", " support@example.com"])
def test_bind_rejects_an_address_already_bound(app: Mailroom, again: str) -> None:
    bind(app)
    calls = len(login(app).calls)
    problems = refused(app.bind_mailbox, again, "wrong-password", incoming=imap())
    assert codes(problems) == [(("input", "address"), "DUPLICATE")]
    assert len(login(app).calls) == calls  # no login tried for a taken address


def test_bind_with_wrong_password_is_auth_failed_and_writes_nothing(app: Mailroom) -> None:
    with pytest.raises(BindFailed) as raised:
        app.bind_mailbox("support@example.com", "wrong", incoming=imap())
    assert codes(raised.value.problems) == [(("input", "password"), "AUTH_FAILED")]
    assert [a.outcome for a in raised.value.attempts] == ["auth-failed"]
    assert app.recorder.max_notification_id() is None
    assert secrets(app).stored == {}  # the refused password is not kept either
    # The address is still free.
    bind(app)


def test_bind_to_unreachable_server_points_at_incoming_settings(app: Mailroom) -> None:
    login(app).refuse_with = "UNREACHABLE"
    problems = refused(app.bind_mailbox, "support@example.com", GOOD, incoming=imap())
    assert codes(problems) == [(("input", "incoming"), "UNREACHABLE")]


def test_bind_needs_incoming_settings(app: Mailroom) -> None:
    problems = refused(app.bind_mailbox, "support@example.com", GOOD)
    assert codes(problems) == [(("input", "incoming"), "NEEDS_ADVANCED_SETTINGS")]
    assert login(app).calls == []


class FakeDiscovery:
    """Answers discovery with a prepared result; remembers the addresses asked about."""

    def __init__(self, found: Discovery) -> None:
        self.found = found
        self.asked: list[str] = []

    def __call__(self, address: str, password: str) -> Discovery:
        self.asked.append(address)
        return self.found


SMTP = ServerSettings("smtp.example.com", 465, TransportSecurity.TLS, "support@example.com")


def test_bind_with_address_and_password_alone_uses_the_discovered_settings(app: Mailroom) -> None:
    incoming = imap(username="support")
    tried = [Tried("srv", MailProtocol.IMAP, imap(host="mail.example.com"), "timeout"),
             Tried("guess", MailProtocol.IMAP, incoming, "ok")]
    app.discover = FakeDiscovery(Discovery(MailProtocol.IMAP, incoming, SMTP, tried))
    written, attempts = app.bind_mailbox("support@example.com", GOOD)
    mailbox = app.repository.get(written.id)
    assert isinstance(mailbox, Mailbox)
    assert (mailbox.protocol, mailbox.incoming, mailbox.outgoing) == (MailProtocol.IMAP, incoming, SMTP)
    assert [(a.source, a.outcome) for a in attempts] == [("srv", "timeout"), ("guess", "ok")]
    assert login(app).calls == []  # discovery logged in already


def test_bind_when_the_server_refuses_the_password_is_auth_failed_not_advanced(app: Mailroom) -> None:
    tried = [Tried("provider-table", MailProtocol.IMAP, imap(), "auth-failed")]
    app.discover = FakeDiscovery(Discovery(None, None, None, tried, auth_failed=True))
    with pytest.raises(BindFailed) as failed:
        app.bind_mailbox("support@example.com", "wrong")
    assert codes(failed.value.problems) == [(("input", "password"), "AUTH_FAILED")]
    assert [a.outcome for a in failed.value.attempts] == ["auth-failed"]


def test_bind_when_nothing_is_found_asks_for_advanced_settings_with_the_attempts(app: Mailroom) -> None:
    tried = [Tried("guess", MailProtocol.IMAP, imap(host="imap.example.com"), "no-such-host")]
    app.discover = FakeDiscovery(Discovery(None, None, None, tried))
    with pytest.raises(BindFailed) as failed:
        app.bind_mailbox("support@example.com", GOOD)
    assert codes(failed.value.problems) == [(("input", "incoming"), "NEEDS_ADVANCED_SETTINGS")]
    assert [a.outcome for a in failed.value.attempts] == ["no-such-host"]


def test_discovery_is_not_asked_for_an_address_already_bound(app: Mailroom) -> None:
    bind(app)
    discovery = FakeDiscovery(Discovery(None, None, None))
    app.discover = discovery
    refused(app.bind_mailbox, "support@example.com", GOOD)
    assert discovery.asked == []


def test_bind_reports_every_input_problem_before_trying_to_log_in(app: Mailroom) -> None:
    problems = refused(
        app.bind_mailbox,
        "not-an-address",
        "",
        display_name="two\nlines",
        incoming=imap(port=0, host=""),
        outgoing=ServerSettings("smtp.example.com", 70000, TransportSecurity.STARTTLS, "a\nb"),
    )
    assert codes(problems) == [
        (("input", "address"), "INVALID"),
        (("input", "password"), "INVALID"),
        (("input", "displayName"), "INVALID"),
        (("input", "incoming", "host"), "INVALID"),
        (("input", "incoming", "port"), "INVALID"),
        (("input", "outgoing", "port"), "INVALID"),
        (("input", "outgoing", "username"), "INVALID"),
    ]
    assert login(app).calls == []


def test_mailbox_password_never_reaches_the_event_log(app: Mailroom) -> None:
    mailbox_id = bind(app, password=GOOD)
    login(app).password = "rotated-password"
    app.update_mailbox(mailbox_id, password="rotated-password")
    states = stored_states(app)
    assert any("PasswordChanged" in n.topic for n in app.recorder.select_notifications(1, 1000))
    assert not any(GOOD in state or "rotated-password" in state for state in states)


def test_deleting_a_mailbox_frees_its_address(app: Mailroom) -> None:
    mailbox_id = bind(app)
    app.delete_mailbox(mailbox_id)
    assert app.repository.get(mailbox_id).deleted is True
    again = bind(app, "Support@example.com")
    assert again != mailbox_id


def test_mailbox_used_by_a_rule_cannot_be_deleted(app: Mailroom) -> None:
    mailbox_id = bind(app)
    references(app).mailbox_rules[mailbox_id] = ["Billing", "VIP"]
    problems = refused(app.delete_mailbox, mailbox_id)
    assert codes(problems) == [(("id",), "IN_USE")]
    assert "Billing, VIP" in problems[0].message


# --- updating mailboxes -----------------------------------------------------------------


def test_update_mailbox_keeps_what_is_not_given(app: Mailroom) -> None:
    outgoing = ServerSettings("smtp.example.com", 587, TransportSecurity.STARTTLS, "")
    mailbox_id = bind(app, display_name="Support", outgoing=outgoing)
    before = app.repository.get(mailbox_id)
    logins = len(login(app).calls)

    app.update_mailbox(mailbox_id, display_name="Help desk")

    after = app.repository.get(mailbox_id)
    assert after.display_name == "Help desk"
    assert (after.protocol, after.incoming, after.outgoing, after.secret_ref, after.enabled) == (
        before.protocol, before.incoming, before.outgoing, before.secret_ref, before.enabled
    )
    assert after.outgoing.username == "support@example.com"
    assert len(login(app).calls) == logins  # a rename needs no login


def test_update_mailbox_with_nothing_given_writes_nothing(app: Mailroom) -> None:
    mailbox_id = bind(app)
    before = log_end(app)
    written = app.update_mailbox(mailbox_id, KEEP, KEEP, KEEP, KEEP, KEEP, KEEP)
    assert written.position is None
    assert log_end(app) == before


def test_update_mailbox_new_user_name_on_the_same_server_is_verified_with_the_stored_password(
    app: Mailroom,
) -> None:
    mailbox_id = bind(app)
    app.update_mailbox(mailbox_id, incoming=imap(username="support"))
    _protocol, settings, password = login(app).calls[-1]
    assert (settings.port, settings.username, password) == (993, "support", GOOD)
    assert app.repository.get(mailbox_id).incoming.username == "support"


def test_update_mailbox_new_server_needs_the_password_and_is_verified_with_it(app: Mailroom) -> None:
    mailbox_id = bind(app)
    calls = len(login(app).calls)
    problems = refused(app.update_mailbox, mailbox_id, incoming=imap(port=143))
    assert codes(problems) == [(("input", "password"), "PASSWORD_REQUIRED")]
    assert len(login(app).calls) == calls  # nothing was sent anywhere
    app.update_mailbox(mailbox_id, incoming=imap(port=143), password=GOOD)
    _protocol, settings, password = login(app).calls[-1]
    assert (settings.port, settings.username, password) == (143, "support@example.com", GOOD)
    assert app.repository.get(mailbox_id).incoming.port == 143


def test_update_mailbox_refused_login_writes_nothing(app: Mailroom) -> None:
    mailbox_id = bind(app)
    problems = refused(app.update_mailbox, mailbox_id, password="wrong", display_name="New name")
    assert codes(problems) == [(("input", "password"), "AUTH_FAILED")]
    assert app.repository.get(mailbox_id).display_name == "support@example.com"


def test_update_mailbox_password_is_replaced_by_a_new_secret(app: Mailroom) -> None:
    mailbox_id = bind(app)
    old_ref = app.repository.get(mailbox_id).secret_ref
    login(app).calls.clear()
    login(app).password = "rotated-password"
    app.update_mailbox(mailbox_id, password="rotated-password")
    new_ref = app.repository.get(mailbox_id).secret_ref
    assert new_ref != old_ref
    assert secrets(app).get(new_ref) == "rotated-password"
    assert [c[2] for c in login(app).calls] == ["rotated-password"]  # the new password was tried
    # Later changes of the user name are verified with the new password.
    app.update_mailbox(mailbox_id, incoming=imap(username="support"))
    assert login(app).calls[-1][2] == "rotated-password"


def test_update_mailbox_can_disable_and_enable(app: Mailroom) -> None:
    mailbox_id = bind(app)
    app.update_mailbox(mailbox_id, enabled=False)
    assert app.repository.get(mailbox_id).status == "DISABLED"
    app.update_mailbox(mailbox_id, enabled=True)
    assert app.repository.get(mailbox_id).status == "CONNECTED"


def test_update_unknown_or_deleted_mailbox_is_not_found(app: Mailroom) -> None:
    assert codes(refused(app.update_mailbox, uuid4(), display_name="x")) == [(("input", "id"), "NOT_FOUND")]
    mailbox_id = bind(app)
    app.delete_mailbox(mailbox_id)
    assert codes(refused(app.update_mailbox, mailbox_id, display_name="x")) == [(("input", "id"), "NOT_FOUND")]


def test_reply_settings_are_checked_and_stored(app: Mailroom) -> None:
    mailbox_id = bind(app)
    problems = refused(app.set_reply_settings, mailbox_id, "Re: {sender}", "")
    assert codes(problems) == [(("input", "subjectTemplate"), "INVALID")]
    problems = refused(app.set_reply_settings, mailbox_id, "Re: {subject}", "x" * 10_001)
    assert codes(problems) == [(("input", "footer"), "INVALID")]
    app.set_reply_settings(mailbox_id, "[{mailbox}] {subject}", "-- \nThanks")
    mailbox = app.repository.get(mailbox_id)
    assert (mailbox.subject_template, mailbox.footer) == ("[{mailbox}] {subject}", "-- \nThanks")


# --- agents and groups ------------------------------------------------------------------


def test_create_agent_normalises_email(app: Mailroom) -> None:
    written = app.create_agent("  Ann  ", " Ann@Example.COM ", capacity=3)
    agent = app.repository.get(written.id)
    assert isinstance(agent, Agent)
    assert (agent.name, agent.email, agent.capacity, agent.status) == (
        "Ann", "ann@example.com", 3, AgentStatus.ONLINE
    )


@pytest.mark.parametrize("again", ["ann@example.com", "ANN@example.COM", "  Ann@Example.com"])
def test_create_agent_rejects_duplicate_email_case_insensitively(app: Mailroom, again: str) -> None:
    app.create_agent("Ann", "Ann@Example.com")
    assert codes(refused(app.create_agent, "Other Ann", again)) == [(("input", "email"), "DUPLICATE")]


def test_racing_agent_creations_cannot_both_win(app: Mailroom, monkeypatch: pytest.MonkeyPatch) -> None:
    app.create_agent("Ann", "ann@example.com")
    # A second writer that read the claim before the first one saved it:
    monkeypatch.setattr(app, "_find", lambda aggregate_id: None)
    assert codes(refused(app.create_agent, "Ann 2", "ann@example.com")) == [(("input", "email"), "CONFLICT")]


@pytest.mark.parametrize("capacity", [-1, 10_001])
def test_capacity_out_of_bounds_is_refused(app: Mailroom, capacity: int) -> None:
    problems = refused(app.create_agent, "Ann", "ann@example.com", capacity=capacity)
    assert codes(problems) == [(("input", "capacity"), "INVALID")]
    agent_id = app.create_agent("Bob", "bob@example.com").id
    assert codes(refused(app.update_agent, agent_id, capacity=capacity)) == [(("input", "capacity"), "INVALID")]


@pytest.mark.parametrize("capacity", [None, 0, 1, 10_000])
def test_capacity_within_bounds_is_kept(app: Mailroom, capacity: int | None) -> None:
    agent_id = app.create_agent("Ann", "ann@example.com", capacity=capacity).id
    assert app.repository.get(agent_id).capacity == capacity


def test_changing_an_agents_email_moves_the_claim(app: Mailroom) -> None:
    ann = app.create_agent("Ann", "ann@example.com").id
    bob = app.create_agent("Bob", "bob@example.com").id
    assert codes(refused(app.update_agent, ann, email="BOB@example.com")) == [(("input", "email"), "DUPLICATE")]
    app.update_agent(ann, email="Ann.New@example.com")
    assert app.repository.get(ann).email == "ann.new@example.com"
    assert app.repository.get(ann).name == "Ann"
    assert app.repository.get(Claim.create_id(EMAIL_CLAIM, "ann@example.com")).owner_id is None
    # The old address is free again; the new one is taken.
    app.create_agent("Another Ann", "ann@example.com")
    assert codes(refused(app.update_agent, bob, email="ann.new@example.com")) == [
        (("input", "email"), "DUPLICATE")
    ]


def test_set_agent_status_only_records_changes(app: Mailroom) -> None:
    ann = app.create_agent("Ann", "ann@example.com").id
    before = log_end(app)
    assert app.set_agent_status(ann, AgentStatus.ONLINE).position is None
    assert log_end(app) == before
    app.set_agent_status(ann, AgentStatus.AWAY)
    assert app.repository.get(ann).status is AgentStatus.AWAY


def test_group_members_must_be_agents(app: Mailroom) -> None:
    ann = app.create_agent("Ann", "ann@example.com").id
    problems = refused(app.create_agent_group, "Tier 1", [ann, uuid4()])
    assert codes(problems) == [(("input", "memberIds", "1"), "NOT_FOUND")]


def test_group_keeps_joining_order_and_ignores_repeats(app: Mailroom) -> None:
    a, b, c = (app.create_agent(n, f"{n}@example.com").id for n in ("a", "b", "c"))
    group_id = app.create_agent_group("Tier 1", [b, a, b]).id
    assert app.repository.get(group_id).member_ids == [b, a]
    app.add_group_members(group_id, [a, c, c])
    assert app.repository.get(group_id).member_ids == [b, a, c]
    before = log_end(app)
    assert app.add_group_members(group_id, [a, b]).position is None  # nobody new: nothing written
    assert log_end(app) == before
    app.remove_group_members(group_id, [a])
    app.add_group_members(group_id, [a])
    assert app.repository.get(group_id).member_ids == [b, c, a]


def test_group_used_by_a_rule_cannot_be_deleted(app: Mailroom) -> None:
    group_id = app.create_agent_group("Tier 1", []).id
    references(app).group_rules[group_id] = ["Billing"]
    assert codes(refused(app.delete_agent_group, group_id)) == [(("id",), "IN_USE")]
    references(app).group_rules.clear()
    app.delete_agent_group(group_id)
    assert app.repository.get(group_id).deleted is True


# --- customers --------------------------------------------------------------------------


def test_upsert_contact_is_one_contact_per_address(app: Mailroom) -> None:
    first = app.upsert_contact("Ann@Example.com", name="Ann")
    second = app.upsert_contact("ann@example.COM", account_id=KEEP)
    assert first.id == second.id
    assert app.repository.get(first.id).name == "Ann"  # KEEP left the name alone


def test_bad_account_domain_is_reported_at_the_index_given(app: Mailroom) -> None:
    problems = refused(app.upsert_account, None, "ACME", ["acme.com", "ACME.com", "not a domain"])
    assert codes(problems) == [(("input", "domains", "2"), "INVALID")]
    account_id = app.upsert_account(None, "ACME", ["acme.com", " ACME.com "]).id
    assert app.repository.get(account_id).domains == ["acme.com"]


# --- routing rules ----------------------------------------------------------------------


def spec(mailbox_ids: list[UUID], group_ids: list[UUID], **changes: Any) -> RuleSpec:
    fields: dict[str, Any] = {
        "name": "Billing",
        "mailbox_ids": mailbox_ids,
        "group_ids": group_ids,
        "strategy": AssignmentStrategy.ROUND_ROBIN,
        "conditions": [Condition(ConditionField.SUBJECT, ConditionOperator.CONTAINS, "invoice")],
    }
    fields.update(changes)
    return RuleSpec(**fields)


@pytest.fixture
def mailbox_and_group(app: Mailroom) -> tuple[UUID, UUID]:
    return bind(app), app.create_agent_group("Tier 1", []).id


def test_create_routing_rule_stores_a_tidied_spec(app: Mailroom, mailbox_and_group: tuple[UUID, UUID]) -> None:
    mailbox_id, group_id = mailbox_and_group
    written = app.create_routing_rule(spec([mailbox_id, mailbox_id], [group_id, group_id], name="  Billing "))
    rule = app.repository.get(written.id)
    assert isinstance(rule, RoutingRule)
    assert rule.spec == spec([mailbox_id], [group_id])


def test_rule_references_must_exist(app: Mailroom, mailbox_and_group: tuple[UUID, UUID]) -> None:
    mailbox_id, group_id = mailbox_and_group
    problems = refused(app.create_routing_rule, spec([uuid4()], [group_id]))
    assert codes(problems) == [(("input", "mailboxIds", "0"), "NOT_FOUND")]
    problems = refused(app.create_routing_rule, spec([mailbox_id], [group_id, uuid4()]))
    assert codes(problems) == [(("input", "groupIds", "1"), "NOT_FOUND")]
    # A group id given as a mailbox, and a mailbox id given as a group, are not found either.
    problems = refused(app.create_routing_rule, spec([group_id], [mailbox_id]))
    assert codes(problems) == [(("input", "mailboxIds", "0"), "NOT_FOUND"), (("input", "groupIds", "0"), "NOT_FOUND")]


def test_rule_reference_problem_points_at_the_index_given(
    app: Mailroom, mailbox_and_group: tuple[UUID, UUID]
) -> None:
    mailbox_id, group_id = mailbox_and_group
    problems = refused(app.create_routing_rule, spec([mailbox_id, mailbox_id, uuid4()], [group_id]))
    assert codes(problems) == [(("input", "mailboxIds", "2"), "NOT_FOUND")]


def test_rule_cannot_use_a_deleted_mailbox(app: Mailroom, mailbox_and_group: tuple[UUID, UUID]) -> None:
    mailbox_id, group_id = mailbox_and_group
    app.delete_mailbox(mailbox_id)
    problems = refused(app.create_routing_rule, spec([mailbox_id], [group_id]))
    assert codes(problems) == [(("input", "mailboxIds", "0"), "NOT_FOUND")]


def test_rule_checks_and_reference_checks_are_reported_together(app: Mailroom) -> None:
    bad = spec([uuid4()], [], priority=5_000_000,
               conditions=[Condition(ConditionField.HEADER, ConditionOperator.CONTAINS, "x")])
    assert codes(refused(app.create_routing_rule, bad)) == [
        (("input", "groupIds"), "INVALID"),
        (("input", "priority"), "INVALID"),
        (("input", "conditions", "0", "headerName"), "INVALID"),
        (("input", "mailboxIds", "0"), "NOT_FOUND"),
    ]


def test_update_routing_rule_with_stale_version_conflicts(
    app: Mailroom, mailbox_and_group: tuple[UUID, UUID]
) -> None:
    mailbox_id, group_id = mailbox_and_group
    rule_id = app.create_routing_rule(spec([mailbox_id], [group_id])).id
    app.update_routing_rule(rule_id, spec([mailbox_id], [group_id], priority=5), expected_version=1)
    assert app.repository.get(rule_id).version == 2

    problems = refused(app.update_routing_rule, rule_id, spec([mailbox_id], [group_id], priority=9),
                       expected_version=1)
    assert codes(problems) == [(("expectedVersion",), "CONFLICT")]
    assert app.repository.get(rule_id).spec.priority == 5

    app.update_routing_rule(rule_id, spec([mailbox_id], [group_id], priority=9))  # no version: last wins
    assert app.repository.get(rule_id).spec.priority == 9


def test_update_routing_rule_is_checked_like_create(app: Mailroom, mailbox_and_group: tuple[UUID, UUID]) -> None:
    mailbox_id, group_id = mailbox_and_group
    rule_id = app.create_routing_rule(spec([mailbox_id], [group_id])).id
    problems = refused(app.update_routing_rule, rule_id, spec([mailbox_id], [group_id], name=""))
    assert codes(problems) == [(("input", "name"), "INVALID")]
    assert codes(refused(app.update_routing_rule, uuid4(), spec([mailbox_id], [group_id]))) == [
        (("id",), "NOT_FOUND")
    ]
    before = log_end(app)
    assert app.update_routing_rule(rule_id, spec([mailbox_id], [group_id])).position is None  # unchanged
    assert log_end(app) == before
    app.delete_routing_rule(rule_id)
    assert codes(refused(app.update_routing_rule, rule_id, spec([mailbox_id], [group_id]))) == [
        (("id",), "NOT_FOUND")
    ]


# --- API tokens -------------------------------------------------------------------------


def test_agent_token_needs_an_agent(app: Mailroom) -> None:
    assert codes(refused(app.create_api_token, "CI", Role.AGENT, None)) == [(("input", "agentId"), "INVALID")]
    assert codes(refused(app.create_api_token, "CI", Role.AGENT, uuid4())) == [
        (("input", "agentId"), "NOT_FOUND")
    ]
    assert codes(refused(app.create_api_token, "", Role.ADMIN, None)) == [(("input", "name"), "INVALID")]


@pytest.mark.parametrize("role", [Role.ADMIN, Role.AUDITOR])
def test_issued_token_authenticates_with_its_role(app: Mailroom, role: Role) -> None:
    value, written = app.create_api_token("  Dashboard ", role, None)
    assert app.authenticate(value) == Principal(role, None, written.id)
    assert app.repository.get(written.id).name == "Dashboard"


def test_agent_token_authenticates_as_that_agent(app: Mailroom) -> None:
    ann = app.create_agent("Ann", "ann@example.com").id
    value, written = app.create_api_token("Ann's laptop", Role.AGENT, ann)
    assert app.authenticate(value) == Principal(Role.AGENT, ann, written.id)


def test_unknown_or_revoked_token_is_nobody(app: Mailroom) -> None:
    value, written = app.create_api_token("CI", Role.ADMIN, None)
    assert app.authenticate("mr_" + "x" * 43) is None
    assert app.authenticate("") is None
    assert app.authenticate(value + "x") is None
    token = app.repository.get(written.id)
    assert isinstance(token, ApiToken)
    token.revoke()
    app.save(token)
    assert app.authenticate(value) is None


def test_admin_bootstrap_token(app: Mailroom) -> None:
    assert app.authenticate("x" * 20) is None  # no bootstrap token configured
    app.admin_token = "x" * 20
    assert app.authenticate("x" * 20) == Principal(Role.ADMIN, None, None)
    assert app.authenticate("x" * 19) is None
    assert app.authenticate("X" * 20) is None


def test_token_value_is_never_stored(app: Mailroom) -> None:
    ann = app.create_agent("Ann", "ann@example.com").id
    values = [app.create_api_token("admin", Role.ADMIN, None)[0], app.create_api_token("ann", Role.AGENT, ann)[0]]
    states = stored_states(app)
    for value in values:
        assert not any(value in state for state in states)
        assert not any(value.removeprefix("mr_") in state for state in states)
        assert any(hash_token(value) in state for state in states)  # only the hash is kept


# --- the log as a whole -----------------------------------------------------------------


def test_every_stored_event_has_a_mailroom_topic(app: Mailroom) -> None:
    mailbox_id = bind(app)
    ann = app.create_agent("Ann", "ann@example.com").id
    group_id = app.create_agent_group("Tier 1", [ann]).id
    app.create_routing_rule(spec([mailbox_id], [group_id]))
    app.upsert_contact("bob@example.com", name="Bob", owner_id=ann)
    app.upsert_account(None, "ACME", ["acme.com"], owner_id=ann)
    app.create_api_token("CI", Role.AUDITOR, None)
    notifications = app.recorder.select_notifications(1, 1000)
    assert len(notifications) >= 9
    assert all(n.topic.startswith("mailroom:") for n in notifications)
    assert all('"originator_topic":"mailroom:' in n.state.decode() for n in notifications
               if n.originator_version == 1)


def test_group_id_is_not_an_agent(app: Mailroom) -> None:
    group_id = app.create_agent_group("Tier 1", []).id
    assert isinstance(app.repository.get(group_id), AgentGroup)
    problems = refused(app.create_agent_group, "Tier 2", [group_id])
    assert codes(problems) == [(("input", "memberIds", "0"), "NOT_FOUND")]
