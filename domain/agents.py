"""Agents (who answer) and agent groups (whom rules route to, members in joining order)."""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.values import AgentStatus


class Agent(Aggregate):
    """An agent. Deactivation is one-way: a deactivated agent is kept (its history stays
    readable, it is still listed) but takes no assignment and no token of it is accepted. Nothing
    is recorded on an agent after its Deactivated event (the commands refuse every change), so
    its latest event alone tells whether it is deactivated (TokenCommands reads only that)."""

    TOPIC = "mailroom:Agent"

    class Created(Aggregate.Created):
        TOPIC = "mailroom:Agent.Created"
        name: str
        email: str
        status: AgentStatus
        capacity: int | None

    def __init__(self, name: str, email: str, status: AgentStatus, capacity: int | None) -> None:
        self.name = name
        self.email = email
        self.status = status
        self.capacity = capacity
        self.active = True

    @event("Edited", topic="mailroom:Agent.Edited")
    def edit(self, name: str, email: str) -> None:
        self.name = name
        self.email = email

    @event("StatusChanged", topic="mailroom:Agent.StatusChanged")
    def change_status(self, status: AgentStatus) -> None:
        self.status = status

    @event("CapacityChanged", topic="mailroom:Agent.CapacityChanged")
    def change_capacity(self, capacity: int | None) -> None:
        self.capacity = capacity

    @event("Deactivated", topic="mailroom:Agent.Deactivated")
    def deactivate(self) -> None:
        self.active = False


class AgentGroup(Aggregate):
    TOPIC = "mailroom:AgentGroup"

    class Created(Aggregate.Created):
        TOPIC = "mailroom:AgentGroup.Created"
        name: str
        member_ids: list[UUID]

    def __init__(self, name: str, member_ids: list[UUID]) -> None:
        self.name = name
        self.member_ids = list(member_ids)
        self.deleted = False

    def joining(self, agent_ids: list[UUID]) -> list[UUID]:
        """Those of agent_ids not yet members, first mention first."""
        fresh: list[UUID] = []
        for agent_id in agent_ids:
            if agent_id not in self.member_ids and agent_id not in fresh:
                fresh.append(agent_id)
        return fresh

    @event("MembersAdded", topic="mailroom:AgentGroup.MembersAdded")
    def add_members(self, agent_ids: list[UUID]) -> None:
        self.member_ids.extend(agent_ids)

    @event("MembersRemoved", topic="mailroom:AgentGroup.MembersRemoved")
    def remove_members(self, agent_ids: list[UUID]) -> None:
        self.member_ids = [m for m in self.member_ids if m not in agent_ids]

    @event("Deleted", topic="mailroom:AgentGroup.Deleted")
    def delete(self) -> None:
        self.deleted = True
