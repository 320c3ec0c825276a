"""Output types of the contract, built from read-model rows."""

from __future__ import annotations

import json
from datetime import datetime
from enum import Enum
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import strawberry

from adapters.database import Row
from api.graphql.common import Ctx, blocking, services
from domain import values
from domain.values import (
    AgentStatus,
    AssignmentStrategy,
    ConditionField,
    ConditionMatch,
    ConditionOperator,
    MailProtocol,
    Role,
    TransportSecurity,
)

# The domain's enums are the GraphQL enums (same names and values as the contract).
for _enum in (MailProtocol, TransportSecurity, AgentStatus, AssignmentStrategy, ConditionField,
              ConditionOperator, ConditionMatch):
    strawberry.enum(_enum)


@strawberry.enum
class MailboxStatus(Enum):
    CONNECTED = "CONNECTED"
    FAILING = "FAILING"
    DISABLED = "DISABLED"


@strawberry.type
class ServerSettings:
    host: str
    port: int
    security: TransportSecurity
    username: str

    @staticmethod
    def of(text: str | None) -> ServerSettings | None:
        if text is None:
            return None
        data = json.loads(text)
        return ServerSettings(host=data["host"], port=data["port"],
                              security=values.TransportSecurity(data["security"]), username=data["username"])


@strawberry.type
class ReplySettings:
    subject_template: str
    footer: str


@strawberry.type
class Mailbox:
    row: strawberry.Private[Row]

    @strawberry.field
    def id(self) -> UUID:
        return UUID(self.row["id"])

    @strawberry.field
    def address(self) -> str:
        return str(self.row["address"])

    @strawberry.field
    def display_name(self) -> str:
        return str(self.row["display_name"])

    @strawberry.field
    def protocol(self) -> MailProtocol:
        return values.MailProtocol(self.row["protocol"])

    @strawberry.field
    def incoming(self) -> ServerSettings:
        settings = ServerSettings.of(self.row["incoming"])
        assert settings is not None
        return settings

    @strawberry.field
    def outgoing(self) -> ServerSettings | None:
        return ServerSettings.of(self.row["outgoing"])

    @strawberry.field
    def status(self) -> MailboxStatus:
        if not self.row["enabled"]:
            return MailboxStatus.DISABLED
        return MailboxStatus.FAILING if self.row["failing"] else MailboxStatus.CONNECTED

    @strawberry.field
    async def last_synced_at(self, info: Ctx) -> datetime | None:
        return (await blocking(services(info).sync_state.health, self.row["id"])).last_synced_at

    @strawberry.field
    async def last_error(self, info: Ctx) -> str | None:
        """The latest sync error while the mailbox fails; null once a sync succeeds."""
        health = await blocking(services(info).sync_state.health, self.row["id"])
        return health.last_error or (None if self.row["last_error"] is None else str(self.row["last_error"]))

    @strawberry.field
    def reply_settings(self) -> ReplySettings:
        return ReplySettings(subject_template=self.row["subject_template"], footer=self.row["footer"])

    @strawberry.field
    async def in_workspace(self, info: Ctx) -> bool:
        return await blocking(services(info).directory.in_workspace, self.row["id"])

    @strawberry.field
    async def quarantined_count(self, info: Ctx) -> int:
        return await blocking(services(info).conversations.quarantined_count, self.row["id"])

    @strawberry.field(description="IMAP folders taken in (default INBOX).")
    def folders(self) -> list[str]:
        return list(json.loads(self.row["folders"] or '["INBOX"]'))

    @strawberry.field
    def created_at(self) -> datetime:
        return datetime.fromisoformat(self.row["created_at"])


@strawberry.type
class Agent:
    row: strawberry.Private[Row]

    @strawberry.field
    def id(self) -> UUID:
        return UUID(self.row["id"])

    @strawberry.field
    def name(self) -> str:
        return str(self.row["name"])

    @strawberry.field
    def email(self) -> str:
        return str(self.row["email"])

    @strawberry.field
    def status(self) -> AgentStatus:
        return values.AgentStatus(self.row["status"])

    @strawberry.field
    def capacity(self) -> int | None:
        return None if self.row["capacity"] is None else int(self.row["capacity"])

    @strawberry.field
    async def groups(self, info: Ctx) -> list[AgentGroup]:
        rows = await blocking(services(info).directory.groups_of_agent, self.row["id"])
        return [AgentGroup(row=r) for r in rows]

    @strawberry.field
    async def active_conversations(self, info: Ctx) -> int:
        return await blocking(services(info).conversations.workload, self.row["id"])

    @strawberry.field
    async def received_today(self, info: Ctx) -> int:
        today = datetime.now(ZoneInfo(services(info).settings.timezone)).date().isoformat()
        return await blocking(services(info).conversations.received_on, self.row["id"], today)


async def agent_by_id(info: Ctx, agent_id: str | None) -> Agent | None:
    if agent_id is None:
        return None
    cache = info.context.cache
    key = ("agent", agent_id)
    if key not in cache:
        cache[key] = await blocking(services(info).directory.agent, agent_id)
    row = cache[key]
    return None if row is None else Agent(row=row)


@strawberry.type
class AgentGroup:
    row: strawberry.Private[Row]

    @strawberry.field
    def id(self) -> UUID:
        return UUID(self.row["id"])

    @strawberry.field
    def name(self) -> str:
        return str(self.row["name"])

    @strawberry.field
    async def members(self, info: Ctx) -> list[Agent]:
        rows = await blocking(services(info).directory.members, self.row["id"])
        return [Agent(row=r) for r in rows]


@strawberry.type
class Account:
    row: strawberry.Private[Row]

    @strawberry.field
    def id(self) -> UUID:
        return UUID(self.row["id"])

    @strawberry.field
    def name(self) -> str:
        return str(self.row["name"])

    @strawberry.field
    def domains(self) -> list[str]:
        return list(json.loads(self.row["domains"]))

    @strawberry.field
    async def owner(self, info: Ctx) -> Agent | None:
        return await agent_by_id(info, self.row["owner_id"])


@strawberry.type
class Contact:
    row: strawberry.Private[Row]

    @strawberry.field
    def id(self) -> UUID:
        return UUID(self.row["id"])

    @strawberry.field
    def email(self) -> str:
        return str(self.row["email"])

    @strawberry.field
    def name(self) -> str | None:
        return None if self.row["name"] is None else str(self.row["name"])

    @strawberry.field
    async def account(self, info: Ctx) -> Account | None:
        if self.row["account_id"] is None:
            return None
        row = await blocking(services(info).directory.account, self.row["account_id"])
        return None if row is None else Account(row=row)

    @strawberry.field
    async def owner(self, info: Ctx) -> Agent | None:
        return await agent_by_id(info, self.row["owner_id"])


@strawberry.type
class Condition:
    field: ConditionField
    operator: ConditionOperator
    value: str
    header_name: str | None

    @staticmethod
    def of(data: dict[str, Any]) -> Condition:
        return Condition(field=values.ConditionField(data["field"]),
                         operator=values.ConditionOperator(data["operator"]),
                         value=data["value"], header_name=data["header_name"])


@strawberry.type
class RoutingRule:
    row: strawberry.Private[Row]

    @strawberry.field
    def id(self) -> UUID:
        return UUID(self.row["id"])

    @strawberry.field
    def name(self) -> str:
        return str(self.row["name"])

    @strawberry.field
    def priority(self) -> int:
        return int(self.row["priority"])

    @strawberry.field
    def enabled(self) -> bool:
        return bool(self.row["enabled"])

    @strawberry.field
    def version(self) -> int:
        """Pass as expectedVersion to updateRoutingRule so a stale edit gets CONFLICT, not a lost update."""
        return int(self.row["version"])

    @strawberry.field
    async def mailboxes(self, info: Ctx) -> list[Mailbox]:
        ids = json.loads(self.row["mailbox_ids"])
        rows = [await blocking(services(info).directory.mailbox, i) for i in ids]
        return [Mailbox(row=r) for r in rows if r is not None]

    @strawberry.field
    async def groups(self, info: Ctx) -> list[AgentGroup]:
        ids = json.loads(self.row["group_ids"])
        rows = [await blocking(services(info).directory.group, i) for i in ids]
        return [AgentGroup(row=r) for r in rows if r is not None]

    @strawberry.field
    def match(self) -> ConditionMatch:
        return values.ConditionMatch(self.row["match"])

    @strawberry.field
    def conditions(self) -> list[Condition]:
        return [Condition.of(c) for c in json.loads(self.row["conditions"])]

    @strawberry.field
    def strategy(self) -> AssignmentStrategy:
        return values.AssignmentStrategy(self.row["strategy"])

    @strawberry.field
    def fallback_strategy(self) -> AssignmentStrategy:
        return values.AssignmentStrategy(self.row["fallback_strategy"])


@strawberry.type
class Viewer:
    role: Role
    agent_id: strawberry.Private[str | None]

    @strawberry.field
    async def agent(self, info: Ctx) -> Agent | None:
        return await agent_by_id(info, self.agent_id)
