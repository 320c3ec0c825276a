"""The one log follower, on both backends: a hand-over between two warm processes decides
nothing twice, a stale process cannot record anything, a failing batch is retried with
backoff and leaves no half-applied state, and one failing view does not hold up the others."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from adapters.settings import load_settings
from api.bootstrap import Services, real_login
from domain.routing import RuleSpec
from domain.values import AssignmentStrategy
from tests.dovecot import Dovecot
from tests.integration.assign_support import (
    assert_figures_consistent,
    assert_replay_matches,
    assigned_events,
    conversations,
    open_counts,
    settle,
    sync,
    team,
)
from tests.integration.faults_support import append_many, bind_at, count_topic, new_user, verify_views
from tests.integration.intake_support import mail

ASSIGNED = "mailroom:Conversation.Assigned"


@pytest.fixture
def two(make_services: Callable[..., Services]) -> tuple[Services, Services]:
    """Two processes' services over one database (each with its own in-memory assigner)."""
    login = real_login(load_settings())
    return make_services(verify_login=login), make_services(verify_login=login)


@pytest.fixture
def services(make_services: Callable[..., Services]) -> Services:
    return make_services(verify_login=real_login(load_settings()))


def daily_received(services: Services) -> int:
    rows = services.database.query("SELECT SUM(received) AS n FROM rm_daily_totals")
    return int(rows[0]["n"] or 0)


def arrive(services: Services, dovecot: Dovecot, user: str, mailbox_id: Any, subjects: list[str]) -> None:
    append_many(dovecot, user, [mail(subject=s, sender=f"{s.lower()}@customer.example") for s in subjects])
    sync(services, mailbox_id)  # taken in; nobody decided yet


def test_a_warm_former_leader_taking_the_lead_back_decides_nothing_twice(
    two: tuple[Services, Services], dovecot: Dovecot
) -> None:
    a, b = two
    user = new_user(dovecot)
    mailbox_id = bind_at(a, dovecot, user)
    _, group = team(a, ["ann", "bob", "cid", "dee"])
    a.app.create_routing_rule(RuleSpec(name="All", mailbox_ids=[mailbox_id], group_ids=[group],
                                       strategy=AssignmentStrategy.LOAD_BALANCED))

    arrive(a, dovecot, user, mailbox_id, ["Q1", "Q2"])
    assert b.assigner.catch_up() > 0  # B leads and decides 2
    assert count_topic(b, ASSIGNED) == 2
    arrive(a, dovecot, user, mailbox_id, ["Q3", "Q4", "Q5"])
    assert a.assigner.catch_up() > 0  # A takes the lead and decides 3 (then "dies": never runs again)
    assert count_topic(a, ASSIGNED) == 5
    b.assigner.catch_up()  # B takes the lead back, warm, with a state as of 2 conversations
    settle(b, b.projections.head())

    per_conversation = assigned_events(b)
    assert len(per_conversation) == 5 and set(per_conversation.values()) == {1}, per_conversation
    assert daily_received(b) == 5
    assert sorted(open_counts(b).values()) == [1, 1, 1, 2]
    assert_figures_consistent(b)
    assert_replay_matches(b)


def test_a_process_whose_position_moved_cannot_record_its_decisions(
    two: tuple[Services, Services], dovecot: Dovecot
) -> None:
    a, b = two
    user = new_user(dovecot)
    mailbox_id = bind_at(a, dovecot, user)
    _, group = team(a, ["ann", "bob"])
    a.app.create_routing_rule(RuleSpec(name="All", mailbox_ids=[mailbox_id], group_ids=[group],
                                       strategy=AssignmentStrategy.ROUND_ROBIN))
    arrive(a, dovecot, user, mailbox_id, ["Q1", "Q2", "Q3"])
    stale: Any = b.assigner.consumer
    position = stale.stored_position()
    batch = b.projections.read(position, 1000)
    stale.bring_to(position)  # warm, as of `position`
    a.assigner.catch_up()  # meanwhile another process decides the same triggers
    assert count_topic(a, ASSIGNED) == 3

    # The stale process decides on its old base: the commit of decisions + position fails whole.
    assert stale.consume(position, batch) is False
    assert count_topic(a, ASSIGNED) == 3
    assert stale.assigner is None  # it folded past the stored position: rebuilt before its next batch
    b.assigner.catch_up()
    assert set(assigned_events(b).values()) == {1}
    assert_figures_consistent(b)


def test_a_failing_batch_is_retried_with_backoff_and_decided_once(
    services: Services, dovecot: Dovecot, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = new_user(dovecot)
    mailbox_id = bind_at(services, dovecot, user)
    _, group = team(services, ["ann", "bob"])
    services.app.create_routing_rule(RuleSpec(name="All", mailbox_ids=[mailbox_id], group_ids=[group],
                                              strategy=AssignmentStrategy.LOAD_BALANCED))
    arrive(services, dovecot, user, mailbox_id, ["Q1", "Q2", "Q3", "Q4"])
    record = services.app.record_decisions
    failures = iter([RuntimeError("database went away"), RuntimeError("still away")])

    def flaky(outcomes: Any, **options: Any) -> Any:
        failure = next(failures, None)
        if failure is not None:
            raise failure
        return record(outcomes, **options)

    monkeypatch.setattr(services.app, "record_decisions", flaky)
    follower = services.assigner
    assert follower.attempt() == 0
    first = follower.describe()
    assert first["failures"] == 1 and "database went away" in first["lastError"] and not first["ready"]
    assert follower.attempt() == 0  # backing off: not retried at once (no hot loop)
    assert follower.health.failures == 1
    follower.health.retry_at = 0.0
    follower.attempt()
    assert follower.health.failures == 2
    follower.health.retry_at = 0.0
    assert follower.attempt() > 0
    assert follower.describe()["failures"] == 0 and follower.describe()["ready"]
    settle(services, services.projections.head())
    assert set(assigned_events(services).values()) == {1} and len(assigned_events(services)) == 4
    assert daily_received(services) == 4
    assert_figures_consistent(services)


def test_a_view_that_keeps_failing_does_not_hold_up_the_others(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = services.projections.views["directory"]
    apply = directory.apply

    def poisoned(event: Any, rows: Any) -> None:
        if type(event).__name__ == "Created" and getattr(event, "name", "") == "Poison":
            raise ValueError("cannot apply this event")
        apply(event, rows)

    monkeypatch.setattr(directory, "apply", poisoned)
    services.app.create_agent("Ann", "ann@example.com", None)
    poison = services.app.create_agent("Poison", "poison@example.com", None)
    after = services.app.create_agent("Bob", "bob@example.com", None)
    followers = services.projections.followers
    for follower in followers.values():
        follower.attempt()
    positions = services.projections.positions()
    assert positions["conversations"] == positions["workload"] == after.position
    assert positions["directory"] < poison.position
    health = followers["directory"].describe()
    assert health["failures"] == 1 and "cannot apply this event" in health["lastError"]
    assert not services.projections.reached(after.position, ("directory",), timeout=0.2)
    assert services.projections.reached(after.position, ("conversations", "workload"), timeout=0.2)

    monkeypatch.setattr(directory, "apply", apply)  # fixed (a new release): it catches up
    followers["directory"].health.retry_at = 0.0
    followers["directory"].attempt()
    assert services.projections.positions()["directory"] == after.position
    assert followers["directory"].describe()["failures"] == 0
    assert verify_views(services) == {name: [] for name in services.projections.views}


def test_conversation_rows_match_after_handover(two: tuple[Services, Services], dovecot: Dovecot) -> None:
    """Views driven alternately by two processes apply each event once."""
    a, b = two
    user = new_user(dovecot)
    mailbox_id = bind_at(a, dovecot, user)
    for i in range(3):
        arrive(a, dovecot, user, mailbox_id, [f"R{i}a", f"R{i}b"])
        (a if i % 2 else b).projections.catch_up()
    a.projections.catch_up()
    assert len(conversations(b)) == 6
    assert verify_views(b) == {name: [] for name in b.projections.views}


def test_a_restart_starts_from_the_snapshot_and_ends_where_a_full_replay_does(
    services: Services, make_services: Callable[..., Services], dovecot: Dovecot
) -> None:
    user = new_user(dovecot)
    mailbox_id = bind_at(services, dovecot, user)
    _, group = team(services, ["ann", "bob", "cid"], capacity=3)
    services.app.create_routing_rule(RuleSpec(name="All", mailbox_ids=[mailbox_id], group_ids=[group],
                                              strategy=AssignmentStrategy.ROUND_ROBIN))
    process: Any = services.assigner.consumer
    process.snapshot_every, process.batch_size = 5, 4
    arrive(services, dovecot, user, mailbox_id, [f"S{i}" for i in range(8)])
    services.assigner.catch_up()
    snapshot = services.snapshots.load("assigner", services.projections.head())
    assert snapshot is not None and snapshot.position > 0
    arrive(services, dovecot, user, mailbox_id, [f"T{i}" for i in range(4)])  # after the snapshot
    services.assigner.catch_up()
    stored = process.stored_position()
    assert stored > snapshot.position

    restarted: Any = make_services(verify_login=real_login(load_settings())).assigner.consumer
    read: list[int] = []
    select = restarted.app.recorder.select_notifications

    def counting(start: int, limit: int, *args: Any, **kwargs: Any) -> Any:
        read.append(start)
        return select(start, limit, *args, **kwargs)

    restarted.app.recorder.select_notifications = counting
    from_snapshot = restarted.current()
    assert min(read) > snapshot.position  # nothing before the snapshot was read again
    services.snapshots.forget("assigner")
    full = make_services(verify_login=real_login(load_settings())).assigner.consumer.current()
    assert from_snapshot.snapshot() == full.snapshot() == process.current().snapshot()


def test_a_conflict_while_recording_reloads_the_conversation_not_the_log(
    two: tuple[Services, Services], dovecot: Dovecot, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = two
    user = new_user(dovecot)
    mailbox_id = bind_at(a, dovecot, user)
    _, group = team(a, ["ann", "bob"])
    a.app.create_routing_rule(RuleSpec(name="All", mailbox_ids=[mailbox_id], group_ids=[group],
                                       strategy=AssignmentStrategy.LOAD_BALANCED))
    arrive(a, dovecot, user, mailbox_id, ["Q1"])
    a.assigner.catch_up()
    process: Any = a.assigner.consumer
    state = process.assigner
    arrive(a, dovecot, user, mailbox_id, ["Q2"])
    decided = a.app._decided
    raced: list[bool] = []

    def someone_else_writes_first(outcomes: Any) -> Any:
        loaded = decided(outcomes)
        if not raced:  # between loading and saving, an agent closes a conversation being decided on
            raced.append(True)
            b.app.close_conversation(loaded[0].id)
        return loaded

    monkeypatch.setattr(a.app, "_decided", someone_else_writes_first)
    replays: list[int] = []
    replay = process._replay
    monkeypatch.setattr(process, "_replay", lambda *args: (replays.append(1), replay(*args))[1])
    assert a.assigner.catch_up() > 0
    assert raced and process.assigner is state and replays == []  # same state: no rebuild, no replay
    assert set(assigned_events(a).values()) == {1} and len(assigned_events(a)) == 2
