"""Conversations, messages, attachments and quarantine: the workspace's reading side."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from datetime import UTC, datetime
from enum import Enum
from typing import Any, cast
from uuid import UUID

import strawberry
from strawberry.dataloader import DataLoader
from strawberry.scalars import JSON
from strawberry.types.nodes import SelectedField

from adapters.database import Row
from api.graphql.common import EVERYONE, READERS, Ctx, blocking, loaders, require, services
from api.graphql.executor import READY
from api.graphql.types import (
    Agent,
    AgentGroup,
    Contact,
    Mailbox,
    RoutingRule,
    agent_by_id,
    agents_by_id,
    from_row,
    plain,
    rows_by_id,
    rules_visible,
)
from api.services import Services
from api.sidebar import SectionView
from domain.commands.tokens import Principal
from domain.ids import contact_id
from domain.values import AssignmentStrategy, ConversationStatus, Role
from projections.conversation_queries import ConversationFilter as Filter
from projections.conversation_queries import as_of as conversation_as_of
from projections.conversation_queries import decode_cursor, encode_cursor

MAX_PAGE = 200


strawberry.enum(ConversationStatus)  # the domain enum is the GraphQL enum


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


@from_row
@strawberry.type
class Message:
    row: strawberry.Private[Row]
    id: UUID = plain(lambda r: UUID(r["id"]))
    direction: MessageDirection = plain(lambda r: MessageDirection(r["direction"]))
    message_id: str = plain(lambda r: f"<{r['message_id']}>")  # its RFC 5322 form, with angle brackets
    from_: str = plain(lambda r: str(r["from_address"]), name="from")
    from_name: str | None = plain(lambda r: r["from_name"] or None)
    subject: str = plain(lambda r: str(r["subject"]))
    date: datetime = plain(lambda r: datetime.fromisoformat(r["date"]))

    @strawberry.field
    def to(self) -> list[str]:
        return list(json.loads(self.row["to_addresses"]))

    @strawberry.field
    def cc(self) -> list[str]:
        return list(json.loads(self.row["cc_addresses"]))

    @strawberry.field
    def text(self) -> str:
        return str(self.row["text"])

    @strawberry.field
    async def html(self, info: Ctx) -> str | None:
        """Sanitised when taken in: no scripts, no event handlers, remote content blocked."""
        if not self.row["html_blob"]:
            return None
        data = await loaders(info).blobs.load(str(self.row["html_blob"]))
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


def sidebar_loader(info: Ctx) -> DataLoader[tuple[str, str], list[SectionView]]:
    """One per request: the conversations of a page that ask for `sidebar` are resolved together
    (api/sidebar.py: one statement per pushed-records source, one request per distinct URL)."""
    cache = info.context.cache
    if "sidebar" not in cache:
        resolver = services(info).sidebar

        async def load(keys: list[tuple[str, str]]) -> list[list[SectionView]]:
            return await resolver.resolve(keys)

        cache["sidebar"] = DataLoader(load_fn=load)
    loader: DataLoader[tuple[str, str], list[SectionView]] = cache["sidebar"]
    return loader


async def _nothing() -> None:
    return None


async def groups_by_id(info: Ctx, ids: list[str]) -> list[AgentGroup]:
    return [AgentGroup(row=r) for r in await rows_by_id(loaders(info).groups, ids)]


async def messages_of(info: Ctx, conversation_id: str) -> list[Message]:
    return [Message(row=r) for r in await loaders(info).messages.load(conversation_id)]


async def mailbox_or_placeholder(info: Ctx, mailbox_id: str, since: str) -> Mailbox:
    return mailbox_of(mailbox_id, since, await loaders(info).mailboxes.load(str(mailbox_id)))


def mailbox_of(mailbox_id: str, since: str, row: Row | None) -> Mailbox:
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


@from_row
@strawberry.type
class Conversation:
    row: strawberry.Private[Row]
    message_rows: strawberry.Private[list[Row] | None] = None
    # Nested values a page loaded for all its conversations at once (see read_page): resolvers
    # answer these without an await each, and FastExecutor without calling them (READY).
    ready: strawberry.Private[dict[str, Any]] = dataclasses.field(default_factory=dict)
    id: UUID = plain(lambda r: UUID(r["id"]))
    subject: str = plain(lambda r: str(r["subject"]))
    customer_email: str = plain(lambda r: str(r["customer_email"]))
    reference: str = plain(lambda r: str(r["ref"]), "The conversation's reference, as in subjects: [#REF].")
    status: ConversationStatus = plain(lambda r: ConversationStatus(r["status"]))
    created_at: datetime = plain(lambda r: datetime.fromisoformat(r["created_at"]))
    last_message_at: datetime = plain(lambda r: datetime.fromisoformat(r["last_message_at"]))

    @strawberry.field(graphql_type=Mailbox, metadata={READY: "mailbox"})
    def mailbox(self, info: Ctx) -> Any:
        if "mailbox" in self.ready:
            return self.ready["mailbox"]
        return mailbox_or_placeholder(info, self.row["mailbox_id"], self.row["created_at"])

    @strawberry.field
    async def contact(self, info: Ctx) -> Contact | None:
        row = await loaders(info).contacts.load(str(contact_id(self.row["customer_email"])))
        return None if row is None else Contact(row=row)

    @strawberry.field(graphql_type=Agent | None, metadata={READY: "assignee"})
    def assignee(self, info: Ctx) -> Any:
        if "assignee" in self.ready:
            return self.ready["assignee"]
        return agent_by_id(info, self.row.get("assignee_id"))

    @strawberry.field(graphql_type=list[AgentGroup], metadata={READY: "groups"})
    def groups(self, info: Ctx) -> Any:
        if "groups" in self.ready:
            return self.ready["groups"]
        return groups_by_id(info, self.group_ids())

    def group_ids(self) -> list[str]:
        return [str(g) for g in json.loads(self.row["group_ids"] or "[]")]

    @strawberry.field
    async def rule(self, info: Ctx) -> RoutingRule | None:
        # Rules (conditions, groups, mailboxes) are configuration: their one visibility rule,
        # as for Query.routingRules, is ADMIN and AUDITOR; an agent sees null here.
        if not self.row.get("rule_id") or not rules_visible(info):
            return None
        row = await loaders(info).rules.load(str(self.row["rule_id"]))
        return None if row is None else RoutingRule(row=row)

    @strawberry.field(graphql_type=list[Message], metadata={READY: "messages"})
    def messages(self, info: Ctx) -> Any:
        if "messages" in self.ready:
            return self.ready["messages"]
        if self.message_rows is not None:
            return [Message(row=r) for r in self.message_rows]
        return messages_of(info, str(self.row["id"]))

    @strawberry.field
    async def assignments(self, info: Ctx) -> list[AssignmentRecord]:
        rows = await loaders(info).assignments.load(str(self.row["id"]))
        rule_id = self.row.get("rule_id")
        rule, agents = await asyncio.gather(
            loaders(info).rules.load(str(rule_id)) if rule_id else _nothing(),
            agents_by_id(info, [r["agent_id"] for r in rows]))
        default = AssignmentStrategy(rule["strategy"]) if rule else AssignmentStrategy.LOAD_BALANCED
        # A hand-made assignment follows no strategy: it shows the rule's (or the default).
        return [AssignmentRecord(agent=agent, strategy=AssignmentStrategy(r["strategy"]) if r["strategy"] else default,
                                 reason=r["reason"], at=datetime.fromisoformat(r["at"]))
                for r, agent in zip(rows, agents, strict=True)]

    @strawberry.field(description="The customer's related records, one section per enabled sidebar source, in "
                      "position order; a source that could not be read has an error and no records.")
    async def sidebar(self, info: Ctx) -> list[SidebarSection]:
        sections = await sidebar_loader(info).load((str(self.row["id"]), str(self.row["customer_email"])))
        return [SidebarSection(source_id=UUID(s.source_id), title=s.title, error=s.error, records=[
            SidebarRecord(record_type=r.record_type, external_id=r.external_id, title=r.title,
                          fields=cast(JSON, r.fields), url=r.url) for r in s.records]) for s in sections]


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class ConversationEdge:
    cursor: str
    node: Conversation


TOTAL_COUNT = (
    "All the conversations that match the filter and the caller may see, not only this page; "
    "counted only when asked for. Read from maintained counts (constant time) with no filter, "
    "a status, a groupId, or a groupId and a status (an AGENT token counts as a groupId filter "
    "when the agent is in one group); any other filter (assigneeId, mailboxId, customerEmail, text, "
    "an agent in several groups) counts the matching rows. Exact either way."
)


@strawberry.type
class ConversationConnection:
    edges: list[ConversationEdge]
    page_info: PageInfo
    query: strawberry.Private[Filter]
    total: strawberry.Private[int | None] = None  # counted beside the page, when the query asks for it

    @strawberry.field(description=TOTAL_COUNT)
    async def total_count(self, info: Ctx) -> int:
        if self.total is not None:
            return self.total
        return await blocking(services(info).conversations.count, self.query)


@strawberry.input
class ConversationFilter:
    status: ConversationStatus | None = None
    assignee_id: UUID | None = None
    mailbox_id: UUID | None = None
    group_id: UUID | None = None
    customer_email: str | None = None
    text: str | None = strawberry.field(default=None, description=(
        "Full-text search over subject, message text and customer address (words, prefixes, quoted phrases)."))


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


PREFETCHED = {"mailbox", "assignee", "groups", "messages"}


def asked(info: Ctx, *path: str) -> set[str]:
    """The fields asked at `path` below this field (through fragments): () for the connection's
    own fields, ("edges", "node") for those of each conversation."""

    def names(selections: list[Any], path: tuple[str, ...]) -> set[str]:
        out: set[str] = set()
        for selection in selections:
            if not isinstance(selection, SelectedField):  # a fragment: its selections count here
                out |= names(selection.selections, path)
            elif not path:
                out.add(selection.name)
            elif selection.name == path[0]:
                out |= names(selection.selections, path[1:])
        return out

    return names([s for f in info.selected_fields for s in f.selections], path)


@dataclasses.dataclass
class PageRead:
    """What one page needs from the database, read in one thread hop (read_page)."""

    query: Filter
    agent_groups: list[Row] | None  # an AGENT's groups when read here (None: known, or not an agent)
    rows: list[Row]
    more: bool
    total: int | None
    nested: dict[str, dict[str, Any]]  # per PREFETCHED field asked: loader key -> value


def read_page(s: Services, who: Principal, known_groups: tuple[str, ...] | Unknown | None, f: ConversationFilter,
              limit: int, cursor: str | None, wanted: set[str], counted: bool) -> PageRead:
    """A page's statements one after another in one thread hop (each hop to a thread and back
    costs a wake-up of each; on a busy machine those were a page's slowest part): the agent's
    groups (unless known), the page, its count if asked for, then one statement per kind of
    nested value asked of every conversation (the same ones the loaders would make)."""
    agent_groups = None
    groups: tuple[str, ...] | None = None
    if who.role is Role.AGENT:
        if isinstance(known_groups, Unknown):
            agent_groups = s.directory.groups_of_agent(who.agent_id) if who.agent_id else []
            groups = tuple(str(r["id"]) for r in agent_groups)
        else:
            groups = known_groups
    if f.group_id is not None:
        groups = (str(f.group_id),) if groups is None or str(f.group_id) in groups else ()
    query = Filter(status=f.status.value if f.status else None,
                   assignee_id=str(f.assignee_id) if f.assignee_id else None,
                   mailbox_id=str(f.mailbox_id) if f.mailbox_id else None,
                   customer_email=f.customer_email.strip().lower() if f.customer_email else None,
                   group_ids=groups, text=f.text)
    rows, more = s.conversations.rows(query, limit, cursor)
    total = s.conversations.count(query) if counted else None
    nested: dict[str, dict[str, Any]] = {}

    def by_id(name: str, keys: Any, fetch: Any, default: Any) -> None:
        wanted_keys = list(dict.fromkeys(str(k) for k in keys if k))
        found = fetch(wanted_keys) if wanted_keys else {}
        nested[name] = {k: found.get(k, default()) for k in wanted_keys}

    if rows:
        if "assignee" in wanted:
            by_id("assignee", (r.get("assignee_id") for r in rows), s.directory.agents_by_id, lambda: None)
        if "groups" in wanted:
            by_id("groups", (g for r in rows for g in json.loads(r["group_ids"] or "[]")), s.directory.groups_by_id,
                  lambda: None)
        if "mailbox" in wanted:
            by_id("mailbox", (r["mailbox_id"] for r in rows), s.directory.mailboxes_by_id, lambda: None)
        if "messages" in wanted:
            by_id("messages", (r["id"] for r in rows), s.conversations.messages_of, list)
    return PageRead(query, agent_groups, rows, more, total, nested)


def _fill(info: Ctx, read: PageRead, page: list[Conversation]) -> None:
    """The nested values on each conversation (resolvers then answer without an await), and in
    the request's loaders, which later fields of the request then read instead of the database."""
    load = loaders(info)
    nested = read.nested
    if "assignee" in nested:
        agents = nested["assignee"]
        load.agents.prime_many(agents)
        for c in page:
            row = agents.get(str(c.row.get("assignee_id") or ""))
            c.ready["assignee"] = None if row is None else Agent(row=row)
    if "groups" in nested:
        found = nested["groups"]
        load.groups.prime_many(found)
        for c in page:
            c.ready["groups"] = [AgentGroup(row=row) for g in c.group_ids() if (row := found.get(g)) is not None]
    if "mailbox" in nested:
        mailboxes = nested["mailbox"]
        load.mailboxes.prime_many(mailboxes)
        for c in page:
            c.ready["mailbox"] = mailbox_of(c.row["mailbox_id"], c.row["created_at"],
                                            mailboxes.get(str(c.row["mailbox_id"])))
    if "messages" in nested:
        messages = nested["messages"]
        load.messages.prime_many(messages)
        for c in page:
            c.ready["messages"] = [Message(row=r) for r in messages.get(str(c.row["id"]), [])]


class Unknown:
    """An agent's groups not read yet in this request."""


UNKNOWN = Unknown()


def known_agent_groups(info: Ctx, who: Principal) -> tuple[str, ...] | Unknown | None:
    """An agent's groups if this request's loader has them already (so that one request sees
    one set of groups), else UNKNOWN; None for admins and auditors."""
    if who.role is not Role.AGENT:
        return None
    if who.agent_id is None:
        return ()
    cached = loaders(info).groups_of_agent.cache_map.get(str(who.agent_id))
    if cached is None or not cached.done() or cached.cancelled() or cached.exception() is not None:
        return UNKNOWN
    return tuple(str(r["id"]) for r in cached.result())


async def customer_visible(info: Ctx, customer_email: str) -> bool:
    """A customer is visible to an agent through a conversation of the agent's groups."""
    groups = await agent_group_ids(info)
    if groups is None:
        return True
    if not groups:
        return False
    found = Filter(customer_email=customer_email.strip().lower(), group_ids=groups)
    rows, _ = await blocking(services(info).conversations.rows, found, 1, None)
    return bool(rows)


async def agent_group_ids(info: Ctx) -> tuple[str, ...] | None:
    """None for admins and auditors (everything); an agent's groups otherwise."""
    who = require(info, *EVERYONE)
    if who.role is not Role.AGENT:
        return None
    if who.agent_id is None:
        return ()
    rows = await loaders(info).groups_of_agent.load(str(who.agent_id))
    return tuple(str(r["id"]) for r in rows)


async def visible(info: Ctx, conversation_id: UUID) -> bool:
    """The one visibility rule of a conversation (its messages and attachments with it): an
    agent sees the conversations routed to one of its groups; admins and auditors all."""
    groups = await agent_group_ids(info)
    if groups is None:
        return True
    routed_to = await loaders(info).conversation_groups.load(str(conversation_id))
    return bool(routed_to & set(groups))


@strawberry.type
class ConversationQuery:
    @strawberry.field
    async def conversations(
        self, info: Ctx, filter: ConversationFilter | None = None, first: int | None = 50, after: str | None = None
    ) -> ConversationConnection:
        f = filter or ConversationFilter()
        who = require(info, *EVERYONE)
        limit = min(max(first if first is not None else 50, 0), MAX_PAGE)
        cursor = decode_cursor(after) if after else None
        read = await blocking(read_page, services(info), who, known_agent_groups(info, who), f, limit, cursor,
                              asked(info, "edges", "node") & PREFETCHED, "totalCount" in asked(info))
        if read.agent_groups is not None and who.agent_id is not None:
            loaders(info).groups_of_agent.prime(str(who.agent_id), read.agent_groups)
        page = [Conversation(row=r) for r in read.rows]
        _fill(info, read, page)
        edges = [ConversationEdge(cursor=encode_cursor(c.row["sort_key"]), node=c) for c in page]
        return ConversationConnection(
            edges=edges, page_info=PageInfo(has_next_page=read.more, end_cursor=edges[-1].cursor if edges else None),
            query=read.query, total=read.total)

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

