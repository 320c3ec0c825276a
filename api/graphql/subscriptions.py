"""Subscriptions (issue 13) over graphql-transport-ws: conversationChanges and mailboxChanges.

Authentication. The socket carries no token of its own: `connection_init`'s payload does
({"authorization": "Bearer <token>"}, "Authorization" also read), checked as an HTTP request's
(api/auth.py). Without a valid one the socket is closed with 4403 Forbidden; a subscribe before
connection_init is closed with 4401 Unauthorized (strawberry's protocol handler). The token is
checked again every RECHECK_SECONDS while subscriptions run (an agent's groups are read again
with it): once it is revoked or expired (or its agent deactivated), the socket is closed with
4403 within a few seconds.

What is sent. Changes come from the process's one log reader (api/live.py); each is filtered
here against the conversation's row as the views show it once they include the change: an
AGENT gets those of conversations routed to one of its groups, as for queries; the filter's
status, assigneeId, mailboxId, groupId and customerEmail hold as for `conversations` (`text`
is refused: it is a search, not a property a change can be matched against). A subscriber that
falls QUEUE_LIMIT changes behind is dropped: the socket is closed with 1013 (try again later)
and the client resumes with afterPosition, the position of the last change it received.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.exceptions import ConnectionRejectionError

from adapters.database import Row
from api.auth import who
from api.graphql.common import EVERYONE, READERS, Context, Ctx, require, services
from api.graphql.conversations import Conversation, ConversationFilter
from api.graphql.types import Mailbox
from api.live import ChangeKind, Closed, Dropped, Topic, feed, hub_of
from api.services import Services
from domain.commands.tokens import Principal
from domain.values import Role

log = logging.getLogger("mailroom.subscriptions")

SESSION = "live-session"  # the connection's Session, in the (per connection) context cache
RECHECK_SECONDS = 3.0  # a revoked token's subscriptions end within this and a TICK
TICK_SECONDS = 1.0
PARK_SECONDS = 60.0  # after closing the socket: until the protocol handler cancels the operation
FORBIDDEN = 4403  # graphql-transport-ws: connection_init refused (no, unknown or revoked token)
TRY_AGAIN_LATER = 1013  # a subscriber that fell too far behind; resume with afterPosition
GOING_AWAY = 1001  # the server is shutting down

strawberry.enum(ChangeKind, name="ConversationChangeKind")


@strawberry.type
class ConversationChange:
    position: int = strawberry.field(description=(
        "Log position of the change: pass it as afterPosition to resume after a reconnect without missing one."))
    kind: ChangeKind
    conversation: Conversation = strawberry.field(description="The conversation as it stands after this change.")


@dataclass
class Session:
    """One socket's caller: its token, checked again now and then, and an agent's groups."""

    token: str
    principal: Principal
    groups: tuple[str, ...] | None  # an agent's groups; None: everything (ADMIN, AUDITOR)
    checked_at: float = field(default_factory=time.monotonic)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


def bearer_of(params: Any) -> str:
    if not isinstance(params, dict):
        return ""
    header = params.get("authorization") or params.get("Authorization") or ""
    scheme, _, value = str(header).partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


def groups_of(s: Services, principal: Principal) -> tuple[str, ...] | None:
    if principal.role is not Role.AGENT:
        return None
    if principal.agent_id is None:
        return ()
    return tuple(str(r["id"]) for r in s.directory.groups_of_agent(principal.agent_id))


def identify(s: Services, token: str) -> tuple[Principal | None, tuple[str, ...] | None]:
    principal = who(s, token) if token else None
    return principal, None if principal is None else groups_of(s, principal)


async def connect(context: Context) -> None:
    """connection_init: the token in its payload, or the socket is refused (4403)."""
    token = bearer_of(context.connection_params)
    principal, groups = await asyncio.to_thread(identify, context.services, token)
    if principal is None:
        raise ConnectionRejectionError()
    context.principal = principal
    context.cache[SESSION] = Session(token, principal, groups)


def session_of(info: Ctx) -> Session:
    found = info.context.cache.get(SESSION)
    if not isinstance(found, Session):  # not a socket authenticated by connection_init
        raise GraphQLError("subscriptions are served over graphql-transport-ws only",
                           extensions={"code": "BAD_REQUEST"})
    return found


async def still_allowed(info: Ctx, session: Session) -> bool:
    """The token once more if it was last checked RECHECK_SECONDS ago (shared by the socket's
    subscriptions); an agent's groups are read again with it."""
    if time.monotonic() - session.checked_at < RECHECK_SECONDS:
        return True
    async with session.lock:
        if time.monotonic() - session.checked_at >= RECHECK_SECONDS:
            principal, groups = await asyncio.to_thread(identify, services(info), session.token)
            if principal is None:
                return False
            session.principal, session.groups, session.checked_at = principal, groups, time.monotonic()
    return True


async def end(info: Ctx, code: int, reason: str) -> None:
    """Closes the socket (with every subscription on it), then waits to be cancelled by the
    protocol handler once the client has closed its side: completing the operation itself
    would write to a closed socket."""
    socket = info.context.request
    try:
        if socket is not None:
            await socket.close(code=code, reason=reason)  # type: ignore[call-arg]
    except Exception:  # closed already
        log.debug("closing a subscription socket failed", exc_info=True)
    await asyncio.sleep(PARK_SECONDS)


def group_ids(row: Row) -> list[str]:
    return [str(g) for g in json.loads(row["group_ids"] or "[]")]


def visible(row: Row, groups: tuple[str, ...] | None) -> bool:
    return groups is None or bool(set(groups) & set(group_ids(row)))


def matches(row: Row, f: ConversationFilter | None) -> bool:
    if f is None:
        return True
    if f.status is not None and row["status"] != f.status.value:
        return False
    if f.assignee_id is not None and row.get("assignee_id") != str(f.assignee_id):
        return False
    if f.mailbox_id is not None and row["mailbox_id"] != str(f.mailbox_id):
        return False
    if f.group_id is not None and str(f.group_id) not in group_ids(row):
        return False
    return f.customer_email is None or row["customer_email"] == f.customer_email.strip().lower()


def fresh(info: Ctx) -> None:
    """The socket's context lives as long as the socket: each change is read anew."""
    info.context.refresh()
    info.context.cache.pop("sidebar", None)


async def changes_for(info: Ctx, topic: Topic, after: int | None) -> AsyncGenerator[tuple[Session, Any], None]:
    """The live changes of `topic` (rows as the views show them), the token rechecked as they go;
    the socket closed when the token is no longer valid, or the subscriber is dropped."""
    session = session_of(info)
    try:
        async for change in feed(hub_of(services(info)), topic, after, TICK_SECONDS):
            if not await still_allowed(info, session):
                await end(info, FORBIDDEN, "Forbidden: the token was revoked or has expired")
                return
            if change is not None and change.row is not None:
                fresh(info)
                yield session, change
    except Dropped:
        await end(info, TRY_AGAIN_LATER, "too slow: changes were not read in time; resume with afterPosition")
    except Closed:
        await end(info, GOING_AWAY, "server shutting down")


@strawberry.type
class Subscription:
    @strawberry.subscription(description=(
        "Changes to the conversations the viewer may see, in log order; an AGENT sees its groups' "
        "conversations only."))
    async def conversation_changes(
        self, info: Ctx, filter: ConversationFilter | None = None, after_position: int | None = None
    ) -> AsyncGenerator[ConversationChange, None]:
        require(info, *EVERYONE)
        if filter is not None and getattr(filter, "text", None) is not None:
            raise GraphQLError("a subscription cannot filter by text", extensions={"code": "BAD_USER_INPUT"})
        async for session, change in changes_for(info, "conversation", after_position):
            if visible(change.row, session.groups) and matches(change.row, filter):
                yield ConversationChange(position=change.position, kind=change.kind,
                                         conversation=Conversation(row=change.row))

    @strawberry.subscription(description="Mailbox status changes (CONNECTED / FAILING / DISABLED, lastError); "
                             "ADMIN and AUDITOR.")
    async def mailbox_changes(self, info: Ctx) -> AsyncGenerator[Mailbox, None]:
        require(info, *READERS)
        async for _, change in changes_for(info, "mailbox", None):
            yield Mailbox(row=change.row)
