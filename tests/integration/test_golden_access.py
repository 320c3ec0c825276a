"""The golden logs of who may act (issue 8; tests/data/record_golden.py, scenario "access"):
they load into the same aggregates, and every view and the assigner take them in. Assigned
events recorded before the override existed (the mail logs, v1) read as v2 with override False."""

from __future__ import annotations

from typing import Any

import pytest

from api.bootstrap import Services
from domain.agents import Agent
from domain.conversation import OPEN, Conversation
from tests.integration.test_golden_replay import ACCESS_LOGS, MAIL_LOGS, load_golden_log, read_log, view_rows

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
