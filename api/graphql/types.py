"""Output types of the contract, built from read-model rows."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from datetime import datetime
from enum import Enum
from typing import Any, TypeVar
from uuid import UUID
from zoneinfo import ZoneInfo

import strawberry
from graphql import GraphQLError
from strawberry.dataloader import DataLoader
from strawberry.types.field import StrawberryField

from adapters.database import Row
from api.graphql.common import Ctx, loaders, principal, services
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

FROM_ROW = "mailroom.from_row"
T = TypeVar("T")


def plain(convert: Callable[[Row], Any], description: str | None = None, name: str | None = None) -> Any:
    """A field computed from the type's row on first access and then served by attribute: far
    cheaper per field than a resolver method on long lists (a page of conversations with their
    messages, 1,000 agents), and nothing is computed that the query did not ask for. Not an
    argument of the constructor (types are still made as Type(row=...)); see from_row."""
    field = StrawberryField(graphql_name=name, description=description, metadata={FROM_ROW: convert})
    field.init = False
    return field


class _FromRow:
    """The class attribute behind a plain() field: computes the value from the row into the
    instance's __dict__, which later reads find first (a non-data descriptor)."""

    __slots__ = ("convert", "name")

    def __init__(self, name: str, convert: Callable[[Row], Any]) -> None:
        self.name = name
        self.convert = convert

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        value = instance.__dict__[self.name] = self.convert(instance.__dict__["row"])
        return value


def from_row(cls: type[T]) -> type[T]:
    """Put above @strawberry.type on a type with plain() fields."""
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        convert = field.metadata.get(FROM_ROW)
        if convert is not None:
            setattr(cls, field.name, _FromRow(field.name, convert))
    return cls


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


@from_row
@strawberry.type
class Mailbox:
    row: strawberry.Private[Row]
    id: UUID = plain(lambda r: UUID(r["id"]))
    address: str = plain(lambda r: str(r["address"]))
    display_name: str = plain(lambda r: str(r["display_name"]))
    protocol: MailProtocol = plain(lambda r: values.MailProtocol(r["protocol"]))

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
        return (await loaders(info).sync_health.load(str(self.row["id"]))).last_synced_at

    @strawberry.field
    async def last_error(self, info: Ctx) -> str | None:
        """The latest sync error while the mailbox fails; null once a sync succeeds."""
        health = await loaders(info).sync_health.load(str(self.row["id"]))
        return health.last_error or (None if self.row["last_error"] is None else str(self.row["last_error"]))

    @strawberry.field
    def reply_settings(self) -> ReplySettings:
        return ReplySettings(subject_template=self.row["subject_template"], footer=self.row["footer"])

    @strawberry.field
    async def in_workspace(self, info: Ctx) -> bool:
        return await loaders(info).in_workspace.load(str(self.row["id"]))

    @strawberry.field
    async def quarantined_count(self, info: Ctx) -> int:
        return await loaders(info).quarantined.load(str(self.row["id"]))

    @strawberry.field(description="IMAP folders taken in (default INBOX).")
    def folders(self) -> list[str]:
        return list(json.loads(self.row["folders"] or '["INBOX"]'))

    @strawberry.field
    def created_at(self) -> datetime:
        return datetime.fromisoformat(self.row["created_at"])


@from_row
@strawberry.type
class Agent:
    row: strawberry.Private[Row]
    id: UUID = plain(lambda r: UUID(r["id"]))
    name: str = plain(lambda r: str(r["name"]))
    email: str = plain(lambda r: str(r["email"]))
    status: AgentStatus = plain(lambda r: values.AgentStatus(r["status"]))
    capacity: int | None = plain(lambda r: None if r["capacity"] is None else int(r["capacity"]))
    active: bool = plain(lambda r: r.get("active", 1) != 0,
                         "False once deactivated: no assignments, no valid tokens, open conversations routed again.")

    @strawberry.field
    async def groups(self, info: Ctx) -> list[AgentGroup]:
        return [AgentGroup(row=r) for r in await loaders(info).groups_of_agent.load(str(self.row["id"]))]

    @strawberry.field
    async def active_conversations(self, info: Ctx) -> int:
        figures_visible(info, self.row["id"])
        return await loaders(info).workloads.load(str(self.row["id"]))

    @strawberry.field
    async def received_today(self, info: Ctx) -> int:
        figures_visible(info, self.row["id"])
        today = datetime.now(ZoneInfo(services(info).settings.timezone)).date().isoformat()
        return await loaders(info).received_on.load((str(self.row["id"]), today))


def figures_visible(info: Ctx, agent_id: object) -> None:
    """An agent's figures (workload, daily totals) have one visibility rule on every path, as
    for Query.agentWorkloads and dailyTotals: ADMIN and AUDITOR, and an agent its own."""
    who = principal(info)
    if who.role is Role.AGENT and str(who.agent_id) != str(agent_id):
        raise GraphQLError("an AGENT token may read only its own figures (activeConversations, "
                           "receivedToday)", extensions={"code": "FORBIDDEN"})


def rules_visible(info: Ctx) -> bool:
    """Routing rules are configuration: ADMIN and AUDITOR only, on every path to them."""
    return principal(info).role is not Role.AGENT


async def agent_by_id(info: Ctx, agent_id: object | None) -> Agent | None:
    if not agent_id:
        return None
    row = await loaders(info).agents.load(str(agent_id))
    return None if row is None else Agent(row=row)


async def agents_by_id(info: Ctx, agent_ids: list[Any]) -> list[Agent | None]:
    """In the order given; None where no id or no such agent."""
    wanted = list(dict.fromkeys(str(a) for a in agent_ids if a))
    found = dict(zip(wanted, await loaders(info).agents.load_many(wanted), strict=True))
    return [Agent(row=row) if a and (row := found.get(str(a))) is not None else None for a in agent_ids]


async def rows_by_id(loader: DataLoader[str, Row | None], ids: list[Any]) -> list[Row]:
    """The rows that exist, in the order of the ids."""
    return [row for row in await loader.load_many([str(i) for i in ids]) if row is not None]


@from_row
@strawberry.type
class AgentGroup:
    row: strawberry.Private[Row]
    id: UUID = plain(lambda r: UUID(r["id"]))
    name: str = plain(lambda r: str(r["name"]))

    @strawberry.field
    async def members(self, info: Ctx) -> list[Agent]:
        return [Agent(row=r) for r in await loaders(info).members.load(str(self.row["id"]))]


@from_row
@strawberry.type
class Account:
    row: strawberry.Private[Row]
    id: UUID = plain(lambda r: UUID(r["id"]))
    name: str = plain(lambda r: str(r["name"]))

    @strawberry.field
    def domains(self) -> list[str]:
        return list(json.loads(self.row["domains"]))

    @strawberry.field
    async def owner(self, info: Ctx) -> Agent | None:
        return await agent_by_id(info, self.row["owner_id"])


@from_row
@strawberry.type
class Contact:
    row: strawberry.Private[Row]
    id: UUID = plain(lambda r: UUID(r["id"]))
    email: str = plain(lambda r: str(r["email"]))
    name: str | None = plain(lambda r: None if r["name"] is None else str(r["name"]))

    @strawberry.field
    async def account(self, info: Ctx) -> Account | None:
        if self.row["account_id"] is None:
            return None
        row = await loaders(info).accounts.load(str(self.row["account_id"]))
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


@from_row
@strawberry.type
class RoutingRule:
    row: strawberry.Private[Row]
    id: UUID = plain(lambda r: UUID(r["id"]))
    name: str = plain(lambda r: str(r["name"]))
    priority: int = plain(lambda r: int(r["priority"]))
    enabled: bool = plain(lambda r: bool(r["enabled"]))

    @strawberry.field
    def version(self) -> int:
        """Pass as expectedVersion to updateRoutingRule so a stale edit gets CONFLICT, not a lost update."""
        return int(self.row["version"])

    @strawberry.field
    async def mailboxes(self, info: Ctx) -> list[Mailbox]:
        return [Mailbox(row=r) for r in await rows_by_id(loaders(info).mailboxes, json.loads(self.row["mailbox_ids"]))]

    @strawberry.field
    async def groups(self, info: Ctx) -> list[AgentGroup]:
        return [AgentGroup(row=r) for r in await rows_by_id(loaders(info).groups, json.loads(self.row["group_ids"]))]

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
