"""Assignment as the API shows it: workloads, daily totals, last handler; and the manual
commands on a conversation (assign, close, reopen)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from uuid import UUID

import strawberry

from api.graphql.common import (
    EVERYONE,
    READERS,
    Ctx,
    UserError,
    blocking,
    command,
    decided,
    loaders,
    pending,
    require,
    services,
)
from api.graphql.conversations import Conversation, customer_visible, visible
from api.graphql.types import Agent, agent_by_id
from domain.commands.base import Written
from domain.values import Role


@strawberry.type
class AgentWorkload:
    agent: Agent
    active_conversations: int


@strawberry.type
class DailyTotal:
    agent: Agent
    date: dt.date
    received: int


@strawberry.type
class ConversationPayload:
    conversation: Conversation | None
    user_errors: list[UserError]


@strawberry.type
class AssignmentQuery:
    @strawberry.field
    async def agent_workloads(self, info: Ctx, group_id: UUID | None = None) -> list[AgentWorkload]:
        require(info, *READERS)
        s = services(info)
        if group_id is None:  # every agent with its figure: one statement
            return [AgentWorkload(agent=Agent(row=row), active_conversations=active)
                    for row, active in await blocking(s.conversations.agents_with_workloads)]
        rows = await loaders(info).members.load(str(group_id))
        figures = await blocking(s.conversations.workloads, [r["id"] for r in rows])  # one statement for all
        return [AgentWorkload(agent=Agent(row=row), active_conversations=figures.get(str(row["id"]), 0))
                for row in rows]

    @strawberry.field
    async def daily_totals(self, info: Ctx, date: dt.date) -> list[DailyTotal]:
        require(info, *READERS)
        rows = await blocking(services(info).conversations.daily_totals_with_agents, date.isoformat())  # one statement
        return [DailyTotal(agent=Agent(row=agent), date=date, received=received) for agent, received in rows]

    @strawberry.field
    async def last_handler(self, info: Ctx, customer_email: str) -> Agent | None:
        require(info, *EVERYONE)
        if not await customer_visible(info, customer_email):  # an agent: only its groups' customers
            return None
        return await agent_by_id(info, await blocking(services(info).conversations.last_handler, customer_email))


PAYLOAD_VIEWS = ("conversations", "workload")  # a conversation with its assignee's figures


async def _act(info: Ctx, conversation_id: UUID, run: Callable[[], Written],
               then_decide: bool = False) -> ConversationPayload:
    """Admins act on any conversation, agents on their groups' ones, auditors on none; the
    answer shows the conversation with the command's effect (and, if asked, the assigner's)."""
    who = require(info, Role.ADMIN, Role.AGENT)
    if who.role is Role.AGENT and not await visible(info, conversation_id):
        return ConversationPayload(conversation=None, user_errors=[
            UserError(field=["id"], message="conversation not found", code="NOT_FOUND")])
    written, errors = await command(info, run, views=PAYLOAD_VIEWS)
    s = services(info)
    if written is not None and then_decide and not errors and not await decided(
            info, written.position, PAYLOAD_VIEWS):
        errors = [pending("the assigner's decision is", written.id)]
    row = await blocking(s.conversations.conversation, written.id) if written else None
    return ConversationPayload(conversation=Conversation(row=row) if row else None, user_errors=errors)


@strawberry.type
class AssignmentMutations:
    @strawberry.mutation(description=(
        "To an agent of the conversation's groups (NOT_IN_GROUPS otherwise; NO_GROUPS while it has none). "
        "override: an ADMIN may assign outside them (recorded on the assignment); FORBIDDEN to others."))
    async def assign_conversation(self, info: Ctx, conversation_id: UUID, agent_id: UUID,
                                  override: bool | None = False) -> ConversationPayload:
        if override:
            require(info, Role.ADMIN)  # an agent may not assign outside the groups that can see it
        return await _act(info, conversation_id,
                          lambda: services(info).app.assign_conversation(conversation_id, agent_id, bool(override)))

    @strawberry.mutation
    async def close_conversation(self, info: Ctx, id: UUID) -> ConversationPayload:
        # Closing frees capacity: the answer waits until a queued conversation took its place.
        return await _act(info, id, lambda: services(info).app.close_conversation(id), then_decide=True)

    @strawberry.mutation
    async def reopen_conversation(self, info: Ctx, id: UUID) -> ConversationPayload:
        # Reopening asks the assigner where it goes: back to its assignee, or routed again.
        return await _act(info, id, lambda: services(info).app.reopen_conversation(id), then_decide=True)
