"""Tokens that expire and are revoked, and agents that are deactivated (issue 8, finding 6), through
the in-memory application: what authenticates, what is written, what is refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from domain.agents import Agent
from domain.application import Mailroom
from domain.claims import Claim
from domain.commands.agents import EMAIL_CLAIM
from domain.commands.tokens import Principal
from domain.conversation import Conversation
from domain.tokens import ApiToken
from domain.values import AgentStatus, AssignmentStrategy, Role
from tests.unit import test_commands
from tests.unit.test_commands import codes, log_end, refused

app = test_commands.app  # the in-memory application, as a fixture here too
NOW = datetime.now(UTC)


# --- expiry ------------------------------------------------------------------------------


def test_an_expired_token_is_nobody(app: Mailroom) -> None:
    expires = NOW + timedelta(hours=1)
    value, written = app.create_api_token("CI", Role.ADMIN, None, expires)
    assert app.authenticate(value) == Principal(Role.ADMIN, None, written.id)
    assert app.authenticate(value, now=expires - timedelta(seconds=1)) is not None
    assert app.authenticate(value, now=expires) is None
    assert app.authenticate(value, now=expires + timedelta(days=1)) is None
    token = app.repository.get(written.id)
    assert isinstance(token, ApiToken) and token.expires_at == expires


def test_a_naive_expiry_is_utc_and_one_in_the_past_is_refused(app: Mailroom) -> None:
    naive = (NOW + timedelta(hours=2)).replace(tzinfo=None)
    _, written = app.create_api_token("CI", Role.AUDITOR, None, naive)
    assert app.repository.get(written.id).expires_at == naive.replace(tzinfo=UTC)
    assert codes(refused(app.create_api_token, "CI", Role.ADMIN, None, NOW - timedelta(seconds=1))) == [
        (("input", "expiresAt"), "INVALID")]


def test_a_token_without_expiry_never_expires(app: Mailroom) -> None:
    value, _ = app.create_api_token("CI", Role.ADMIN, None)
    assert app.authenticate(value, now=NOW + timedelta(days=3650)) is not None


# --- revocation --------------------------------------------------------------------------


def test_a_revoked_token_is_nobody_and_revoking_again_changes_nothing(app: Mailroom) -> None:
    value, written = app.create_api_token("CI", Role.ADMIN, None)
    other, _ = app.create_api_token("other", Role.ADMIN, None)
    assert app.revoke_api_token(written.id).position is not None
    assert app.authenticate(value) is None
    assert app.authenticate(other) is not None  # only that one
    before = log_end(app)
    assert app.revoke_api_token(written.id).position is None
    assert log_end(app) == before


def test_revoking_an_unknown_token_is_not_found(app: Mailroom) -> None:
    assert codes(refused(app.revoke_api_token, uuid4())) == [(("id",), "NOT_FOUND")]
    ann = app.create_agent("Ann", "ann@example.com").id
    assert codes(refused(app.revoke_api_token, ann)) == [(("id",), "NOT_FOUND")]  # not a token


# --- deactivation ------------------------------------------------------------------------


def test_a_deactivated_agents_tokens_are_nobody(app: Mailroom) -> None:
    ann = app.create_agent("Ann", "ann@example.com").id
    bob = app.create_agent("Bob", "bob@example.com").id
    anns = [app.create_api_token(f"laptop {i}", Role.AGENT, ann)[0] for i in range(2)]
    bobs, _ = app.create_api_token("laptop", Role.AGENT, bob)
    assert all(app.authenticate(v) is not None for v in [*anns, bobs])
    app.deactivate_agent(ann)
    assert [app.authenticate(v) for v in anns] == [None, None]
    assert app.authenticate(bobs) is not None  # only the deactivated agent's
    assert codes(refused(app.create_api_token, "new laptop", Role.AGENT, ann)) == [
        (("input", "agentId"), "DEACTIVATED")]


def test_deactivation_is_recorded_once_and_keeps_the_agent(app: Mailroom) -> None:
    ann = app.create_agent("Ann", "ann@example.com").id
    written = app.deactivate_agent(ann)
    assert written.position is not None
    agent = app.repository.get(ann)
    assert isinstance(agent, Agent) and not agent.active and agent.name == "Ann"
    before = log_end(app)
    assert app.deactivate_agent(ann).position is None
    assert log_end(app) == before
    assert codes(refused(app.deactivate_agent, uuid4())) == [(("id",), "NOT_FOUND")]


def test_nothing_is_recorded_on_a_deactivated_agent(app: Mailroom) -> None:
    """Its latest event alone says it is deactivated (what authentication reads)."""
    ann = app.create_agent("Ann", "ann@example.com").id
    group = app.create_agent_group("Tier 1", []).id
    app.deactivate_agent(ann)
    assert codes(refused(app.update_agent, ann, name="Ann B.")) == [(("input", "id"), "DEACTIVATED")]
    assert codes(refused(app.update_agent, ann, capacity=3)) == [(("input", "id"), "DEACTIVATED")]
    assert codes(refused(app.set_agent_status, ann, AgentStatus.AWAY)) == [(("agentId",), "DEACTIVATED")]
    assert codes(refused(app.add_group_members, group, [ann])) == [(("agentIds", "0"), "DEACTIVATED")]
    assert codes(refused(app.create_agent_group, "Tier 2", [ann])) == [(("input", "memberIds", "0"), "DEACTIVATED")]
    assert app.recorder.select_events(ann, desc=True, limit=1)[0].topic == "mailroom:Agent.Deactivated"


def test_a_deactivated_agent_can_still_leave_a_group(app: Mailroom) -> None:
    ann = app.create_agent("Ann", "ann@example.com").id
    group = app.create_agent_group("Tier 1", [ann]).id
    app.deactivate_agent(ann)
    app.remove_group_members(group, [ann])
    assert app.repository.get(group).member_ids == []


def test_the_email_is_released_for_a_new_agent(app: Mailroom) -> None:
    ann = app.create_agent("Ann", "ann@example.com").id
    app.deactivate_agent(ann)
    claim = app.repository.get(Claim.create_id(EMAIL_CLAIM, "ann@example.com"))
    assert isinstance(claim, Claim) and claim.owner_id is None
    again = app.create_agent("Ann", "ann@example.com").id
    assert again != ann and app.repository.get(ann).email == "ann@example.com"  # history keeps it


@pytest.mark.parametrize("override", [False, True])
def test_nobody_assigns_to_a_deactivated_agent(app: Mailroom, override: bool) -> None:
    ann = app.create_agent("Ann", "ann@example.com").id
    group = app.create_agent_group("Tier 1", [ann]).id
    conversation = Conversation(uuid4(), "dora@customer.example", "Invoice", "ref-1")
    conversation.route(uuid4(), [group], 1)
    conversation.queue(AssignmentStrategy.ROUND_ROBIN, "nobody eligible", 1)
    app.save(conversation)
    app.deactivate_agent(ann)
    assert codes(refused(app.assign_conversation, conversation.id, ann, override)) == [(("agentId",), "DEACTIVATED")]
