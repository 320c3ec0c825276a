"""Concurrent writers on one aggregate or one unique key (SQLite and PostgreSQL): one wins,
the other retries from the new state or is told CONFLICT/DUPLICATE; never a lost update,
never a duplicate, never an unexpected exception. Each thread uses its own Services, like
two API replicas over one database."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from uuid import UUID

import pytest

from api.bootstrap import Services
from domain.claims import Claim
from domain.commands.base import Written
from domain.commands.mailboxes import ADDRESS_CLAIM
from domain.commands.routing import RoutingCommands
from domain.errors import Rejected
from domain.routing import RuleSpec
from domain.values import AssignmentStrategy, ServerSettings, TransportSecurity
from projections.audit import page
from tests.conftest import GOOD_PASSWORD

IMAP_IN = ServerSettings("imap.example.com", 993, TransportSecurity.TLS, "")
ITERATIONS = 20


def run_together(*calls: Callable[[], Any]) -> list[Any]:
    """Runs the calls in threads released at the same moment; each result is the return
    value or the Rejected raised. Any other exception fails the test."""
    barrier = threading.Barrier(len(calls))

    def go(call: Callable[[], Any]) -> Any:
        barrier.wait(timeout=10)
        try:
            return call()
        except Rejected as rejected:
            return rejected

    with ThreadPoolExecutor(len(calls)) as pool:
        futures = [pool.submit(go, call) for call in calls]
        return [future.result(timeout=60) for future in futures]


def codes(rejected: Rejected) -> set[str]:
    return {p.code for p in rejected.problems}


def events_of(services: Services, aggregate_id: UUID, event_type: str) -> list[dict[str, Any]]:
    return [e.data for e in page(services.app, services.database, 0, 10_000, aggregate_id=aggregate_id)
            if e.type == event_type]


@pytest.fixture
def two(make_services: Callable[..., Services]) -> tuple[Services, Services]:
    return make_services(), make_services()


@pytest.fixture
def rule_setup(two: tuple[Services, Services]) -> tuple[UUID, Callable[[str], RuleSpec]]:
    services = two[0]
    written, _ = services.app.bind_mailbox("help@example.com", GOOD_PASSWORD, incoming=IMAP_IN)
    mailbox = written.id
    agent = services.app.create_agent("A", "a@example.com").id
    group = services.app.create_agent_group("Tier 1", [agent]).id

    def spec(name: str) -> RuleSpec:
        return RuleSpec(name, [mailbox], [group], AssignmentStrategy.ROUND_ROBIN, priority=len(name))

    rule = services.app.create_routing_rule(spec("initial")).id
    return rule, spec


# ----------------------------------------------------------------- one routing rule, two writers


def test_concurrent_rule_updates_lose_nothing(
    two: tuple[Services, Services], rule_setup: tuple[UUID, Callable[[str], RuleSpec]],
) -> None:
    rule, spec = rule_setup
    outcomes: list[tuple[str, Any]] = []
    lock = threading.Lock()

    def writer(services: Services, who: str) -> Callable[[], None]:
        def run() -> None:
            for i in range(ITERATIONS):
                name = f"{who}-{i}"
                try:
                    result: Any = services.app.update_routing_rule(rule, spec(name))
                except Rejected as rejected:
                    result = rejected
                with lock:
                    outcomes.append((name, result))
        return run

    run_together(writer(two[0], "left"), writer(two[1], "right"))

    won = [name for name, result in outcomes if isinstance(result, Written)]
    lost = [result for _, result in outcomes if isinstance(result, Rejected)]
    assert len(won) + len(lost) == 2 * ITERATIONS
    assert all(codes(r) == {"CONFLICT"} for r in lost)
    assert len(won) >= ITERATIONS  # retries make most calls succeed

    changed = [e["spec"]["name"] for e in events_of(two[0], rule, "Changed")]
    assert sorted(changed) == sorted(won)  # every success recorded, nothing else
    final = two[1].app.repository.get(rule)
    assert final.version == 1 + len(won)
    assert final.spec == spec(changed[-1])
    assert final.spec.name in won

    assert two[1].projections.wait_for(two[1].projections.head())
    row = two[1].directory.rule(rule)
    assert row is not None
    assert (row["name"], row["version"]) == (changed[-1], final.version)


def test_a_conflicting_rule_update_is_retried_on_top_of_the_other(
    two: tuple[Services, Services], rule_setup: tuple[UUID, Callable[[str], RuleSpec]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Deterministic interleaving: the other replica saves between this one's read and save."""
    rule, spec = rule_setup
    original = RoutingCommands._checked
    interleaved: list[Written] = []

    def checked_then_interleave(self: RoutingCommands, given: RuleSpec) -> RuleSpec:
        if self is two[0].app and not interleaved:
            interleaved.append(two[1].app.update_routing_rule(rule, spec("other")))
        return original(self, given)

    monkeypatch.setattr(RoutingCommands, "_checked", checked_then_interleave)

    written = two[0].app.update_routing_rule(rule, spec("mine"))

    assert len(interleaved) == 1
    assert interleaved[0].position is not None and written.position is not None
    assert written.position > interleaved[0].position
    assert [e["spec"]["name"] for e in events_of(two[0], rule, "Changed")] == ["other", "mine"]
    assert two[0].app.repository.get(rule).spec == spec("mine")


def test_a_stale_expected_version_loses(
    two: tuple[Services, Services], rule_setup: tuple[UUID, Callable[[str], RuleSpec]],
) -> None:
    rule, spec = rule_setup
    rounds = 8
    for n in range(rounds):
        version = two[0].app.repository.get(rule).version  # the one read both admins made
        results = run_together(
            lambda n=n, v=version: two[0].app.update_routing_rule(rule, spec(f"left-{n}"), expected_version=v),
            lambda n=n, v=version: two[1].app.update_routing_rule(rule, spec(f"right-{n}"), expected_version=v),
        )
        winners = [r for r in results if isinstance(r, Written)]
        losers = [r for r in results if isinstance(r, Rejected)]
        assert len(winners) == 1, results
        assert len(losers) == 1, results
        assert codes(losers[0]) == {"CONFLICT"}
        assert two[1].app.repository.get(rule).version == version + 1

    changed = events_of(two[0], rule, "Changed")
    assert len(changed) == rounds
    assert two[0].app.repository.get(rule).spec == spec(changed[-1]["spec"]["name"])


# ----------------------------------------------------------------- unique keys


def test_binding_one_address_twice_at_once_binds_it_once(two: tuple[Services, Services]) -> None:
    for n in range(4):
        results = run_together(
            lambda n=n: two[0].app.bind_mailbox(f"Help{n}@Example.com", GOOD_PASSWORD, incoming=IMAP_IN),
            lambda n=n: two[1].app.bind_mailbox(f"help{n}@example.COM", GOOD_PASSWORD, incoming=IMAP_IN),
        )
        winners = [r[0] for r in results if isinstance(r, tuple)]
        losers = [r for r in results if isinstance(r, Rejected)]
        assert len(winners) == 1, results
        assert len(losers) == 1, results
        assert {(p.field, p.code) for p in losers[0].problems} <= {
            (("input", "address"), "DUPLICATE"), (("input", "address"), "CONFLICT")}
        claim = two[0].app.repository.get(Claim.create_id(ADDRESS_CLAIM, f"help{n}@example.com"))
        assert claim.owner_id == winners[0].id
        assert len(events_of(two[0], claim.id, "Taken")) == 1

    assert two[1].projections.wait_for(two[1].projections.head())
    addresses = [r["address"] for r in two[1].directory.mailboxes()]
    assert sorted(addresses) == [f"help{n}@example.com" for n in range(4)]
    bound = [e for e in page(two[0].app, two[0].database, 0, 10_000) if e.type == "Bound"]
    assert len(bound) == 4


def test_creating_one_agent_email_twice_at_once_creates_one_agent(two: tuple[Services, Services]) -> None:
    created: set[UUID] = set()
    for n in range(4):
        results = run_together(
            lambda n=n: two[0].app.create_agent("Left", f"Agent{n}@example.com"),
            lambda n=n: two[1].app.create_agent("Right", f"agent{n}@EXAMPLE.com"),
        )
        winners = [r for r in results if isinstance(r, Written)]
        losers = [r for r in results if isinstance(r, Rejected)]
        assert len(winners) == 1, results
        assert len(losers) == 1, results
        assert codes(losers[0]) <= {"DUPLICATE", "CONFLICT"}
        created.add(winners[0].id)
        # The loser's agent was not saved half-way without its email claim.
        agents = {e.aggregate_id for e in page(two[0].app, two[0].database, 0, 10_000)
                  if e.aggregate_type == "Agent"}
        assert agents == created

    assert two[0].projections.wait_for(two[0].projections.head())
    assert sorted(r["email"] for r in two[0].directory.agents()) == [
        f"agent{n}@example.com" for n in range(4)]


def test_upserting_one_new_contact_twice_at_once_makes_one_contact(two: tuple[Services, Services]) -> None:
    for n in range(4):
        results = run_together(
            lambda n=n: two[0].app.upsert_contact(f"New{n}@X.com", name="Left"),
            lambda n=n: two[1].app.upsert_contact(f"new{n}@x.com", name="Right"),
        )
        assert all(isinstance(r, Written) for r in results), results
        assert results[0].id == results[1].id
        contact = two[0].app.repository.get(results[0].id)
        assert contact.email == f"new{n}@x.com"
        assert contact.name in ("Left", "Right")
        assert len(events_of(two[0], contact.id, "Created")) == 1

    assert two[1].projections.wait_for(two[1].projections.head())
    rows = two[1].database.query("SELECT email, name FROM rm_contacts ORDER BY email")
    assert [r["email"] for r in rows] == [f"new{n}@x.com" for n in range(4)]
    assert all(r["name"] in ("Left", "Right") for r in rows)
