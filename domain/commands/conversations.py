"""What agents and admins do to a conversation by hand: assign, close, reopen."""

from __future__ import annotations

from uuid import UUID

from domain.agents import Agent
from domain.commands.base import Base, Written, retrying
from domain.conversation import ADMIN, CLOSED, Conversation
from domain.errors import invalid, not_found


class ConversationCommands(Base):
    @retrying()
    def assign_conversation(self, conversation_id: UUID, agent_id: UUID) -> Written:
        conversation = self._load(Conversation, conversation_id, ("conversationId",), "conversation")
        agent = self._find(agent_id)
        if not isinstance(agent, Agent):
            raise not_found(("agentId",), f"agent {agent_id}")
        if conversation.status == CLOSED:
            raise invalid(("conversationId",), "the conversation is closed: reopen it first", "CLOSED")
        if conversation.assignee_id != agent_id:
            conversation.assign(agent_id, conversation.assignee_id, None, f"assigned by hand to {agent.name}",
                                ADMIN, None, None)
        return Written(conversation.id, self._store(conversation))

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
