"""What agents and admins do to a conversation by hand: assign, close, reopen."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from domain.agents import Agent, AgentGroup
from domain.assigner import Outcome
from domain.commands.agents import deactivated
from domain.commands.base import Base, Conflict, Written, retrying
from domain.conversation import ADMIN, ASSIGNER, CLOSED, Conversation
from domain.errors import invalid, not_found


class ConversationCommands(Base):
    @retrying()
    def assign_conversation(self, conversation_id: UUID, agent_id: UUID, override: bool = False) -> Written:
        """Assigns by hand, to an agent of the conversation's groups (those it was routed to, as
        they are now: the agents who can see it). Outside them, or while it has no groups, only
        with `override` (the API allows it to ADMIN only), which the Assigned event records."""
        conversation = self._load(Conversation, conversation_id, ("conversationId",), "conversation")
        agent = self._find(agent_id)
        if not isinstance(agent, Agent):
            raise not_found(("agentId",), f"agent {agent_id}")
        if not agent.active:  # never, override or not
            raise deactivated(("agentId",), agent)
        if conversation.status == CLOSED:
            raise invalid(("conversationId",), "the conversation is closed: reopen it first", "CLOSED")
        if conversation.assignee_id == agent_id:
            return Written(conversation.id, None)
        overridden = False
        if not conversation.group_ids:
            if not override:
                raise invalid(("agentId",), "the conversation has no groups (it is unrouted): only an admin "
                              "can assign it, with override", "NO_GROUPS")
            overridden = True
        elif not self._in_any_group(agent_id, conversation.group_ids):
            if not override:
                raise invalid(("agentId",), f"{agent.name} is not a member of the conversation's groups "
                              "and could not see it", "NOT_IN_GROUPS")
            overridden = True
        reason = f"assigned by hand to {agent.name}"
        if overridden:
            reason += " (override: outside the conversation's groups)"
        conversation.assign(agent_id, conversation.assignee_id, None, reason, ADMIN, None, None, overridden)
        return Written(conversation.id, self._store(conversation))

    def _in_any_group(self, agent_id: UUID, group_ids: Sequence[UUID]) -> bool:
        for group_id in group_ids:
            group = self._find(group_id)
            if isinstance(group, AgentGroup) and not group.deleted and agent_id in group.member_ids:
                return True
        return False

    @retrying()
    def close_conversation(self, conversation_id: UUID) -> Written:
        conversation = self._load(Conversation, conversation_id, ("id",), "conversation")
        if conversation.status != CLOSED:
            conversation.close(conversation.assignee_id)
        return Written(conversation.id, self._store(conversation))

    @retrying()
    def reopen_conversation(self, conversation_id: UUID) -> Written:
        conversation = self._load(Conversation, conversation_id, ("id",), "conversation")
        if conversation.status == CLOSED:
            conversation.reopen(conversation.previous_assignee_id)
        return Written(conversation.id, self._store(conversation))

    def record_decisions(self, outcomes: Sequence[Outcome], attempts: int = 3, **options: Any) -> int | None:
        """Records the assigner's decisions on their conversations in one save, with `options`
        (its position change) in the same transaction. A conversation changed meanwhile by
        someone else is reloaded and the decisions applied again on its fresh state."""
        for attempt in range(attempts):
            try:
                return self._store(*self._decided(outcomes), **options)
            except Conflict:
                if attempt == attempts - 1:
                    raise
        return None

    def _decided(self, outcomes: Sequence[Outcome]) -> list[Conversation]:
        conversations: dict[UUID, Conversation] = {}
        for outcome in outcomes:
            conversation = conversations.get(outcome.conversation_id)
            if conversation is None:
                found = self._find(outcome.conversation_id)
                if not isinstance(found, Conversation):
                    continue
                conversation = conversations[outcome.conversation_id] = found
            if outcome.kind == "routed" and outcome.rule_id is not None:
                conversation.route(outcome.rule_id, list(outcome.group_ids), outcome.decided_at)
            elif outcome.kind == "unrouted":
                conversation.leave_unrouted(outcome.reason, outcome.decided_at)
            elif outcome.kind == "queued":
                assert outcome.strategy is not None
                conversation.queue(outcome.strategy, outcome.reason, outcome.decided_at)
            elif outcome.kind == "assigned" and outcome.agent_id is not None:
                conversation.assign(outcome.agent_id, conversation.assignee_id, outcome.strategy, outcome.reason,
                                    ASSIGNER, outcome.decided_at, outcome.rule_id)
        return list(conversations.values())
