"""Agents (deactivation too), groups, customers and routing rules (tokens: api/graphql/tokens.py)."""

from __future__ import annotations

from uuid import UUID

import strawberry

from api.graphql.common import (
    ADMIN_ONLY,
    EVERYONE,
    Ctx,
    UserError,
    blocking,
    command,
    decided,
    given,
    keep_unless_given,
    pending,
    require,
    services,
)
from api.graphql.inputs import (
    CreateAgentGroupInput,
    CreateAgentInput,
    RoutingRuleInput,
    UpdateAgentInput,
    UpsertAccountInput,
    UpsertContactInput,
)
from api.graphql.mutations_mailboxes import DeletePayload
from api.graphql.types import Account, Agent, AgentGroup, Contact, RoutingRule
from domain.commands.base import Written
from domain.values import AgentStatus, Role


@strawberry.type
class AgentPayload:
    agent: Agent | None
    user_errors: list[UserError]


@strawberry.type
class AgentGroupPayload:
    group: AgentGroup | None
    user_errors: list[UserError]


@strawberry.type
class AccountPayload:
    account: Account | None
    user_errors: list[UserError]


@strawberry.type
class ContactPayload:
    contact: Contact | None
    user_errors: list[UserError]


@strawberry.type
class RoutingRulePayload:
    rule: RoutingRule | None
    user_errors: list[UserError]


# The answer waits until the assigner has decided where the agent's open conversations go, and the
# views show it (the agent inactive, its activeConversations 0).
DEACTIVATION_VIEWS = ("directory", "conversations", "workload")


async def _agent(info: Ctx, written: Written | None) -> Agent | None:
    row = await blocking(services(info).directory.agent, written.id) if written else None
    return None if row is None else Agent(row=row)


async def _group(info: Ctx, written: Written | None) -> AgentGroup | None:
    row = await blocking(services(info).directory.group, written.id) if written else None
    return None if row is None else AgentGroup(row=row)


async def _rule(info: Ctx, written: Written | None) -> RoutingRule | None:
    row = await blocking(services(info).directory.rule, written.id) if written else None
    return None if row is None else RoutingRule(row=row)


@strawberry.type
class AdminMutations:
    @strawberry.mutation
    async def create_agent(self, info: Ctx, input: CreateAgentInput) -> AgentPayload:
        require(info, *ADMIN_ONLY)
        written, errors = await command(info, lambda: services(info).app.create_agent(
            input.name, input.email, input.capacity, input.status or AgentStatus.ONLINE))
        return AgentPayload(agent=await _agent(info, written), user_errors=errors)

    @strawberry.mutation
    async def update_agent(self, info: Ctx, input: UpdateAgentInput) -> AgentPayload:
        require(info, *ADMIN_ONLY)
        written, errors = await command(info, lambda: services(info).app.update_agent(
            input.id, name=keep_unless_given(input.name), email=keep_unless_given(input.email),
            capacity=given(input.capacity)))
        return AgentPayload(agent=await _agent(info, written), user_errors=errors)

    @strawberry.mutation
    async def set_agent_status(self, info: Ctx, agent_id: UUID, status: AgentStatus) -> AgentPayload:
        who = require(info, *EVERYONE)
        if who.role is Role.AUDITOR or (who.role is Role.AGENT and who.agent_id != agent_id):
            require(info, Role.ADMIN)  # agents set their own status only
        written, errors = await command(info, lambda: services(info).app.set_agent_status(agent_id, status))
        return AgentPayload(agent=await _agent(info, written), user_errors=errors)

    @strawberry.mutation
    async def create_agent_group(self, info: Ctx, input: CreateAgentGroupInput) -> AgentGroupPayload:
        require(info, *ADMIN_ONLY)
        written, errors = await command(info, lambda: services(info).app.create_agent_group(
            input.name, list(input.member_ids or [])))
        return AgentGroupPayload(group=await _group(info, written), user_errors=errors)

    @strawberry.mutation
    async def add_group_members(self, info: Ctx, group_id: UUID, agent_ids: list[UUID]) -> AgentGroupPayload:
        require(info, *ADMIN_ONLY)
        written, errors = await command(info, lambda: services(info).app.add_group_members(group_id, agent_ids))
        return AgentGroupPayload(group=await _group(info, written), user_errors=errors)

    @strawberry.mutation
    async def remove_group_members(
        self, info: Ctx, group_id: UUID, agent_ids: list[UUID]
    ) -> AgentGroupPayload:
        require(info, *ADMIN_ONLY)
        written, errors = await command(
            info, lambda: services(info).app.remove_group_members(group_id, agent_ids))
        return AgentGroupPayload(group=await _group(info, written), user_errors=errors)

    @strawberry.mutation
    async def delete_agent_group(self, info: Ctx, id: UUID) -> DeletePayload:
        require(info, *ADMIN_ONLY)
        written, errors = await command(info, lambda: services(info).app.delete_agent_group(id))
        return DeletePayload(deleted_id=written.id if written else None, user_errors=errors)

    @strawberry.mutation(description=(
        "One-way: the agent stays listed (active false) with its history, gets no more assignments, its tokens "
        "are refused (HTTP 401), and its open conversations are routed again by their rules."))
    async def deactivate_agent(self, info: Ctx, id: UUID) -> AgentPayload:
        require(info, *ADMIN_ONLY)
        # The answer shows the agent inactive and without the conversations the assigner moved.
        written, errors = await command(info, lambda: services(info).app.deactivate_agent(id),
                                        views=DEACTIVATION_VIEWS)
        if written is not None and not errors and not await decided(info, written.position, DEACTIVATION_VIEWS):
            errors = [pending("where the assigner moved its conversations is", written.id)]
        return AgentPayload(agent=await _agent(info, written), user_errors=errors)

    @strawberry.mutation
    async def upsert_account(self, info: Ctx, input: UpsertAccountInput) -> AccountPayload:
        require(info, *ADMIN_ONLY)
        written, errors = await command(info, lambda: services(info).app.upsert_account(
            input.id, input.name, list(input.domains or []), owner_id=given(input.owner_id)))
        row = await blocking(services(info).directory.account, written.id) if written else None
        return AccountPayload(account=Account(row=row) if row else None, user_errors=errors)

    @strawberry.mutation
    async def upsert_contact(self, info: Ctx, input: UpsertContactInput) -> ContactPayload:
        require(info, *ADMIN_ONLY)
        written, errors = await command(info, lambda: services(info).app.upsert_contact(
            input.email, name=given(input.name), account_id=given(input.account_id),
            owner_id=given(input.owner_id)))
        row = await blocking(services(info).directory.contact, written.id) if written else None
        return ContactPayload(contact=Contact(row=row) if row else None, user_errors=errors)

    @strawberry.mutation
    async def create_routing_rule(self, info: Ctx, input: RoutingRuleInput) -> RoutingRulePayload:
        require(info, *ADMIN_ONLY)
        written, errors = await command(info, lambda: services(info).app.create_routing_rule(input.to_domain()))
        return RoutingRulePayload(rule=await _rule(info, written), user_errors=errors)

    @strawberry.mutation
    async def update_routing_rule(
        self, info: Ctx, id: UUID, input: RoutingRuleInput, expected_version: int | None = None
    ) -> RoutingRulePayload:
        require(info, *ADMIN_ONLY)
        written, errors = await command(info, lambda: services(info).app.update_routing_rule(
            id, input.to_domain(), expected_version))
        return RoutingRulePayload(rule=await _rule(info, written), user_errors=errors)

    @strawberry.mutation
    async def delete_routing_rule(self, info: Ctx, id: UUID) -> DeletePayload:
        require(info, *ADMIN_ONLY)
        written, errors = await command(info, lambda: services(info).app.delete_routing_rule(id))
        return DeletePayload(deleted_id=written.id if written else None, user_errors=errors)
