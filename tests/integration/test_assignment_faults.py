"""Assignment when it gets hard, on both backends, with mail from the real Dovecot: two worker
processes deciding over one log, an assigner killed with SIGKILL in the middle of a batch, the
hand-made changes (assign, close, reopen, a customer's reply into a closed conversation), and
the owner strategies end to end. Each time: every conversation decided once, the assigner's
figures equal the read models, replaying the log re-derives every recorded decision, and
`mailroom projections verify` finds no difference."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from uuid import UUID

import pytest

from adapters.settings import load_settings
from api.bootstrap import Services, real_login
from domain.routing import RuleSpec
from domain.values import AgentStatus, AssignmentStrategy, Condition, ConditionField, ConditionOperator
from tests.dovecot import Dovecot
from tests.integration.assign_support import (
    assert_figures_consistent,
    assert_replay_matches,
    assigned_events,
    conversations,
    last_assignment,
    open_counts,
    settle,
    sync,
    sync_and_decide,
    team,
    wait_until,
    where,
)
from tests.integration.faults_support import append_many, bind_at, count_topic, new_user, verify_views
from tests.integration.intake_support import mail

ROOT = Path(__file__).resolve().parents[2]
ASSIGNED = "mailroom:Conversation.Assigned"
LB, RR = AssignmentStrategy.LOAD_BALANCED, AssignmentStrategy.ROUND_ROBIN


@pytest.fixture
def services(make_services: Callable[..., Services]) -> Services:
    return make_services(verify_login=real_login(load_settings()))


def assert_views_clean(services: Services) -> None:
    """`mailroom projections verify`: every view equals a rebuild from the log."""
    assert verify_views(services) == {name: [] for name in services.projections.views}


@contextmanager
def processes(commands: list[list[str]], tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Starts the commands (same MAILROOM_* environment, output to files); always ends them."""
    started: list[subprocess.Popen[bytes]] = []
    try:
        for i, command in enumerate(commands):
            with open(tmp_path / f"process-{i}.log", "wb") as out:
                started.append(subprocess.Popen(command, cwd=ROOT, env=os.environ.copy(), stdout=out,
                                                stderr=subprocess.STDOUT))
        yield started
    finally:
        for process in started:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=30)


def output(tmp_path: Path, i: int) -> str:
    return (tmp_path / f"process-{i}.log").read_text(errors="replace")[-3000:]


# ----------------------------------------------------------------- 1. two worker processes


def test_two_workers_spread_forty_arrivals_over_four_agents_each_assigned_once(
    services: Services, dovecot: Dovecot, tmp_path: Path
) -> None:
    user = new_user(dovecot)
    append_many(dovecot, user, [mail(subject=f"Question {i}", sender=f"c{i}@customer.example") for i in range(40)])
    mailbox_id = bind_at(services, dovecot, user)
    agents, group = team(services, ["ann", "bob", "cid", "dee"])
    services.app.create_routing_rule(RuleSpec(name="All", mailbox_ids=[mailbox_id], group_ids=[group],
                                              strategy=LB))

    # Two `mailroom worker` processes: each runs projections, the assigner and the mailbox
    # scheduler; one of the schedulers takes the 40 mails in, in one sync.
    worker = [sys.executable, "-m", "api.cli", "worker"]
    with processes([worker, worker], tmp_path) as workers:

        def all_decided() -> bool:
            assert all(w.poll() is None for w in workers), output(tmp_path, 0) + output(tmp_path, 1)
            services.projections.catch_up()
            rows = conversations(services).values()
            return len(rows) == 40 and all(r["status"] == "OPEN" for r in rows)

        assert wait_until(all_decided, 40), where(services)
        # Past the head, its own decisions included: a second decision would need a new event.
        assert wait_until(lambda: services.assigner.consumer.stored_position() >= services.projections.head(), 10)
        for w in workers:
            w.send_signal(signal.SIGINT)
        for w in workers:
            w.wait(timeout=20)

    services.projections.catch_up()
    counts = open_counts(services)
    assert sorted(counts.values()) == [10, 10, 10, 10], counts
    assert set(counts) == {str(a) for a in agents.values()}
    per_conversation = assigned_events(services)
    assert len(per_conversation) == 40 and set(per_conversation.values()) == {1}, per_conversation
    assert_views_clean(services)
    assert_replay_matches(services)
    assert_figures_consistent(services)


# ----------------------------------------------------------------- 2. kill -9 in the middle of a batch


def test_an_assigner_killed_midway_resumes_without_deciding_twice_or_leaving_any_behind(
    services: Services, make_services: Callable[..., Services], dovecot: Dovecot, tmp_path: Path
) -> None:
    user = new_user(dovecot)
    mailbox_id = bind_at(services, dovecot, user)
    _, group = team(services, ["ann", "bob", "cid", "dee"], capacity=9)
    services.app.create_routing_rule(RuleSpec(name="All", mailbox_ids=[mailbox_id], group_ids=[group],
                                              strategy=LB))
    append_many(dovecot, user, [mail(subject=f"Q{i:02d}", sender=f"c{i}@customer.example") for i in range(40)])
    sync(services, mailbox_id)  # taken in; nobody has decided yet (no assigner runs here)

    # The assigner in a process of its own, 4 events a batch, pausing after each saved batch of
    # decisions: killed with SIGKILL once some, not all, are recorded.
    command = [sys.executable, "-m", "tests.integration.assign_worker", "4", "0.15"]
    with processes([command], tmp_path) as [assigner]:
        assert wait_until(lambda: count_topic(services, ASSIGNED) >= 12 or assigner.poll() is not None, 40)
        assert assigner.poll() is None, output(tmp_path, 0)
        assigner.send_signal(signal.SIGKILL)
        assigner.wait(timeout=30)  # reaped: its SQLite lease names a pid that is gone
    assert assigner.returncode == -signal.SIGKILL
    recorded = count_topic(services, ASSIGNED)
    assert 12 <= recorded < 36, recorded  # 36 = 4 agents x capacity 9

    # Restart: new services over the same database; the assigner rebuilds and carries on.
    restarted = make_services(verify_login=real_login(load_settings()))
    restarted.assigner.catch_up()
    settle(restarted, restarted.projections.head())
    state = where(restarted)
    assert len(state) == 40
    assert sorted(s for s, _ in state.values()).count("OPEN") == 36
    queued = sorted(subject for subject, (status, _) in state.items() if status == "QUEUED")
    assert queued == [f"Q{i:02d}" for i in range(36, 40)]  # the newest wait, in arrival order
    assert sorted(open_counts(restarted).values()) == [9, 9, 9, 9]
    assert set(assigned_events(restarted).values()) == {1}
    assert_figures_consistent(restarted)

    # The rebuilt queue drains oldest first as agents get room.
    rows = conversations(restarted)
    for subject in ("Q00", "Q01", "Q02", "Q03"):  # frees one place for each agent
        restarted.app.close_conversation(UUID(rows[subject]["id"]))
    settle(restarted, restarted.projections.head())
    state = where(restarted)
    assert all(state[f"Q{i:02d}"][0] == "OPEN" for i in range(36, 40)), state
    assert Counter(status for status, _ in state.values()) == {"OPEN": 36, "CLOSED": 4}  # none left behind
    assert sorted(open_counts(restarted).values()) == [9, 9, 9, 9]
    per_conversation = assigned_events(restarted)
    assert len(per_conversation) == 40 and set(per_conversation.values()) == {1}, per_conversation
    assert_figures_consistent(restarted)
    assert_replay_matches(restarted)
    assert_views_clean(restarted)


# ----------------------------------------------------------------- 3. by hand: assign, close, reopen, reply


def test_assign_close_reopen_by_hand_and_a_reply_into_a_closed_conversation(
    services: Services, dovecot: Dovecot
) -> None:
    user = new_user(dovecot)
    mailbox_id = bind_at(services, dovecot, user)
    agents, group = team(services, ["ann", "bob"], capacity=1)
    ann, bob = str(agents["ann"]), str(agents["bob"])
    services.app.create_routing_rule(RuleSpec(name="All", mailbox_ids=[mailbox_id], group_ids=[group],
                                              strategy=LB))
    ids = {f"Q{i}": f"<q{i}.{user}@customer.example>" for i in range(5)}
    append_many(dovecot, user, [mail(subject=s, sender=f"{s.lower()}@customer.example", message_id=m)
                                for s, m in ids.items()])
    sync_and_decide(services, mailbox_id)
    assert where(services) == {"Q0": ("OPEN", ann), "Q1": ("OPEN", bob), "Q2": ("QUEUED", None),
                               "Q3": ("QUEUED", None), "Q4": ("QUEUED", None)}
    rows = conversations(services)
    cid = {s: UUID(r["id"]) for s, r in rows.items()}

    def do(written: object) -> None:
        settle(services, written.position)  # type: ignore[attr-defined]
        assert_figures_consistent(services)

    # By hand, Q1 moves from bob to ann: the counts move, and bob's freed place takes the oldest queued.
    do(services.app.assign_conversation(cid["Q1"], agents["ann"]))
    assert open_counts(services) == {ann: 2, bob: 1}
    assert where(services)["Q1"] == ("OPEN", ann)
    assert last_assignment(services, str(cid["Q1"]))["decided_by"] == "admin"
    assert where(services)["Q2"] == ("OPEN", bob)
    assert [where(services)[s][0] for s in ("Q3", "Q4")] == ["QUEUED", "QUEUED"]

    # Closing frees capacity: the oldest queued conversation (Q3, not Q4) is assigned.
    do(services.app.close_conversation(cid["Q2"]))
    assert where(services)["Q2"] == ("CLOSED", None)
    assert where(services)["Q3"] == ("OPEN", bob)
    assert where(services)["Q4"] == ("QUEUED", None)
    assert open_counts(services) == {ann: 2, bob: 1}

    # bob's limit goes: Q4 is his; then ann's goes too.
    do(services.app.update_agent(agents["bob"], capacity=None))
    assert where(services)["Q4"] == ("OPEN", bob)
    do(services.app.update_agent(agents["ann"], capacity=None))
    assert open_counts(services) == {ann: 2, bob: 2}
    assert_figures_consistent(services)

    # Reopened while its previous assignee is eligible: back to them.
    do(services.app.close_conversation(cid["Q0"]))
    do(services.app.reopen_conversation(cid["Q0"]))
    assert where(services)["Q0"] == ("OPEN", ann)
    assert last_assignment(services, str(cid["Q0"]))["reason"].startswith("reopened: back to previous assignee")

    # Reopened while its previous assignee is AWAY: routed again, to someone eligible.
    do(services.app.close_conversation(cid["Q1"]))
    do(services.app.set_agent_status(agents["ann"], AgentStatus.AWAY))
    do(services.app.reopen_conversation(cid["Q1"]))
    assert where(services)["Q1"] == ("OPEN", bob)
    assert last_assignment(services, str(cid["Q1"]))["strategy"] == LB.value
    do(services.app.set_agent_status(agents["ann"], AgentStatus.ONLINE))

    # Reopened after its previous assignee left the rule's groups: not eligible, routed again.
    do(services.app.close_conversation(cid["Q0"]))
    do(services.app.remove_group_members(group, [agents["ann"]]))
    do(services.app.reopen_conversation(cid["Q0"]))
    assert where(services)["Q0"] == ("OPEN", bob)
    do(services.app.add_group_members(group, [agents["ann"]]))

    # The customer answers into a closed conversation: it reopens, back to its previous assignee.
    do(services.app.close_conversation(cid["Q3"]))
    assert where(services)["Q3"] == ("CLOSED", None)
    append_many(dovecot, user, [mail(subject="Re: Q3", sender="q3@customer.example", in_reply_to=ids["Q3"])])
    report = sync_and_decide(services, mailbox_id)
    assert (report.fetched, report.opened) == (1, 0)
    assert where(services)["Q3"] == ("OPEN", bob)
    assert conversations(services)["Q3"]["message_count"] == 2
    assert_figures_consistent(services)
    assert_replay_matches(services)
    assert_views_clean(services)


def test_a_queued_or_unrouted_conversation_assigned_by_hand_stays_with_that_agent(
    services: Services, dovecot: Dovecot
) -> None:
    user = new_user(dovecot)
    mailbox_id = bind_at(services, dovecot, user)
    agents, group = team(services, ["ann", "bob"])
    ann, bob = str(agents["ann"]), str(agents["bob"])
    services.app.set_agent_status(agents["ann"], AgentStatus.AWAY)
    services.app.set_agent_status(agents["bob"], AgentStatus.AWAY)
    services.app.create_routing_rule(RuleSpec(
        name="Billing", mailbox_ids=[mailbox_id], group_ids=[group], strategy=RR,
        conditions=[Condition(ConditionField.SUBJECT, ConditionOperator.CONTAINS, "invoice")]))
    append_many(dovecot, user, [mail(subject="Invoice 1"), mail(subject="Hello")])
    sync_and_decide(services, mailbox_id)
    assert where(services) == {"Invoice 1": ("QUEUED", None), "Hello": ("UNROUTED", None)}
    cid = {s: UUID(r["id"]) for s, r in conversations(services).items()}
    services.app.assign_conversation(cid["Invoice 1"], agents["ann"])
    services.app.assign_conversation(cid["Hello"], agents["ann"], override=True)  # unrouted: no groups
    # An agent becomes eligible and a covering rule appears: neither conversation is taken from ann.
    services.app.set_agent_status(agents["bob"], AgentStatus.ONLINE)
    written = services.app.create_routing_rule(RuleSpec(name="Rest", mailbox_ids=[mailbox_id],
                                                        group_ids=[group], strategy=RR, priority=200))
    settle(services, written.position)
    assert where(services) == {"Invoice 1": ("OPEN", ann), "Hello": ("OPEN", ann)}
    assert open_counts(services) == {ann: 2}
    assert bob not in open_counts(services)
    assert_figures_consistent(services)
    assert_replay_matches(services)
    assert_views_clean(services)


# ----------------------------------------------------------------- 4. owner strategies end to end


def test_owner_strategies_owner_then_last_handler_then_fallback(services: Services, dovecot: Dovecot) -> None:
    user = new_user(dovecot)
    mailbox_id = bind_at(services, dovecot, user)
    agents, group = team(services, ["ann", "bob", "cid"])
    ann, bob, cid = (str(agents[n]) for n in ("ann", "bob", "cid"))
    outsider = services.app.create_agent("out", "out@support.example").id
    app = services.app
    acme = app.upsert_account(None, "Acme", ["acme.example"], agents["bob"]).id
    beta = app.upsert_account(None, "Beta", ["beta.example"], agents["cid"]).id
    app.upsert_contact("gina@customer.example", "Gina", owner_id=agents["cid"])
    app.upsert_contact("hal@customer.example", "Hal", owner_id=outsider)
    app.upsert_contact("jo@acme.example", "Jo", account_id=beta)  # the contact's account beats the domain
    app.create_routing_rule(RuleSpec(
        name="Accounts", mailbox_ids=[mailbox_id], group_ids=[group], priority=10,
        strategy=AssignmentStrategy.ACCOUNT_OWNER, fallback_strategy=RR,
        conditions=[Condition(ConditionField.FROM_DOMAIN, ConditionOperator.NOT_EQUALS, "customer.example")]))
    app.create_routing_rule(RuleSpec(name="Contacts", mailbox_ids=[mailbox_id], group_ids=[group], priority=20,
                                     strategy=AssignmentStrategy.CONTACT_OWNER, fallback_strategy=RR))
    assert acme

    def arrive(subject: str, sender: str) -> tuple[str, str, str]:
        append_many(dovecot, user, [mail(subject=subject, sender=sender)])
        sync_and_decide(services, mailbox_id)
        row = conversations(services)[subject]
        assert row["status"] == "OPEN", row
        decision = last_assignment(services, row["id"])
        return row["assignee_id"], decision["strategy"], decision["reason"]

    # Owner AWAY and no history: neither owner nor last handler -> the fallback (no cursor: ann).
    app.set_agent_status(agents["cid"], AgentStatus.AWAY)
    agent, strategy, reason = arrive("Gina 1", "gina@customer.example")
    assert (agent, strategy) == (ann, RR.value)
    assert "owner cid not eligible (AWAY); no last handler" in reason
    # Owner still AWAY: the last handler of her previous conversation (ann), not the fallback (bob).
    agent, strategy, reason = arrive("Gina 2", "gina@customer.example")
    assert (agent, strategy) == (ann, "CONTACT_OWNER")
    assert "last handler ann eligible" in reason
    # Owner and last handler both AWAY: the fallback again (round robin after ann: bob).
    app.set_agent_status(agents["ann"], AgentStatus.AWAY)
    agent, strategy, reason = arrive("Gina 3", "gina@customer.example")
    assert (agent, strategy) == (bob, RR.value)
    assert "last handler ann not eligible (AWAY)" in reason
    app.set_agent_status(agents["ann"], AgentStatus.ONLINE)
    # Owner back ONLINE, in the group: the owner.
    app.set_agent_status(agents["cid"], AgentStatus.ONLINE)
    agent, strategy, reason = arrive("Gina 4", "gina@customer.example")
    assert (agent, strategy) == (cid, "CONTACT_OWNER")
    assert "owner cid eligible" in reason
    # An owner outside the rule's groups is not eligible.
    agent, strategy, reason = arrive("Hal 1", "Hal@Customer.Example")
    assert strategy == RR.value and agent in {ann, bob, cid}
    assert "not a member of the rule's groups" in reason

    # ACCOUNT_OWNER: the account whose domains contain the customer's domain.
    agent, strategy, reason = arrive("Ivy 1", "ivy@ACME.example")
    assert (agent, strategy) == (bob, "ACCOUNT_OWNER")
    # ... but the contact's own account first.
    agent, strategy, _ = arrive("Jo 1", "jo@acme.example")
    assert (agent, strategy) == (cid, "ACCOUNT_OWNER")
    # No account at all: the fallback.
    agent, strategy, reason = arrive("Kim 1", "kim@nowhere.example")
    assert strategy == RR.value and "no owner" in reason

    assert set(assigned_events(services).values()) == {1}
    assert_figures_consistent(services)
    assert_replay_matches(services)
    assert_views_clean(services)


# ----------------------------------------------------------------- 6. chaos: kill -9 at random, mail arriving


def test_two_workers_killed_at_random_while_mail_arrives_assign_each_conversation_once(
    services: Services, dovecot: Dovecot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rounds of: mail arrives, two `mailroom worker`s run, one or both are killed with SIGKILL
    at a random moment (a former leader may come back warm in the next round). In the end one
    clean worker finishes: every conversation assigned exactly once, daily totals = conversations."""
    import random

    monkeypatch.setenv("MAILROOM_POLL_SECONDS", "0.5")
    chance = random.Random(7)
    user = new_user(dovecot)
    mailbox_id = bind_at(services, dovecot, user)
    _, group = team(services, ["ann", "bob", "cid", "dee"])
    services.app.create_routing_rule(RuleSpec(name="All", mailbox_ids=[mailbox_id], group_ids=[group],
                                              strategy=LB))
    worker = [sys.executable, "-m", "api.cli", "worker"]
    sent = 0
    for round_ in range(6):
        batch = [mail(subject=f"R{round_}-{i}", sender=f"r{round_}x{i}@customer.example") for i in range(6)]
        with processes([worker, worker], tmp_path) as workers:
            for raw in batch:
                dovecot.append(user, raw)
                sent += 1
                time.sleep(chance.uniform(0.0, 0.25))
            time.sleep(chance.uniform(0.2, 1.5))
            victims = workers if chance.random() < 0.5 else [chance.choice(workers)]
            for victim in victims:
                victim.send_signal(signal.SIGKILL)
            for victim in victims:
                victim.wait(timeout=30)
    with processes([worker], tmp_path) as [last]:
        def all_open() -> bool:
            assert last.poll() is None, output(tmp_path, 0)
            services.projections.catch_up()
            rows = conversations(services).values()
            return len(rows) == sent and all(r["status"] == "OPEN" for r in rows)

        assert wait_until(all_open, 60), where(services)
        assert wait_until(lambda: services.assigner.consumer.stored_position() >= services.projections.head(), 20)
        last.send_signal(signal.SIGINT)
        last.wait(timeout=20)

    services.projections.catch_up()
    per_conversation = assigned_events(services)
    assert len(per_conversation) == sent and set(per_conversation.values()) == {1}, per_conversation
    received = services.database.query("SELECT SUM(received) AS n FROM rm_daily_totals")[0]["n"]
    assert int(received) == sent
    assert sum(open_counts(services).values()) == sent
    assert_views_clean(services)
    assert_replay_matches(services)
