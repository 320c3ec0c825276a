"""Routing and assignment over the log, on both backends, with mail from the real Dovecot."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest

from adapters.settings import load_settings
from api.bootstrap import Services, real_login
from api.processes.sync import MailboxSync
from domain.routing import RuleSpec
from domain.values import AgentStatus, AssignmentStrategy, Condition, ConditionField, ConditionOperator
from tests.dovecot import Dovecot
from tests.integration.assign_support import replay
from tests.integration.faults_support import append_many
from tests.integration.intake_support import bind, mail


@pytest.fixture
def services(make_services: Callable[..., Services]) -> Services:
    return make_services(verify_login=real_login(load_settings()))


def team(services: Services, names: list[str], capacity: int | None = None) -> tuple[list, object]:
    agents = [services.app.create_agent(n, f"{n}@support.example", capacity).id for n in names]
    group = services.app.create_agent_group("Team", agents)
    return agents, group.id


def sync_and_decide(services: Services, mailbox_id: object) -> None:
    report = MailboxSync.of(services).sync(mailbox_id)  # type: ignore[arg-type]
    assert report.error is None
    assert services.assigner.wait_for(report.position)
    services.projections.wait_for(services.projections.head())


def subject_status(services: Services) -> dict[str, str]:
    return {r["subject"]: r["status"] for r in services.database.query("SELECT subject, status FROM rm_conversations")}


def assignees(services: Services) -> Counter[str]:
    rows = services.database.query("SELECT assignee_id, status FROM rm_conversations")
    return Counter(str(r["assignee_id"]) for r in rows if r["status"] == "OPEN")


def test_forty_arrivals_spread_evenly_over_four_idle_agents(services: Services, dovecot: Dovecot) -> None:
    mailbox_id, user = bind(services, dovecot)
    agents, group = team(services, ["ann", "bob", "cid", "dee"])
    services.app.create_routing_rule(RuleSpec(name="All", mailbox_ids=[mailbox_id], group_ids=[group],
                                              strategy=AssignmentStrategy.LOAD_BALANCED))
    append_many(dovecot, user, [mail(subject=f"Question {i}") for i in range(40)])
    sync_and_decide(services, mailbox_id)
    assert sorted(assignees(services).values()) == [10, 10, 10, 10]
    assert set(assignees(services)) == {str(a) for a in agents}


def test_no_rule_leaves_unrouted_until_a_covering_rule_appears(services: Services, dovecot: Dovecot) -> None:
    mailbox_id, user = bind(services, dovecot)
    agents, group = team(services, ["ann"])
    dovecot.append(user, mail(subject="Anyone?"))
    sync_and_decide(services, mailbox_id)
    [row] = services.database.query("SELECT status FROM rm_conversations")
    assert row["status"] == "UNROUTED"
    written = services.app.create_routing_rule(RuleSpec(name="All", mailbox_ids=[mailbox_id], group_ids=[group],
                                                        strategy=AssignmentStrategy.ROUND_ROBIN))
    assert services.assigner.wait_for(written.position)
    services.projections.wait_for(services.projections.head())
    assert assignees(services) == Counter({str(agents[0]): 1})


def test_queued_when_nobody_is_eligible_then_assigned_oldest_first(services: Services, dovecot: Dovecot) -> None:
    mailbox_id, user = bind(services, dovecot)
    agents, group = team(services, ["ann"], capacity=1)
    services.app.set_agent_status(agents[0], AgentStatus.AWAY)
    services.app.create_routing_rule(RuleSpec(
        name="Billing", mailbox_ids=[mailbox_id], group_ids=[group], strategy=AssignmentStrategy.LOAD_BALANCED,
        conditions=[Condition(ConditionField.SUBJECT, ConditionOperator.CONTAINS, "invoice")]))
    for subject in ("Invoice 1", "Invoice 2", "Unrelated"):
        dovecot.append(user, mail(subject=subject))
    sync_and_decide(services, mailbox_id)
    statuses = subject_status(services)
    assert statuses == {"Invoice 1": "QUEUED", "Invoice 2": "QUEUED", "Unrelated": "UNROUTED"}

    written = services.app.set_agent_status(agents[0], AgentStatus.ONLINE)
    assert services.assigner.wait_for(written.position)
    services.projections.wait_for(services.projections.head())
    statuses = subject_status(services)
    assert statuses == {"Invoice 1": "OPEN", "Invoice 2": "QUEUED", "Unrelated": "UNROUTED"}  # capacity 1


def test_a_restarted_assigner_resumes_without_deciding_twice(
    services: Services, make_services: Callable[..., Services], dovecot: Dovecot
) -> None:
    mailbox_id, user = bind(services, dovecot)
    _, group = team(services, ["ann", "bob"])
    services.app.create_routing_rule(RuleSpec(name="All", mailbox_ids=[mailbox_id], group_ids=[group],
                                              strategy=AssignmentStrategy.ROUND_ROBIN))
    append_many(dovecot, user, [mail(subject=f"Q{i}") for i in range(6)])
    sync_and_decide(services, mailbox_id)
    restarted = make_services(verify_login=real_login(load_settings()))
    append_many(dovecot, user, [mail(subject=f"R{i}") for i in range(6)])
    sync_and_decide(restarted, mailbox_id)
    assert sorted(assignees(restarted).values()) == [6, 6]  # round robin continued from its cursor
    rows = restarted.database.query(
        "SELECT conversation_id, COUNT(*) AS n FROM rm_assignments GROUP BY conversation_id")
    assert len(rows) == 12 and {r["n"] for r in rows} == {1}


def test_replaying_the_log_re_derives_every_decision(services: Services, dovecot: Dovecot) -> None:
    """An auditor's check: decide again over the log without the recorded decisions; the same
    conversations get the same routing, agent, strategy and reason."""
    mailbox_id, user = bind(services, dovecot)
    agents, group = team(services, ["ann", "bob", "cid"], capacity=4)
    services.app.create_routing_rule(RuleSpec(name="All", mailbox_ids=[mailbox_id], group_ids=[group],
                                              strategy=AssignmentStrategy.LOAD_BALANCED))
    append_many(dovecot, user, [mail(subject=f"Q{i}") for i in range(8)])
    sync_and_decide(services, mailbox_id)
    services.app.set_agent_status(agents[0], AgentStatus.AWAY)
    append_many(dovecot, user, [mail(subject=f"R{i}") for i in range(8)])
    sync_and_decide(services, mailbox_id)
    written = services.app.set_agent_status(agents[0], AgentStatus.ONLINE)
    assert services.assigner.wait_for(written.position)

    recorded, replayed, _ = replay(services)
    assert recorded == replayed
    assert any(k[1] == "queued" for k in recorded) and sum(k[1] == "assigned" for k in recorded) == 12
