"""Assigning by hand (issue 8, finding 5): only to an agent of the conversation's groups (the
agents who can see it); outside them, or while it has no groups, only with an explicit
override, which the Assigned event records. Through the in-memory application."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

from domain.application import Mailroom
from domain.conversation import ADMIN, Conversation
from domain.values import AssignmentStrategy
from tests.unit import test_commands
from tests.unit.test_commands import codes, log_end, refused

app = test_commands.app  # the in-memory application, as a fixture here too


def desk(app: Mailroom) -> dict[str, UUID]:
    """G1 (ann, bob) and G2 (cy); a conversation routed to G1 and assigned to ann; one unrouted."""
    ids = {n: app.create_agent(n, f"{n}@example.com").id for n in ("ann", "bob", "cy")}
    ids["g1"] = app.create_agent_group("G1", [ids["ann"], ids["bob"]]).id
    ids["g2"] = app.create_agent_group("G2", [ids["cy"]]).id
    routed = Conversation(uuid4(), "dora@customer.example", "Invoice", "ref-routed")
    routed.route(uuid4(), [ids["g1"]], 1)
    routed.assign(ids["ann"], None, AssignmentStrategy.ROUND_ROBIN, "first", "assigner", 1, None)
    unrouted = Conversation(uuid4(), "eve@customer.example", "Hello", "ref-unrouted")
    unrouted.leave_unrouted("no rule", 1)
    app.save(routed, unrouted)
    ids["routed"], ids["unrouted"] = routed.id, unrouted.id
    return ids


def last_event(app: Mailroom, conversation_id: UUID) -> Any:
    return list(app.events.get(conversation_id))[-1]


def test_an_agent_of_the_conversations_groups_is_assigned_without_override(app: Mailroom) -> None:
    ids = desk(app)
    app.assign_conversation(ids["routed"], ids["bob"])
    assigned = last_event(app, ids["routed"])
    assert (type(assigned), assigned.agent_id, assigned.override, assigned.decided_by) == (
        Conversation.Assigned, ids["bob"], False, ADMIN)
    assert assigned.reason == "assigned by hand to bob"


def test_an_agent_outside_the_conversations_groups_is_refused(app: Mailroom) -> None:
    ids = desk(app)
    problems = refused(app.assign_conversation, ids["routed"], ids["cy"])
    assert codes(problems) == [(("agentId",), "NOT_IN_GROUPS")]
    assert "cy is not a member" in problems[0].message
    assert app.repository.get(ids["routed"]).assignee_id == ids["ann"]


def test_a_member_who_left_the_group_is_refused(app: Mailroom) -> None:
    ids = desk(app)
    app.remove_group_members(ids["g1"], [ids["bob"]])
    assert codes(refused(app.assign_conversation, ids["routed"], ids["bob"])) == [(("agentId",), "NOT_IN_GROUPS")]


def test_an_unrouted_conversation_needs_the_override(app: Mailroom) -> None:
    ids = desk(app)
    assert codes(refused(app.assign_conversation, ids["unrouted"], ids["ann"])) == [(("agentId",), "NO_GROUPS")]
    app.assign_conversation(ids["unrouted"], ids["ann"], override=True)
    assigned = last_event(app, ids["unrouted"])
    assert (assigned.agent_id, assigned.override) == (ids["ann"], True)


def test_the_override_assigns_outside_the_groups_and_is_recorded(app: Mailroom) -> None:
    ids = desk(app)
    app.assign_conversation(ids["routed"], ids["cy"], override=True)
    assigned = last_event(app, ids["routed"])
    assert (assigned.agent_id, assigned.previous_id, assigned.override) == (ids["cy"], ids["ann"], True)
    assert assigned.reason == "assigned by hand to cy (override: outside the conversation's groups)"
    stored = app.recorder.select_notifications(1, 1000)[-1]
    assert '"override":true' in stored.state.decode() and '"class_version":2' in stored.state.decode()


def test_an_unneeded_override_is_not_recorded_as_one(app: Mailroom) -> None:
    ids = desk(app)
    app.assign_conversation(ids["routed"], ids["bob"], override=True)
    assert last_event(app, ids["routed"]).override is False


def test_unknown_agent_and_unchanged_assignee(app: Mailroom) -> None:
    ids = desk(app)
    assert codes(refused(app.assign_conversation, ids["routed"], uuid4())) == [(("agentId",), "NOT_FOUND")]
    before = log_end(app)
    assert app.assign_conversation(ids["routed"], ids["ann"]).position is None
    assert log_end(app) == before
