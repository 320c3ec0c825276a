"""Admin commands against a real event store and read models (SQLite and PostgreSQL):
what an admin configures is recorded once, validated before anything is written,
visible in the directory right after, free of secrets, and still there after a restart."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from uuid import UUID, uuid4

import pytest

from api.bootstrap import Services
from domain.commands.base import Written
from domain.errors import Problem, Rejected
from domain.mailbox import Mailbox
from domain.ports import LoginRefused
from domain.routing import RuleSpec
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
from projections.audit import page
from tests.conftest import GOOD_PASSWORD, FakeMailServer

IMAP_IN = ServerSettings("imap.example.com", 993, TransportSecurity.TLS, "")
POP_IN = ServerSettings("pop.example.com", 995, TransportSecurity.TLS, "")
SMTP_OUT = ServerSettings("smtp.example.com", 465, TransportSecurity.TLS, "")


class Accepting:
    """A mail server accepting any of the given passwords (to test password changes)."""

    def __init__(self, *passwords: str) -> None:
        self.passwords = set(passwords)
        self.logins: list[tuple[MailProtocol, ServerSettings, str]] = []

    def __call__(self, protocol: MailProtocol, settings: ServerSettings, password: str) -> None:
        self.logins.append((protocol, settings, password))
        if password not in self.passwords:
            raise LoginRefused("AUTH_FAILED", "the server refused the user name or password")


def done(services: Services, written: Written) -> Written:
    """What the API does after every mutation: wait until the read models include it."""
    assert services.projections.wait_for(written.position)
    return written


def bind(services: Services, address: str, password: str = GOOD_PASSWORD, **kwargs: Any) -> UUID:
    kwargs.setdefault("incoming", IMAP_IN)
    written, attempts = services.app.bind_mailbox(address, password, **kwargs)
    assert [a.outcome for a in attempts] == ["ok"]
    return done(services, written).id


def problems_of(call: Callable[..., Any], *args: Any, **kwargs: Any) -> list[Problem]:
    with pytest.raises(Rejected) as info:
        call(*args, **kwargs)
    return info.value.problems


def fields_and_codes(problems: list[Problem]) -> set[tuple[tuple[str, ...] | None, str]]:
    return {(p.field, p.code) for p in problems}


def rule_spec(mailbox_id: UUID, group_id: UUID, **changes: Any) -> RuleSpec:
    values: dict[str, Any] = {
        "name": "Billing",
        "mailbox_ids": [mailbox_id],
        "group_ids": [group_id],
        "strategy": AssignmentStrategy.ROUND_ROBIN,
        "priority": 10,
    }
    values.update(changes)
    return RuleSpec(**values)


def member_emails(services: Services, group_id: UUID) -> list[str]:
    return [row["email"] for row in services.directory.members(group_id)]


def events_table(services: Services) -> str:
    name = str(services.app.recorder.events_table_name)  # type: ignore[attr-defined]
    assert name == ("mailroom_events" if services.database.is_postgres else "stored_events")
    return name


# ----------------------------------------------------------------- binding mailboxes


def test_bind_mailbox_normalises_address_and_defaults_names(
    make_services: Callable[..., Services],
) -> None:
    server = FakeMailServer()
    services = make_services(server)

    mailbox_id = bind(services, "  Support@Example.COM ")
    pop_id = bind(services, "Sales@Example.com", display_name="Sales team", incoming=POP_IN,
                  outgoing=SMTP_OUT)

    row = services.directory.mailbox(mailbox_id)
    assert row is not None
    assert row["address"] == "support@example.com"
    assert row["display_name"] == "support@example.com"
    assert row["protocol"] == "IMAP"
    assert row["enabled"] == 1
    assert row["subject_template"] == "Re: {subject}"
    assert row["footer"] == "-- \nsupport@example.com"  # a signature with the mailbox's name, from the start
    assert json.loads(row["incoming"])["username"] == "support@example.com"
    assert row["outgoing"] is None

    pop = services.directory.mailbox(pop_id)
    assert pop is not None
    assert (pop["address"], pop["display_name"], pop["protocol"]) == (
        "sales@example.com", "Sales team", "POP3")
    assert json.loads(pop["outgoing"])["username"] == "sales@example.com"

    # The login was verified with the defaulted user name, before anything was recorded.
    assert [(p, s.host, s.username) for p, s in server.logins] == [
        (MailProtocol.IMAP, "imap.example.com", "support@example.com"),
        (MailProtocol.POP3, "pop.example.com", "sales@example.com"),
    ]
    aggregate = services.app.repository.get(mailbox_id)
    assert isinstance(aggregate, Mailbox)
    assert aggregate.subject_template == "Re: {subject}"
    assert services.app.secrets.get(aggregate.secret_ref) == GOOD_PASSWORD
    assert [r["address"] for r in services.directory.mailboxes()] == [
        "support@example.com", "sales@example.com"]


def test_duplicate_address_in_any_case_is_rejected_and_writes_nothing(services: Services) -> None:
    bind(services, "help@example.com")
    head = services.projections.head()

    problems = problems_of(services.app.bind_mailbox, "HELP@Example.com", GOOD_PASSWORD, incoming=IMAP_IN)

    assert fields_and_codes(problems) == {(("input", "address"), "DUPLICATE")}
    assert services.projections.head() == head
    assert [r["address"] for r in services.directory.mailboxes()] == ["help@example.com"]


def test_wrong_password_is_refused_and_writes_nothing(services: Services) -> None:
    head = services.projections.head()

    with pytest.raises(Rejected) as info:
        services.app.bind_mailbox("help@example.com", "wrong-password", incoming=IMAP_IN)

    assert fields_and_codes(info.value.problems) == {(("input", "password"), "AUTH_FAILED")}
    assert [a.outcome for a in info.value.attempts] == ["auth-failed"]  # type: ignore[attr-defined]
    assert services.projections.head() == head
    assert services.directory.mailboxes() == []
    # A refused password is not kept either.
    assert services.database.query("SELECT ref FROM mailroom_secrets") == []
    # The address is still free.
    assert services.directory.mailbox(bind(services, "help@example.com")) is not None


def test_invalid_server_settings_name_the_fields_and_no_login_is_tried(
    make_services: Callable[..., Services],
) -> None:
    server = FakeMailServer()
    services = make_services(server)
    head = services.projections.head()

    out_of_range = problems_of(
        services.app.bind_mailbox, "help@example.com", GOOD_PASSWORD,
        incoming=ServerSettings("imap.example.com", 70000, TransportSecurity.TLS, ""))
    no_host = problems_of(
        services.app.bind_mailbox, "help@example.com", GOOD_PASSWORD,
        incoming=ServerSettings("", 993, TransportSecurity.TLS, ""))
    port_zero = problems_of(
        services.app.bind_mailbox, "help@example.com", GOOD_PASSWORD,
        incoming=ServerSettings("imap.example.com", 0, TransportSecurity.TLS, ""))

    assert fields_and_codes(out_of_range) == {(("input", "incoming", "port"), "INVALID")}
    assert fields_and_codes(no_host) == {(("input", "incoming", "host"), "INVALID")}
    assert fields_and_codes(port_zero) == {(("input", "incoming", "port"), "INVALID")}
    assert server.logins == []
    assert services.projections.head() == head


def test_rebind_after_delete(services: Services) -> None:
    first = bind(services, "help@example.com")
    done(services, services.app.delete_mailbox(first))
    assert services.directory.mailbox(first) is None
    assert services.directory.mailboxes() == []

    second = bind(services, "Help@Example.com", display_name="Help desk")

    assert second != first
    assert [(r["id"], r["address"], r["display_name"]) for r in services.directory.mailboxes()] == [
        (str(second), "help@example.com", "Help desk")]
    # The address is taken again.
    problems = problems_of(services.app.bind_mailbox, "help@example.com", GOOD_PASSWORD, incoming=IMAP_IN)
    assert fields_and_codes(problems) == {(("input", "address"), "DUPLICATE")}


# ----------------------------------------------------------------- updating mailboxes


def test_update_mailbox_display_name_and_enabled(services: Services) -> None:
    mailbox_id = bind(services, "help@example.com")

    done(services, services.app.update_mailbox(mailbox_id, display_name="  Help desk "))
    row = services.directory.mailbox(mailbox_id)
    assert row is not None
    assert (row["display_name"], row["enabled"]) == ("Help desk", 1)

    done(services, services.app.update_mailbox(mailbox_id, enabled=False))
    row = services.directory.mailbox(mailbox_id)
    assert row is not None
    assert (row["display_name"], row["enabled"]) == ("Help desk", 0)

    done(services, services.app.update_mailbox(mailbox_id, enabled=True))
    row = services.directory.mailbox(mailbox_id)
    assert row is not None
    assert row["enabled"] == 1

    problems = problems_of(services.app.update_mailbox, uuid4(), display_name="x")
    assert fields_and_codes(problems) == {(("input", "id"), "NOT_FOUND")}


def test_password_change_is_verified_and_a_refused_one_keeps_the_stored_secret(
    make_services: Callable[..., Services],
) -> None:
    server = Accepting(GOOD_PASSWORD, "new-password-77")
    services = make_services(server)
    mailbox_id = bind(services, "help@example.com")
    before = services.app.repository.get(mailbox_id)
    head = services.projections.head()

    problems = problems_of(services.app.update_mailbox, mailbox_id, password="wrong-password")

    assert fields_and_codes(problems) == {(("input", "password"), "AUTH_FAILED")}
    assert services.projections.head() == head
    after = services.app.repository.get(mailbox_id)
    assert after.secret_ref == before.secret_ref
    assert services.app.secrets.get(after.secret_ref) == GOOD_PASSWORD

    done(services, services.app.update_mailbox(mailbox_id, password="new-password-77"))

    changed = services.app.repository.get(mailbox_id)
    assert changed.secret_ref != before.secret_ref
    assert services.app.secrets.get(changed.secret_ref) == "new-password-77"
    assert server.logins[-1][2] == "new-password-77"


def test_connection_change_is_verified_with_the_password_given_again(
    make_services: Callable[..., Services],
) -> None:
    server = Accepting(GOOD_PASSWORD)
    services = make_services(server)
    mailbox_id = bind(services, "help@example.com")
    moved = ServerSettings("mail.example.com", 143, TransportSecurity.STARTTLS, "")

    done(services, services.app.update_mailbox(mailbox_id, incoming=moved, password=GOOD_PASSWORD))

    assert server.logins[-1][1:] == (
        ServerSettings("mail.example.com", 143, TransportSecurity.STARTTLS, "help@example.com"),
        GOOD_PASSWORD)
    row = services.directory.mailbox(mailbox_id)
    assert row is not None
    assert json.loads(row["incoming"]) == {
        "host": "mail.example.com", "port": 143, "security": "STARTTLS", "username": "help@example.com"}


def test_reply_settings_placeholders(services: Services) -> None:
    mailbox_id = bind(services, "help@example.com")
    head = services.projections.head()

    problems = problems_of(services.app.set_reply_settings, mailbox_id, "Re: {foo}", "")

    assert fields_and_codes(problems) == {(("input", "subjectTemplate"), "INVALID")}
    assert "{foo}" in problems[0].message
    assert services.projections.head() == head

    template = "[{mailbox}] Re: {subject} ({conversation_ref})"
    done(services, services.app.set_reply_settings(mailbox_id, template, "-- \nThe help desk"))

    row = services.directory.mailbox(mailbox_id)
    assert row is not None
    assert (row["subject_template"], row["footer"]) == (template, "-- \nThe help desk")


# ----------------------------------------------------------------- agents and groups


def test_agents_create_duplicate_update_and_status(services: Services) -> None:
    app = services.app
    alice = done(services, app.create_agent("Alice", "Alice@Example.com", capacity=3)).id
    row = services.directory.agent(alice)
    assert row is not None
    assert (row["name"], row["email"], row["status"], row["capacity"]) == (
        "Alice", "alice@example.com", "ONLINE", 3)

    head = services.projections.head()
    problems = problems_of(app.create_agent, "Other Alice", "ALICE@example.COM")
    assert fields_and_codes(problems) == {(("input", "email"), "DUPLICATE")}
    assert services.projections.head() == head

    done(services, app.update_agent(alice, name="Alice Smith", capacity=5))
    row = services.directory.agent(alice)
    assert row is not None
    assert (row["name"], row["capacity"]) == ("Alice Smith", 5)

    done(services, app.update_agent(alice, capacity=None))
    row = services.directory.agent(alice)
    assert row is not None
    assert (row["name"], row["capacity"]) == ("Alice Smith", None)
    assert app.repository.get(alice).capacity is None

    done(services, app.set_agent_status(alice, AgentStatus.AWAY))
    row = services.directory.agent(alice)
    assert row is not None
    assert row["status"] == "AWAY"

    # Changing an email frees the old one and takes the new one.
    bob = done(services, app.create_agent("Bob", "bob@example.com")).id
    problems = problems_of(app.update_agent, alice, email="BOB@example.com")
    assert fields_and_codes(problems) == {(("input", "email"), "DUPLICATE")}
    done(services, app.update_agent(alice, email="alice.smith@example.com"))
    carol = done(services, app.create_agent("Carol", "alice@example.com")).id
    assert [r["email"] for r in services.directory.agents()] == [
        "alice.smith@example.com", "bob@example.com", "alice@example.com"]
    assert {bob, carol, alice} == {UUID(r["id"]) for r in services.directory.agents()}


def test_group_members_keep_joining_order(services: Services) -> None:
    app = services.app
    a = done(services, app.create_agent("A", "a@example.com")).id
    b = done(services, app.create_agent("B", "b@example.com")).id
    c = done(services, app.create_agent("C", "c@example.com")).id

    group = done(services, app.create_agent_group("Tier 1", [c, a, c])).id
    assert member_emails(services, group) == ["c@example.com", "a@example.com"]

    done(services, app.add_group_members(group, [b, a, b]))
    assert member_emails(services, group) == ["c@example.com", "a@example.com", "b@example.com"]

    done(services, app.remove_group_members(group, [a]))
    assert member_emails(services, group) == ["c@example.com", "b@example.com"]
    assert services.directory.groups_of_agent(a) == []

    done(services, app.add_group_members(group, [a]))
    assert member_emails(services, group) == ["c@example.com", "b@example.com", "a@example.com"]
    row = services.directory.group(group)
    assert row is not None
    assert json.loads(row["member_ids"]) == [str(c), str(b), str(a)]
    assert app.repository.get(group).member_ids == [c, b, a]


def test_unknown_agents_are_not_found_and_nothing_is_written(services: Services) -> None:
    app = services.app
    a = done(services, app.create_agent("A", "a@example.com")).id
    group = done(services, app.create_agent_group("Tier 1", [a])).id
    head = services.projections.head()

    added = problems_of(app.add_group_members, group, [uuid4()])
    created = problems_of(app.create_agent_group, "Tier 2", [a, uuid4()])
    removed = problems_of(app.remove_group_members, group, [a, uuid4()])

    assert fields_and_codes(added) == {(("agentIds", "0"), "NOT_FOUND")}
    assert fields_and_codes(created) == {(("input", "memberIds", "1"), "NOT_FOUND")}
    assert fields_and_codes(removed) == {(("agentIds", "1"), "NOT_FOUND")}
    assert services.projections.head() == head
    assert member_emails(services, group) == ["a@example.com"]


def test_group_in_use_by_a_rule_cannot_be_deleted(services: Services) -> None:
    app = services.app
    mailbox = bind(services, "help@example.com")
    a = done(services, app.create_agent("A", "a@example.com")).id
    group = done(services, app.create_agent_group("Tier 1", [a])).id
    rule = done(services, app.create_routing_rule(rule_spec(mailbox, group, name="Everything"))).id
    head = services.projections.head()

    problems = problems_of(app.delete_agent_group, group)

    assert fields_and_codes(problems) == {(("id",), "IN_USE")}
    assert "Everything" in problems[0].message
    assert services.projections.head() == head
    assert services.directory.group(group) is not None
    # The mailbox is in use as well.
    assert fields_and_codes(problems_of(app.delete_mailbox, mailbox)) == {(("id",), "IN_USE")}

    done(services, app.delete_routing_rule(rule))
    done(services, app.delete_agent_group(group))

    assert services.directory.group(group) is None
    assert services.directory.groups_of_agent(a) == []
    assert fields_and_codes(problems_of(app.add_group_members, group, [a])) == {
        (("groupId",), "NOT_FOUND")}


# ----------------------------------------------------------------- routing rules


@pytest.fixture
def mailbox_and_group(services: Services) -> tuple[UUID, UUID]:
    mailbox = bind(services, "help@example.com")
    agent = done(services, services.app.create_agent("A", "a@example.com")).id
    group = done(services, services.app.create_agent_group("Tier 1", [agent])).id
    return mailbox, group


def test_routing_rule_create_update_delete(services: Services, mailbox_and_group: tuple[UUID, UUID]) -> None:
    mailbox, group = mailbox_and_group
    app = services.app
    spec = rule_spec(mailbox, group, conditions=[
        Condition(ConditionField.SUBJECT, ConditionOperator.MATCHES_REGEX, r"invoice\s+\d+"),
        Condition(ConditionField.HEADER, ConditionOperator.CONTAINS, "gold", header_name="X-Tier"),
    ])

    rule = done(services, app.create_routing_rule(spec)).id

    row = services.directory.rule(rule)
    assert row is not None
    assert (row["name"], row["priority"], row["strategy"], row["fallback_strategy"], row["version"]) == (
        "Billing", 10, "ROUND_ROBIN", "LOAD_BALANCED", 1)
    assert json.loads(row["mailbox_ids"]) == [str(mailbox)]
    assert json.loads(row["conditions"])[1]["header_name"] == "X-Tier"
    assert services.directory.rules_using_mailbox(mailbox) == ["Billing"]
    assert app.repository.get(rule).spec == spec

    stale = problems_of(app.update_routing_rule, rule, rule_spec(mailbox, group, name="Renamed"),
                        expected_version=0)
    assert fields_and_codes(stale) == {(("expectedVersion",), "CONFLICT")}
    assert services.directory.rule(rule)["name"] == "Billing"  # type: ignore[index]

    version = app.repository.get(rule).version
    done(services, app.update_routing_rule(rule, rule_spec(mailbox, group, name="Renamed", priority=5),
                                           expected_version=version))
    row = services.directory.rule(rule)
    assert row is not None
    assert (row["name"], row["priority"], row["version"]) == ("Renamed", 5, version + 1)

    # The version just used is stale now.
    again = problems_of(app.update_routing_rule, rule, rule_spec(mailbox, group, name="Third"),
                        expected_version=version)
    assert fields_and_codes(again) == {(("expectedVersion",), "CONFLICT")}

    done(services, app.delete_routing_rule(rule))
    assert services.directory.rule(rule) is None
    assert services.directory.rules_using_mailbox(mailbox) == []
    assert services.directory.rules_using_group(group) == []


INVALID_RULES: dict[str, tuple[dict[str, Any], set[tuple[tuple[str, ...], str]]]] = {
    "bad-regex": (
        {"conditions": [Condition(ConditionField.SUBJECT, ConditionOperator.MATCHES_REGEX, "([a-z")]},
        {(("input", "conditions", "0", "value"), "INVALID")}),
    "header-without-name": (
        {"conditions": [Condition(ConditionField.HEADER, ConditionOperator.CONTAINS, "x")]},
        {(("input", "conditions", "0", "headerName"), "INVALID")}),
    "owner-fallback": (
        {"fallback_strategy": AssignmentStrategy.ACCOUNT_OWNER},
        {(("input", "fallbackStrategy"), "INVALID")}),
    "unknown-mailbox": ({"mailbox_ids": [uuid4()]}, {(("input", "mailboxIds", "0"), "NOT_FOUND")}),
    "unknown-group": ({"group_ids": [uuid4()]}, {(("input", "groupIds", "0"), "NOT_FOUND")}),
}


def test_invalid_routing_rules_are_rejected_and_write_nothing(
    services: Services, mailbox_and_group: tuple[UUID, UUID],
) -> None:
    mailbox, group = mailbox_and_group
    rule = done(services, services.app.create_routing_rule(rule_spec(mailbox, group))).id
    head = services.projections.head()

    for case, (changes, expected) in INVALID_RULES.items():
        created = problems_of(services.app.create_routing_rule, rule_spec(mailbox, group, **changes))
        # The same mistake is refused when changing an existing rule, which stays as it was.
        updated = problems_of(services.app.update_routing_rule, rule, rule_spec(mailbox, group, **changes))
        assert fields_and_codes(created) == expected, case
        assert fields_and_codes(updated) == expected, case

    assert services.projections.head() == head
    assert [r["id"] for r in services.directory.rules()] == [str(rule)]
    assert services.app.repository.get(rule).spec == rule_spec(mailbox, group)


def test_rule_on_a_deleted_mailbox_or_group_is_not_found(
    services: Services, mailbox_and_group: tuple[UUID, UUID],
) -> None:
    mailbox, group = mailbox_and_group
    done(services, services.app.delete_mailbox(mailbox))
    done(services, services.app.delete_agent_group(group))

    problems = problems_of(services.app.create_routing_rule, rule_spec(mailbox, group))

    assert fields_and_codes(problems) == {
        (("input", "mailboxIds", "0"), "NOT_FOUND"), (("input", "groupIds", "0"), "NOT_FOUND")}


# ----------------------------------------------------------------- accounts and contacts


def account_domains(services: Services, account_id: UUID) -> list[str]:
    rows = services.database.query(
        "SELECT domain FROM rm_account_domains WHERE account_id = ? ORDER BY domain", (str(account_id),))
    return [r["domain"] for r in rows]


def test_accounts_upsert_with_normalised_domains_and_existing_owner(services: Services) -> None:
    app = services.app
    owner = done(services, app.create_agent("Olga", "olga@example.com")).id

    account = done(services, app.upsert_account(None, "Acme", [" Acme.COM ", "acme.com", "ACME.io"])).id
    row = services.directory.account(account)
    assert row is not None
    assert (row["name"], json.loads(row["domains"]), row["owner_id"]) == (
        "Acme", ["acme.com", "acme.io"], None)
    assert account_domains(services, account) == ["acme.com", "acme.io"]

    again = done(services, app.upsert_account(account, "Acme Inc", ["acme.io", "Acme.DE"], owner_id=owner))
    assert again.id == account
    row = services.directory.account(account)
    assert row is not None
    assert (row["name"], json.loads(row["domains"]), row["owner_id"]) == (
        "Acme Inc", ["acme.io", "acme.de"], str(owner))
    assert account_domains(services, account) == ["acme.de", "acme.io"]
    assert len(services.directory.accounts()) == 1

    head = services.projections.head()
    assert fields_and_codes(problems_of(app.upsert_account, account, "Acme", ["acme.io"], owner_id=uuid4())) \
        == {(("input", "ownerId"), "NOT_FOUND")}
    assert fields_and_codes(problems_of(app.upsert_account, None, "Bad", ["not a domain"])) == {
        (("input", "domains", "0"), "INVALID")}
    assert fields_and_codes(problems_of(app.upsert_account, uuid4(), "Ghost", [])) == {
        (("input", "id"), "NOT_FOUND")}
    assert services.projections.head() == head
    assert services.directory.account(account)["owner_id"] == str(owner)  # type: ignore[index]

    done(services, app.upsert_account(account, "Acme Inc", ["acme.io", "acme.de"], owner_id=None))
    assert services.directory.account(account)["owner_id"] is None  # type: ignore[index]


def test_contacts_are_keyed_by_email_case_insensitively(services: Services) -> None:
    app = services.app
    owner = done(services, app.create_agent("Olga", "olga@example.com")).id
    account = done(services, app.upsert_account(None, "X", ["x.com"])).id

    first = done(services, app.upsert_contact("Bob@X.com", name="Bob")).id
    second = done(services, app.upsert_contact("bob@x.com", name="Robert", account_id=account,
                                               owner_id=owner)).id

    assert first == second
    row = services.directory.contact(first)
    assert row is not None
    assert (row["email"], row["name"], row["account_id"], row["owner_id"]) == (
        "bob@x.com", "Robert", str(account), str(owner))
    assert services.database.query("SELECT COUNT(*) AS n FROM rm_contacts")[0]["n"] == 1

    head = services.projections.head()
    assert fields_and_codes(problems_of(app.upsert_contact, "BOB@x.com", owner_id=uuid4())) == {
        (("input", "ownerId"), "NOT_FOUND")}
    assert fields_and_codes(problems_of(app.upsert_contact, "bob@x.com", account_id=uuid4())) == {
        (("input", "accountId"), "NOT_FOUND")}
    assert fields_and_codes(problems_of(app.upsert_contact, "not-an-email")) == {
        (("input", "email"), "INVALID")}
    assert services.projections.head() == head
    assert services.directory.contact(first)["owner_id"] == str(owner)  # type: ignore[index]

    # Fields not given are kept.
    done(services, app.upsert_contact("BOB@X.COM"))
    row = services.directory.contact(first)
    assert row is not None
    assert (row["name"], row["account_id"], row["owner_id"]) == ("Robert", str(account), str(owner))


# ----------------------------------------------------------------- secrets


def test_passwords_never_reach_the_event_log_or_the_audit_feed(make_services: Callable[..., Services]) -> None:
    services = make_services(Accepting(GOOD_PASSWORD, "second-secret-pw-42"))
    mailbox_id = bind(services, "help@example.com", outgoing=SMTP_OUT)
    done(services, services.app.update_mailbox(mailbox_id, password="second-secret-pw-42"))
    done(services, services.app.update_mailbox(mailbox_id, display_name="Help"))
    passwords = [GOOD_PASSWORD.encode(), b"second-secret-pw-42"]

    rows = services.database.query(f"SELECT * FROM {events_table(services)}")
    assert len(rows) >= 4  # claim taken + bound + password changed + settings changed
    stored = b"\n".join(
        value if isinstance(value, bytes) else bytes(value) if isinstance(value, memoryview)
        else str(value).encode()
        for row in rows for value in row.values())
    assert b"help@example.com" in stored  # the scan reads the events in the clear
    for password in passwords:
        assert password not in stored

    audit = page(services.app, services.database, 0, 1000)
    assert {e.type for e in audit} >= {"Bound", "PasswordChanged", "SettingsChanged"}
    feed = json.dumps([e.data for e in audit], default=str).encode()
    assert b"help@example.com" in feed
    for password in passwords:
        assert password not in feed

    sealed = b"".join(r["sealed"].encode() for r in services.database.query("SELECT sealed FROM mailroom_secrets"))
    for password in passwords:
        assert password not in sealed
    assert services.app.secrets.get(services.app.repository.get(mailbox_id).secret_ref) == "second-secret-pw-42"


# ----------------------------------------------------------------- restart


def directory_state(services: Services) -> dict[str, list[dict[str, Any]]]:
    d = services.directory
    return {"mailboxes": d.mailboxes(), "agents": d.agents(), "groups": d.groups(),
            "rules": d.rules(), "accounts": d.accounts()}


def test_everything_survives_a_restart(make_services: Callable[..., Services]) -> None:
    services = make_services()
    app = services.app
    mailbox = bind(services, "help@example.com")
    done(services, app.set_reply_settings(mailbox, "[{mailbox}] {subject}", "Thanks"))
    agent = done(services, app.create_agent("Alice", "alice@example.com", capacity=2)).id
    group = done(services, app.create_agent_group("Tier 1", [agent])).id
    rule = done(services, app.create_routing_rule(rule_spec(mailbox, group))).id
    account = done(services, app.upsert_account(None, "Acme", ["acme.com"], owner_id=agent)).id
    contact = done(services, app.upsert_contact("bob@acme.com", name="Bob", account_id=account)).id
    admin_value, _ = app.create_api_token("ops", Role.ADMIN, None)
    agent_value, agent_token = app.create_api_token("alice", Role.AGENT, agent)
    done(services, agent_token)
    before = directory_state(services)
    head = services.projections.head()
    services.close()

    restarted = make_services()

    assert restarted.projections.head() == head
    assert set(restarted.projections.positions().values()) == {head}
    assert directory_state(restarted) == before
    assert restarted.directory.contact(contact)["name"] == "Bob"  # type: ignore[index]
    assert member_emails(restarted, group) == ["alice@example.com"]
    stored = restarted.app.repository.get(mailbox)
    assert (stored.address, stored.subject_template, stored.footer) == (
        "help@example.com", "[{mailbox}] {subject}", "Thanks")
    assert restarted.app.secrets.get(stored.secret_ref) == GOOD_PASSWORD
    assert restarted.app.repository.get(rule).spec == rule_spec(mailbox, group)

    admin = restarted.app.authenticate(admin_value)
    assert admin is not None
    assert admin.role is Role.ADMIN
    alice = restarted.app.authenticate(agent_value)
    assert alice is not None
    assert (alice.role, alice.agent_id, alice.token_id) == (Role.AGENT, agent, agent_token.id)
    assert restarted.app.authenticate(agent_value + "x") is None

    # Uniqueness survives too, and new writes continue the same log.
    assert fields_and_codes(problems_of(
        restarted.app.bind_mailbox, "Help@example.com", GOOD_PASSWORD, incoming=IMAP_IN)) == {
        (("input", "address"), "DUPLICATE")}
    assert fields_and_codes(problems_of(restarted.app.create_agent, "A2", "ALICE@example.com")) == {
        (("input", "email"), "DUPLICATE")}
    done(restarted, restarted.app.set_agent_status(agent, AgentStatus.OFFLINE))
    assert restarted.directory.agent(agent)["status"] == "OFFLINE"  # type: ignore[index]
    assert restarted.projections.head() > head
