"""Helpers for the assignment fault tests: teams, syncing and deciding, what the read models and
the event log say about assignments, the assigner's figures, and the auditor's replay."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any
from uuid import UUID

from api import audit
from api.bootstrap import Services
from api.processes.sync import MailboxSync, SyncReport
from domain.assigner import Assigner
from tests.integration.faults_support import events_table

ASSIGNED = "mailroom:Conversation.Assigned"


def team(services: Services, names: list[str], capacity: int | None = None) -> tuple[dict[str, UUID], UUID]:
    """Agents (by name) in one new group, in the order given."""
    agents = {n: services.app.create_agent(n, f"{n}@support.example", capacity).id for n in names}
    group = services.app.create_agent_group(f"Team {'-'.join(names)}", list(agents.values()))
    return agents, group.id


def settle(services: Services, position: int | None) -> None:
    """This process's assigner decides up to `position`; the read models include it all."""
    assert services.assigner.wait_for(position), f"the assigner did not reach {position}"
    assert services.projections.wait_for(services.projections.head())


def sync(services: Services, mailbox_id: UUID) -> SyncReport:
    report = MailboxSync.of(services).sync(mailbox_id)
    assert report.error is None, report.error
    return report


def sync_and_decide(services: Services, mailbox_id: UUID) -> SyncReport:
    report = sync(services, mailbox_id)
    settle(services, report.position)
    return report


def wait_until(condition: Callable[[], bool], seconds: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return condition()


# ----------------------------------------------------------------- what the read models say


def conversations(services: Services) -> dict[str, dict[str, Any]]:
    """subject -> its rm_conversations row."""
    rows = services.database.query("SELECT * FROM rm_conversations")
    return {str(r["subject"]): r for r in rows}


def where(services: Services) -> dict[str, tuple[str, str | None]]:
    """subject -> (status, assignee id)."""
    return {s: (r["status"], r["assignee_id"]) for s, r in conversations(services).items()}


def open_counts(services: Services) -> Counter[str]:
    """Agent id -> how many OPEN conversations it holds (the workload read model)."""
    rows = services.database.query("SELECT assignee_id FROM rm_conversations WHERE status = 'OPEN'")
    return Counter(str(r["assignee_id"]) for r in rows)


def last_assignment(services: Services, conversation_id: str) -> dict[str, Any]:
    rows = services.database.query(
        "SELECT * FROM rm_assignments WHERE conversation_id = ? ORDER BY seq DESC", (conversation_id,))
    assert rows, f"no assignment recorded for {conversation_id}"
    return rows[0]


def assigned_events(services: Services) -> Counter[str]:
    """Conversation id -> how many Conversation.Assigned events the log holds for it."""
    rows = services.database.query(
        f"SELECT originator_id, COUNT(*) AS n FROM {events_table(services)} WHERE topic = ? GROUP BY originator_id",
        (ASSIGNED,))
    return Counter({str(UUID(str(r["originator_id"]))): int(r["n"]) for r in rows})


# ----------------------------------------------------------------- the assigner's own figures


def assigner_active(services: Services) -> Counter[str]:
    """Agent id -> active conversations, as the assigner of this process counts them."""
    agents = services.assigner.consumer.current().state.agents
    return Counter({str(agent_id): a.active for agent_id, a in agents.items() if a.active})


def assert_figures_consistent(services: Services) -> None:
    """The assigner's active counts and open set equal the read models' OPEN conversations."""
    services.assigner.catch_up()
    services.projections.catch_up()
    assert assigner_active(services) == open_counts(services)
    state = services.assigner.consumer.current().state
    rows = services.database.query("SELECT id, status, assignee_id FROM rm_conversations")
    assert {str(c): str(a) for c, a in state.assignee.items()} == {
        r["id"]: r["assignee_id"] for r in rows if r["status"] == "OPEN"}
    assert {str(c) for c in state.queued} == {r["id"] for r in rows if r["status"] == "QUEUED"}
    assert not set(state.queued) & set(state.assignee), "a conversation both queued and open"


# ----------------------------------------------------------------- the auditor's replay


def replay(services: Services) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], Assigner]:
    """Decides again over the log without the recorded decisions: (recorded, re-derived, the fresh
    assigner), the decisions as sortable keys (api/audit.py, as `mailroom audit verify` does)."""
    return audit.replay(services)


def assert_replay_matches(services: Services) -> list[tuple[Any, ...]]:
    """Every recorded decision is re-derived, and nothing else; the figures end the same."""
    recorded, derived, fresh = replay(services)
    assert recorded == derived
    services.assigner.catch_up()
    live = services.assigner.consumer.current()
    for name in ("assignee", "cursor", "last_handler"):
        assert getattr(fresh.state, name) == getattr(live.state, name), name
    assert list(fresh.state.queued) == list(live.state.queued)
    assert {k: (a.active, a.today, a.day) for k, a in fresh.state.agents.items()} == {
        k: (a.active, a.today, a.day) for k, a in live.state.agents.items()}
    return recorded
