"""replyToConversation: an agent answers the customer (api/replies.py builds and queues the
reply; the outbox sender delivers it). The answer is the message as queued (QUEUED), and the
conversation's messages include it (read-your-writes)."""

from __future__ import annotations

from uuid import UUID

import strawberry

from api.graphql.common import Ctx, UserError, command, require, services
from api.graphql.conversations import Message, visible
from api.replies import queue_reply
from domain.values import Role

PAYLOAD_VIEWS = ("conversations",)


@strawberry.input
class ReplyInput:
    conversation_id: UUID
    body: str = strawberry.field(description="Plain text; the mailbox footer is appended.")
    subject: str | None = strawberry.field(default=None, description="Overrides the mailbox's default reply subject.")


@strawberry.type
class ReplyPayload:
    message: Message | None
    user_errors: list[UserError]


@strawberry.type
class ReplyMutations:
    @strawberry.mutation(description=(
        "Queues a reply (deliveryStatus QUEUED) with the mailbox's subject template and footer, the customer's "
        "last message quoted; the outbox delivers it over SMTP. Agents: conversations of their groups only. "
        "A reply into a CLOSED conversation reopens it."))
    async def reply_to_conversation(self, info: Ctx, input: ReplyInput) -> ReplyPayload:
        who = require(info, Role.ADMIN, Role.AGENT)
        if who.role is Role.AGENT and not await visible(info, input.conversation_id):
            return ReplyPayload(message=None, user_errors=[
                UserError(field=["input", "conversationId"], message="conversation not found", code="NOT_FOUND")])
        s = services(info)
        result, errors = await command(
            info, lambda: queue_reply(s, input.conversation_id, who.agent_id, input.body, input.subject),
            views=PAYLOAD_VIEWS)
        if result is None:
            return ReplyPayload(message=None, user_errors=errors)
        _, row = result
        return ReplyPayload(message=Message(row=row), user_errors=errors)
