"""Agents and agent groups."""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import Aggregate

from domain.agents import Agent, AgentGroup
from domain.claims import Claim
from domain.commands.base import KEEP, Base, Keep, Written, retrying
from domain.errors import Collector, Rejected, invalid, not_found
from domain.validation import check_email, check_name, normalise_email
from domain.values import AgentStatus

EMAIL_CLAIM = "agent-email"
DEACTIVATED = "DEACTIVATED"  # the code of a change refused because the agent is deactivated
MAX_CAPACITY = 10_000


def check_capacity(errors: Collector, capacity: int | None) -> None:
    if capacity is not None and not 0 <= capacity <= MAX_CAPACITY:
        errors.add(("input", "capacity"), f"capacity must be between 0 and {MAX_CAPACITY}, or null")


def deactivated(field: tuple[str, ...], agent: Agent) -> Rejected:
    return invalid(field, f"agent {agent.name} is deactivated", DEACTIVATED)


class AgentCommands(Base):
    def create_agent(
        self, name: str, email: str, capacity: int | None = None, status: AgentStatus = AgentStatus.ONLINE
    ) -> Written:
        email = normalise_email(email)
        errors = Collector()
        check_name(errors, ("input", "name"), name)
        check_email(errors, ("input", "email"), email)
        check_capacity(errors, capacity)
        errors.raise_if_any()
        claim = self._free_claim(email)
        agent = Agent(name=name.strip(), email=email, status=status, capacity=capacity)
        claim.take(agent.id)
        return Written(agent.id, self._store_or_reject(("input", "email"), claim, agent))

    def _free_claim(self, email: str) -> Claim:
        claim = self._find(Claim.create_id(EMAIL_CLAIM, email)) or Claim(EMAIL_CLAIM, email)
        if claim.owner_id is not None:
            raise invalid(("input", "email"), f"an agent with email {email} exists", "DUPLICATE")
        return claim

    @retrying()
    def update_agent(
        self,
        agent_id: UUID,
        name: str | Keep = KEEP,
        email: str | Keep = KEEP,
        capacity: int | Keep | None = KEEP,
    ) -> Written:
        agent = self._load(Agent, agent_id, ("input", "id"), "agent")
        if not agent.active:
            raise deactivated(("input", "id"), agent)
        new_name = agent.name if isinstance(name, Keep) else name.strip()
        new_email = agent.email if isinstance(email, Keep) else normalise_email(email)
        errors = Collector()
        check_name(errors, ("input", "name"), new_name)
        check_email(errors, ("input", "email"), new_email)
        if not isinstance(capacity, Keep):
            check_capacity(errors, capacity)
        errors.raise_if_any()
        changed: list[Aggregate] = [agent]
        if new_email != agent.email:
            claim = self._free_claim(new_email)
            claim.take(agent.id)
            old = self._find(Claim.create_id(EMAIL_CLAIM, agent.email))
            if old is not None and old.owner_id == agent.id:
                old.release()
                changed.append(old)
            changed.append(claim)
        if (new_name, new_email) != (agent.name, agent.email):
            agent.edit(new_name, new_email)
        if not isinstance(capacity, Keep) and capacity != agent.capacity:
            agent.change_capacity(capacity)
        return Written(agent.id, self._store(*changed))

    @retrying()
    def set_agent_status(self, agent_id: UUID, status: AgentStatus) -> Written:
        agent = self._load(Agent, agent_id, ("agentId",), "agent")
        if not agent.active:
            raise deactivated(("agentId",), agent)
        if agent.status != status:
            agent.change_status(status)
        return Written(agent.id, self._store(agent))

    @retrying()
    def deactivate_agent(self, agent_id: UUID) -> Written:
        """One-way. The agent stays listed (inactive) with its history; its tokens are refused from
        now on; the assigner never picks it again and routes its open conversations again. Its
        email is released, so that a new agent may have it. Deactivating twice changes nothing."""
        agent = self._load(Agent, agent_id, ("id",), "agent")
        if not agent.active:
            return Written(agent.id, None)
        agent.deactivate()
        changed: list[Aggregate] = [agent]
        claim = self._find(Claim.create_id(EMAIL_CLAIM, agent.email))
        if claim is not None and claim.owner_id == agent.id:
            claim.release()
            changed.append(claim)
        return Written(agent.id, self._store(*changed))

    def _check_agents(self, field: tuple[str, ...], agent_ids: list[UUID], joining: bool = True) -> None:
        """Each is an agent; `joining` (a group): an active one."""
        for i, agent_id in enumerate(agent_ids):
            agent = self._find(agent_id)
            if not isinstance(agent, Agent):
                raise not_found((*field, str(i)), f"agent {agent_id}")
            if joining and not agent.active:
                raise deactivated((*field, str(i)), agent)

    def create_agent_group(self, name: str, member_ids: list[UUID]) -> Written:
        errors = Collector()
        check_name(errors, ("input", "name"), name)
        errors.raise_if_any()
        self._check_agents(("input", "memberIds"), member_ids)
        group = AgentGroup(name=name.strip(), member_ids=list(dict.fromkeys(member_ids)))
        return Written(group.id, self._store(group))

    @retrying()
    def add_group_members(self, group_id: UUID, agent_ids: list[UUID]) -> Written:
        group = self._load(AgentGroup, group_id, ("groupId",), "group")
        self._check_agents(("agentIds",), agent_ids)
        fresh = group.joining(agent_ids)
        if fresh:
            group.add_members(fresh)
        return Written(group.id, self._store(group))

    @retrying()
    def remove_group_members(self, group_id: UUID, agent_ids: list[UUID]) -> Written:
        group = self._load(AgentGroup, group_id, ("groupId",), "group")
        self._check_agents(("agentIds",), agent_ids, joining=False)
        leaving = [a for a in dict.fromkeys(agent_ids) if a in group.member_ids]
        if leaving:
            group.remove_members(leaving)
        return Written(group.id, self._store(group))

    @retrying()
    def delete_agent_group(self, group_id: UUID) -> Written:
        group = self._load(AgentGroup, group_id, ("id",), "group")
        rules = self.references.rules_using_group(group_id)
        if rules:
            raise invalid(("id",), f"routing rules use this group: {', '.join(rules)}", "IN_USE")
        group.delete()
        return Written(group.id, self._store(group))
