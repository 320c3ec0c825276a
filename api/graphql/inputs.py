"""Input types of the contract and their translation into domain values."""

from __future__ import annotations

from uuid import UUID

import strawberry

import api.graphql.types  # noqa: F401  (registers the domain enums with strawberry)
from domain import values
from domain.routing import RuleSpec
from domain.values import (
    AgentStatus,
    AssignmentStrategy,
    ConditionField,
    ConditionMatch,
    ConditionOperator,
    MailProtocol,
    TransportSecurity,
)


@strawberry.input
class ServerSettingsInput:
    host: str
    port: int
    security: TransportSecurity
    username: str | None = strawberry.field(default=None, description="Defaults to the mailbox address.")

    def to_domain(self) -> values.ServerSettings:
        return values.ServerSettings(host=self.host.strip(), port=self.port, security=self.security,
                                     username=(self.username or "").strip())


def settings_of(value: ServerSettingsInput | None) -> values.ServerSettings | None:
    return None if value is None else value.to_domain()


@strawberry.input
class BindMailboxInput:
    address: str
    password: str
    display_name: str | None = None
    protocol: MailProtocol | None = None
    incoming: ServerSettingsInput | None = None
    outgoing: ServerSettingsInput | None = None


@strawberry.input
class UpdateMailboxInput:
    id: UUID
    display_name: str | None = strawberry.UNSET
    password: str | None = strawberry.UNSET
    protocol: MailProtocol | None = strawberry.UNSET
    incoming: ServerSettingsInput | None = strawberry.UNSET
    outgoing: ServerSettingsInput | None = strawberry.UNSET
    enabled: bool | None = strawberry.UNSET
    folders: list[str] | None = strawberry.field(
        default=strawberry.UNSET, description="IMAP folders to take mail in from (default INBOX).")


@strawberry.input
class ReplySettingsInput:
    mailbox_id: UUID
    subject_template: str
    footer: str


@strawberry.input
class CreateAgentInput:
    name: str
    email: str
    capacity: int | None = None
    status: AgentStatus | None = values.AgentStatus.ONLINE


@strawberry.input
class UpdateAgentInput:
    id: UUID
    name: str | None = strawberry.UNSET
    email: str | None = strawberry.UNSET
    capacity: int | None = strawberry.UNSET


@strawberry.input
class CreateAgentGroupInput:
    name: str
    member_ids: list[UUID] | None = strawberry.field(default_factory=list)


@strawberry.input
class UpsertAccountInput:
    id: UUID | None = None
    name: str
    domains: list[str] | None = strawberry.field(default_factory=list)
    owner_id: UUID | None = strawberry.UNSET


@strawberry.input
class UpsertContactInput:
    email: str
    name: str | None = strawberry.UNSET
    account_id: UUID | None = strawberry.UNSET
    owner_id: UUID | None = strawberry.UNSET


@strawberry.input
class ConditionInput:
    field: ConditionField
    operator: ConditionOperator
    value: str | None = ""
    header_name: str | None = None

    def to_domain(self) -> values.Condition:
        return values.Condition(field=self.field, operator=self.operator, value=self.value or "",
                                header_name=(self.header_name or "").strip() or None)


@strawberry.input
class RoutingRuleInput:
    name: str
    mailbox_ids: list[UUID]
    group_ids: list[UUID]
    strategy: AssignmentStrategy
    priority: int | None = 100
    enabled: bool | None = True
    match: ConditionMatch | None = values.ConditionMatch.ALL
    conditions: list[ConditionInput] | None = strawberry.field(default_factory=list)
    fallback_strategy: AssignmentStrategy | None = values.AssignmentStrategy.LOAD_BALANCED

    def to_domain(self) -> RuleSpec:
        return RuleSpec(
            name=self.name, mailbox_ids=list(self.mailbox_ids), group_ids=list(self.group_ids),
            strategy=self.strategy, priority=100 if self.priority is None else self.priority,
            enabled=True if self.enabled is None else self.enabled,
            match=self.match or values.ConditionMatch.ALL,
            conditions=[c.to_domain() for c in self.conditions or []],
            fallback_strategy=self.fallback_strategy or values.AssignmentStrategy.LOAD_BALANCED)
