"""Query root: reads go to the read models (events: to the log itself)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import strawberry
from strawberry.scalars import JSON

from api.graphql.common import EVERYONE, READERS, Ctx, blocking, principal, require, services
from api.graphql.conversations import customer_visible
from api.graphql.types import Account, Agent, AgentGroup, Contact, Mailbox, RoutingRule, Viewer
from domain.ids import contact_id
from domain.values import Role
from projections import audit

MAX_PAGE = 500


@strawberry.type
class DomainEvent:
    position: int = strawberry.field(description="Position in the global, gap-free order of all events.")
    aggregate_id: UUID
    aggregate_type: str
    version: int
    type: str
    occurred_at: datetime
    data: JSON = strawberry.field(description="The event's attributes. Never holds a secret.")


@strawberry.type
class EventPage:
    events: list[DomainEvent]
    next_position: int | None


@strawberry.type
class Query:
    @strawberry.field
    async def me(self, info: Ctx) -> Viewer:
        who = principal(info)
        return Viewer(role=who.role, agent_id=str(who.agent_id) if who.agent_id else None)

    @strawberry.field
    async def mailboxes(self, info: Ctx) -> list[Mailbox]:
        require(info, *EVERYONE)
        return [Mailbox(row=r) for r in await blocking(services(info).directory.mailboxes)]

    @strawberry.field
    async def mailbox(self, info: Ctx, id: UUID) -> Mailbox | None:
        require(info, *EVERYONE)
        row = await blocking(services(info).directory.mailbox, id)
        return None if row is None else Mailbox(row=row)

    @strawberry.field
    async def agents(self, info: Ctx) -> list[Agent]:
        require(info, *EVERYONE)
        return [Agent(row=r) for r in await blocking(services(info).directory.agents)]

    @strawberry.field
    async def agent(self, info: Ctx, id: UUID) -> Agent | None:
        require(info, *EVERYONE)
        row = await blocking(services(info).directory.agent, id)
        return None if row is None else Agent(row=row)

    @strawberry.field
    async def agent_groups(self, info: Ctx) -> list[AgentGroup]:
        require(info, *EVERYONE)
        return [AgentGroup(row=r) for r in await blocking(services(info).directory.groups)]

    @strawberry.field
    async def accounts(self, info: Ctx) -> list[Account]:
        require(info, *EVERYONE)
        return [Account(row=r) for r in await blocking(services(info).directory.accounts)]

    @strawberry.field
    async def contact(self, info: Ctx, email: str) -> Contact | None:
        require(info, *EVERYONE)
        if not await customer_visible(info, email):  # an agent: its groups' customers only, as lastHandler
            return None
        row = await blocking(services(info).directory.contact, contact_id(email))
        return None if row is None else Contact(row=row)

    @strawberry.field
    async def routing_rules(self, info: Ctx) -> list[RoutingRule]:
        require(info, *READERS)
        return [RoutingRule(row=r) for r in await blocking(services(info).directory.rules)]

    @strawberry.field
    async def events(
        self, info: Ctx, after_position: int | None = 0, first: int | None = 100,
        aggregate_id: UUID | None = None,
    ) -> EventPage:
        require(info, Role.ADMIN, Role.AUDITOR)
        after = max(after_position or 0, 0)
        limit = min(max(first or 0, 0), MAX_PAGE)
        s = services(info)
        found = await blocking(audit.page, s.app, s.database, after, limit + 1, aggregate_id)
        more = len(found) > limit
        shown = found[:limit]
        return EventPage(
            events=[DomainEvent(position=e.position, aggregate_id=e.aggregate_id,
                                aggregate_type=e.aggregate_type, version=e.version, type=e.type,
                                occurred_at=e.occurred_at, data=JSON(e.data)) for e in shown],
            next_position=shown[-1].position if more and shown else None,
        )
