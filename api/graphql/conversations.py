"""Conversations, messages, attachments and quarantine: the workspace's reading side."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from enum import Enum
from typing import Any
from uuid import UUID

import strawberry
from strawberry.scalars import JSON

from adapters.database import Row
from api.graphql.common import EVERYONE, READERS, Ctx, blocking, require, services
from api.graphql.types import Agent, AgentGroup, Contact, Mailbox, RoutingRule
from domain.ids import contact_id
from domain.values import AssignmentStrategy, Role
from projections.conversation_queries import ConversationFilter as Filter
from projections.conversation_queries import as_of as conversation_as_of
from projections.conversation_queries import decode_cursor, encode_cursor

MAX_PAGE = 200


@strawberry.enum
class ConversationStatus(Enum):
    UNROUTED = "UNROUTED"
    QUEUED = "QUEUED"
    OPEN = "OPEN"
    CLOSED = "CLOSED"


@strawberry.enum
class MessageDirection(Enum):
    INBOUND = "INBOUND"
    OUTBOUND = "OUTBOUND"


@strawberry.enum
class DeliveryStatus(Enum):
    RECEIVED = "RECEIVED"
    QUEUED = "QUEUED"
    SENT = "SENT"
    FAILED = "FAILED"


@strawberry.type
class Attachment:
    filename: str | None
    content_type: str
    size: int
    url: str = strawberry.field(description="Authenticated download path.")


@strawberry.type
class Message:
    row: strawberry.Private[Row]

    @strawberry.field
    def id(self) -> UUID:
        return UUID(self.row["id"])

    @strawberry.field
    def direction(self) -> MessageDirection:
        return MessageDirection(self.row["direction"])

    @strawberry.field
    def message_id(self) -> str:
        """In its RFC 5322 form, with angle brackets."""
        return f"<{self.row['message_id']}>"

    @strawberry.field(name="from")
    def from_(self) -> str:
        return str(self.row["from_address"])

    @strawberry.field
    def to(self) -> list[str]:
        return list(json.loads(self.row["to_addresses"]))

    @strawberry.field
    def cc(self) -> list[str]:
        return list(json.loads(self.row["cc_addresses"]))

    @strawberry.field
    def subject(self) -> str:
        return str(self.row["subject"])

    @strawberry.field
    def date(self) -> datetime:
        return datetime.fromisoformat(self.row["date"])

    @strawberry.field
    def text(self) -> str:
        return str(self.row["text"])

    @strawberry.field
    async def html(self, info: Ctx) -> str | None:
        """Sanitised when taken in: no scripts, no event handlers, remote content blocked."""
        if not self.row["html_blob"]:
            return None
        data = await blocking(services(info).blobs.get, self.row["html_blob"])
        return None if data is None else data.decode()

    @strawberry.field
    def attachments(self) -> list[Attachment]:
        items = json.loads(self.row["attachments"])
        return [Attachment(filename=a["filename"], content_type=a["content_type"], size=a["size"],
                           url=f"/attachments/{self.row['id']}/{i}") for i, a in enumerate(items)]

    @strawberry.field
    def delivery_status(self) -> DeliveryStatus:
        return DeliveryStatus(self.row["delivery_status"])

    @strawberry.field(description="Loop and noise markers: auto-submitted, bulk, autoreply, bounce, own-address.")
    def markers(self) -> list[str]:
        return list(json.loads(self.row["markers"] or "[]"))


async def mailbox_or_placeholder(info: Ctx, mailbox_id: str, since: str) -> Mailbox:
    row = await blocking(services(info).directory.mailbox, mailbox_id)
    if row is None:  # the mailbox was deleted since: show what is known of it
        row = {"id": mailbox_id, "address": "", "display_name": "(deleted mailbox)", "protocol": "IMAP",
               "incoming": '{"host": "", "port": 0, "security": "NONE", "username": ""}', "outgoing": None,
               "enabled": 0, "failing": 0, "last_error": None, "subject_template": "", "footer": "",
               "folders": None, "created_at": since}
    return Mailbox(row=row)


@strawberry.type
class AssignmentRecord:
    agent: Agent | None
    strategy: AssignmentStrategy
    reason: str
    at: datetime


@strawberry.type
class SidebarRecord:
    record_type: str
    external_id: str
    title: str
    fields: JSON
    url: str | None


@strawberry.type
class SidebarSection:
    source_id: UUID
    title: str
    records: list[SidebarRecord]
    error: str | None


@strawberry.type
class Conversation:
    row: strawberry.Private[Row]
    message_rows: strawberry.Private[list[Row] | None] = None

    @strawberry.field
    def id(self) -> UUID:
        return UUID(self.row["id"])

    @strawberry.field
    async def mailbox(self, info: Ctx) -> Mailbox:
        return await mailbox_or_placeholder(info, self.row["mailbox_id"], self.row["created_at"])

    @strawberry.field
    def subject(self) -> str:
        return str(self.row["subject"])

    @strawberry.field
    def customer_email(self) -> str:
        return str(self.row["customer_email"])

    @strawberry.field(description="The conversation's reference, as in subjects: [#REF].")
    def reference(self) -> str:
        return str(self.row["ref"])

    @strawberry.field
    async def contact(self, info: Ctx) -> Contact | None:
        row = await blocking(services(info).directory.contact, contact_id(self.row["customer_email"]))
        return None if row is None else Contact(row=row)

    @strawberry.field
    def status(self) -> ConversationStatus:
        return ConversationStatus(self.row["status"])

    @strawberry.field
    async def assignee(self, info: Ctx) -> Agent | None:
        if not self.row.get("assignee_id"):
            return None
        row = await blocking(services(info).directory.agent, self.row["assignee_id"])
        return None if row is None else Agent(row=row)

    @strawberry.field
    async def groups(self, info: Ctx) -> list[AgentGroup]:
        rows = [await blocking(services(info).directory.group, g) for g in json.loads(self.row["group_ids"] or "[]")]
        return [AgentGroup(row=r) for r in rows if r is not None]

    @strawberry.field
    async def rule(self, info: Ctx) -> RoutingRule | None:
        if not self.row.get("rule_id"):
            return None
        row = await blocking(services(info).directory.rule, self.row["rule_id"])
        return None if row is None else RoutingRule(row=row)

    @strawberry.field
    async def messages(self, info: Ctx) -> list[Message]:
        rows = self.message_rows
        if rows is None:
            rows = await blocking(services(info).conversations.messages, self.row["id"])
        return [Message(row=r) for r in rows]

    @strawberry.field
    async def assignments(self, info: Ctx) -> list[AssignmentRecord]:
        s = services(info)
        rows = await blocking(s.conversations.assignments, self.row["id"])
        rule = await blocking(s.directory.rule, self.row["rule_id"]) if self.row.get("rule_id") else None
        default = AssignmentStrategy(rule["strategy"]) if rule else AssignmentStrategy.LOAD_BALANCED
        out = []
        for r in rows:
            agent = None
            if r["agent_id"]:
                found = await blocking(s.directory.agent, r["agent_id"])
                agent = Agent(row=found) if found else None
            # A hand-made assignment follows no strategy: it shows the rule's (or the default).
            strategy = AssignmentStrategy(r["strategy"]) if r["strategy"] else default
            out.append(AssignmentRecord(agent=agent, strategy=strategy, reason=r["reason"],
                                        at=datetime.fromisoformat(r["at"])))
        return out

    @strawberry.field
    def created_at(self) -> datetime:
        return datetime.fromisoformat(self.row["created_at"])

    @strawberry.field
    def last_message_at(self) -> datetime:
        return datetime.fromisoformat(self.row["last_message_at"])

    @strawberry.field
    def sidebar(self) -> list[SidebarSection]:
        return []  # no sidebar sources exist yet


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class ConversationEdge:
    cursor: str
    node: Conversation


@strawberry.type
class ConversationConnection:
    edges: list[ConversationEdge]
    page_info: PageInfo
    total_count: int


@strawberry.input
class ConversationFilter:
    status: ConversationStatus | None = None
    assignee_id: UUID | None = None
    mailbox_id: UUID | None = None
    group_id: UUID | None = None
    customer_email: str | None = None


@strawberry.type
class QuarantinedMessage:
    row: strawberry.Private[Row]

    @strawberry.field
    def id(self) -> UUID:
        return UUID(self.row["id"])

    @strawberry.field
    async def mailbox(self, info: Ctx) -> Mailbox:
        return await mailbox_or_placeholder(info, self.row["mailbox_id"], self.row["received_at"])

    @strawberry.field
    def received_at(self) -> datetime:
        return datetime.fromisoformat(self.row["received_at"])

    @strawberry.field
    def reason(self) -> str:
        return str(self.row["reason"])

    @strawberry.field
    def size(self) -> int:
        return int(self.row["size"])

    @strawberry.field
    def raw_url(self) -> str:
        return f"/quarantine/{self.row['id']}/raw"


async def agent_group_ids(info: Ctx) -> tuple[str, ...] | None:
    """None for admins and auditors (everything); an agent's groups otherwise."""
    who = require(info, *EVERYONE)
    if who.role is not Role.AGENT:
        return None
    if who.agent_id is None:
        return ()
    rows = await blocking(services(info).directory.groups_of_agent, who.agent_id)
    return tuple(str(r["id"]) for r in rows)


async def visible(info: Ctx, conversation_id: UUID) -> bool:
    groups = await agent_group_ids(info)
    if groups is None:
        return True
    routed_to = await blocking(services(info).conversations.group_ids_of, conversation_id)
    return bool(routed_to & set(groups))


@strawberry.type
class ConversationQuery:
    @strawberry.field
    async def conversations(
        self, info: Ctx, filter: ConversationFilter | None = None, first: int | None = 50, after: str | None = None
    ) -> ConversationConnection:
        f = filter or ConversationFilter()
        groups = await agent_group_ids(info)
        if f.group_id is not None:
            groups = (str(f.group_id),) if groups is None or str(f.group_id) in groups else ()
        query = Filter(status=f.status.value if f.status else None,
                       assignee_id=str(f.assignee_id) if f.assignee_id else None,
                       mailbox_id=str(f.mailbox_id) if f.mailbox_id else None,
                       customer_email=f.customer_email.strip().lower() if f.customer_email else None,
                       group_ids=groups)
        limit = min(max(first if first is not None else 50, 0), MAX_PAGE)
        cursor = decode_cursor(after) if after else None
        rows, more, total = await blocking(services(info).conversations.page, query, limit, cursor)
        edges = [ConversationEdge(cursor=encode_cursor(r["sort_key"]), node=Conversation(row=r)) for r in rows]
        return ConversationConnection(
            edges=edges, page_info=PageInfo(has_next_page=more, end_cursor=edges[-1].cursor if edges else None),
            total_count=total)

    @strawberry.field
    async def conversation(self, info: Ctx, id: UUID, as_of: datetime | None = None) -> Conversation | None:
        if not await visible(info, id):
            return None
        if as_of is not None:
            moment = as_of if as_of.tzinfo is not None else as_of.replace(tzinfo=UTC)
            past: Any = await blocking(conversation_as_of, services(info).app, id, moment)
            return None if past is None else Conversation(row=past[0], message_rows=past[1])
        row = await blocking(services(info).conversations.conversation, id)
        return None if row is None else Conversation(row=row)

    @strawberry.field
    async def quarantine(self, info: Ctx, mailbox_id: UUID | None = None) -> list[QuarantinedMessage]:
        require(info, *READERS)
        return [QuarantinedMessage(row=r) for r in await blocking(services(info).conversations.quarantine, mailbox_id)]

