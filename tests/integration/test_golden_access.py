"""The golden logs of who may act (issue 8; tests/data/record_golden.py, scenario "access"):
they load into the same aggregates, and every view and the assigner take them in. Assigned
events recorded before the override existed (the mail logs, v1) read as v2 with override False;
tokens issued before expiry existed (Issued v1) never expire."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from api.bootstrap import Services
from domain.agents import Agent
from domain.conversation import OPEN, Conversation
from tests.integration.test_golden_replay import (
    ACCESS_LOGS,
    DIRECTORY_LOG,
    MAIL_LOGS,
    load_golden_log,
    read_log,
    view_rows,
)

ASSIGNED = "mailroom:Conversation.Assigned"


@pytest.mark.parametrize("name", ACCESS_LOGS)
def test_access_log_loads_the_override_and_every_view_takes_it_in(services: Services, name: str) -> None:
    events = load_golden_log(services, name)
    [conversation_id] = {e.originator_id for e in events if e.topic == ASSIGNED}
    conversation = services.app.repository.get(conversation_id)
    assert isinstance(conversation, Conversation) and conversation.status == OPEN
    names = {e.originator_id: services.app.repository.get(e.originator_id).name
             for e in events if e.topic == "mailroom:Agent.Created"}
    assigned: list[Any] = [services.app.mapper.to_domain_event(e) for e in events if e.topic == ASSIGNED]
    assert [(names[e.agent_id], e.decided_by, e.override) for e in assigned] == [
        ("Eve", "assigner", False), ("Finn", "admin", True), ("Eve", "admin", False)]
    assert isinstance(services.app.repository.get(conversation.assignee_id), Agent)
    services.projections.catch_up()
    services.assigner.catch_up()
    rows = view_rows(services, "conversations")["rm_assignments"]
    assert [r["decided_by"] for r in rows] == ["assigner", "admin", "admin"]
    assert services.assigner.consumer.current().state.assignee == {conversation_id: conversation.assignee_id}


@pytest.mark.parametrize("name", MAIL_LOGS)
def test_assignments_recorded_before_the_override_read_without_one(services: Services, name: str) -> None:
    stored = [e for e in read_log(name) if e.topic == ASSIGNED]
    assert stored and all(b'"class_version"' not in e.state for e in stored)  # v1 as recorded
    assert {services.app.mapper.to_domain_event(e).override for e in stored} == {False}


def test_access_log_v2_loads_tokens_and_the_deactivated_agent(services: Services) -> None:
    events = load_golden_log(services, "golden_events_access_v2.jsonl")
    agents = {a.name: a for a in (services.app.repository.get(e.originator_id)
                                  for e in events if e.topic == "mailroom:Agent.Created")}
    assert (agents["Finn"].active, agents["Eve"].active) == (False, True)
    tokens = {t.name: t for t in (services.app.repository.get(e.originator_id)
                                  for e in events if e.topic == "mailroom:ApiToken.Issued")}
    assert tokens["Finn's laptop"].expires_at == datetime(2030, 1, 1, tzinfo=UTC)
    assert (tokens["Finn's laptop"].revoked, tokens["ops"].revoked, tokens["ops"].expires_at) == (False, True, None)
    services.projections.catch_up()
    services.assigner.catch_up()
    directory = view_rows(services, "directory")
    assert {r["name"]: (r["active"], r["deactivated_at"] is not None) for r in directory["rm_agents"]} == {
        "Eve": (1, False), "Finn": (0, True)}
    assert {r["name"]: (r["expires_at"], r["revoked_at"] is not None) for r in directory["rm_api_tokens"]} == {
        "Finn's laptop": ("2030-01-01T00:00:00+00:00", False), "ops": (None, True)}
    state = services.assigner.consumer.current().state
    assert [a.deactivated for a in state.agents.values()] == [False, True]  # Eve, Finn


@pytest.mark.parametrize("name", [DIRECTORY_LOG, *MAIL_LOGS])
def test_tokens_issued_before_expiry_existed_never_expire(services: Services, name: str) -> None:
    stored = [e for e in read_log(name) if e.topic == "mailroom:ApiToken.Issued"]
    assert stored and all(b'"class_version"' not in e.state for e in stored)  # v1 as recorded
    assert {services.app.mapper.to_domain_event(e).expires_at for e in stored} == {None}
