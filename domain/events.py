"""The event classes that the assigner and the views handle, typed, for dispatch by class.

Events made by eventsourcing's @event decorator have classes only at run time (mypy sees the
decorated method, not the class). Each is named here with the shape its handlers read: a
Protocol of read-only attributes, checked against the real class's fields on import, so a
renamed or dropped attribute fails at start and a handler reading an attribute its Protocol
lacks fails in mypy. Event classes declared in the aggregate's body (Conversation.Opened,
Conversation.MessageReceived, Mailbox.Bound, Agent.Created, ...) are typed already: handlers
use those classes themselves.

Dispatch is by exact class (`type(event)`), never by subclass: the classes here are those the
log records (after the mapper's upcasting, the same class whatever version was stored).
"""

from __future__ import annotations

from dataclasses import fields
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from domain.agents import Agent, AgentGroup
from domain.conversation import Conversation
from domain.customers import Account, Contact
from domain.mailbox import Mailbox
from domain.reply import Reply
from domain.routing import RoutingRule, RuleSpec
from domain.sidebar import RecordData, SidebarRecord, SidebarSource, SourceSpec
from domain.tokens import ApiToken
from domain.values import AgentStatus, AssignmentStrategy, MailProtocol, ServerSettings


class Event(Protocol):
    """What every recorded event has."""

    @property
    def originator_id(self) -> UUID: ...
    @property
    def originator_version(self) -> int: ...
    @property
    def timestamp(self) -> datetime: ...


# ---------------------------------------------------------------------- shapes


class MailboxSettingsChanged(Event, Protocol):
    @property
    def display_name(self) -> str: ...
    @property
    def protocol(self) -> MailProtocol: ...
    @property
    def incoming(self) -> ServerSettings: ...
    @property
    def outgoing(self) -> ServerSettings | None: ...


class MailboxReplySettingsChanged(Event, Protocol):
    @property
    def subject_template(self) -> str: ...
    @property
    def footer(self) -> str: ...


class MailboxFoldersChanged(Event, Protocol):
    @property
    def folders(self) -> list[str]: ...


class MailboxSyncFailed(Event, Protocol):
    @property
    def error(self) -> str: ...


class AgentEdited(Event, Protocol):
    @property
    def name(self) -> str: ...
    @property
    def email(self) -> str: ...


class AgentStatusChanged(Event, Protocol):
    @property
    def status(self) -> AgentStatus: ...


class AgentCapacityChanged(Event, Protocol):
    @property
    def capacity(self) -> int | None: ...


class MembersChanged(Event, Protocol):
    @property
    def agent_ids(self) -> list[UUID]: ...


class RuleChanged(Event, Protocol):
    @property
    def spec(self) -> RuleSpec: ...


class AccountUpdated(Event, Protocol):
    @property
    def name(self) -> str: ...
    @property
    def domains(self) -> list[str]: ...


class OwnerChanged(Event, Protocol):
    @property
    def owner_id(self) -> UUID | None: ...


class ContactUpdated(Event, Protocol):
    @property
    def name(self) -> str | None: ...
    @property
    def account_id(self) -> UUID | None: ...


class Routed(Event, Protocol):
    @property
    def rule_id(self) -> UUID: ...
    @property
    def group_ids(self) -> list[UUID]: ...
    @property
    def decided_at(self) -> int: ...


class Decision(Event, Protocol):
    """What Queued and Assigned share: how and why the assigner (or an admin) decided."""

    @property
    def strategy(self) -> AssignmentStrategy | None: ...
    @property
    def reason(self) -> str: ...


class Queued(Decision, Protocol):
    @property
    def strategy(self) -> AssignmentStrategy: ...
    @property
    def decided_at(self) -> int: ...


class Assigned(Decision, Protocol):
    @property
    def agent_id(self) -> UUID: ...
    @property
    def previous_id(self) -> UUID | None: ...
    @property
    def decided_by(self) -> str: ...
    @property
    def decided_at(self) -> int | None: ...
    @property
    def rule_id(self) -> UUID | None: ...
    @property
    def override(self) -> bool: ...


class Closed(Event, Protocol):
    @property
    def assignee_id(self) -> UUID | None: ...


class Reopened(Event, Protocol):
    @property
    def previous_assignee_id(self) -> UUID | None: ...


def event_class(aggregate: type[Any], name: str, shape: object) -> Any:
    """The event class `name` of `aggregate`, checked to have every attribute of `shape`."""
    cls = getattr(aggregate, name)
    wanted = {n for k in getattr(shape, "__mro__", ()) for n, v in vars(k).items() if isinstance(v, property)}
    missing = wanted - {f.name for f in fields(cls)}
    if missing:
        raise TypeError(f"{cls.__qualname__} has no {sorted(missing)}")
    return cls


# ---------------------------------------------------------------------- the classes

MAILBOX_SETTINGS_CHANGED: type[MailboxSettingsChanged] = event_class(
    Mailbox, "SettingsChanged", MailboxSettingsChanged)
MAILBOX_REPLY_SETTINGS_CHANGED: type[MailboxReplySettingsChanged] = event_class(
    Mailbox, "ReplySettingsChanged", MailboxReplySettingsChanged)
MAILBOX_DISABLED: type[Event] = event_class(Mailbox, "Disabled", Event)
MAILBOX_ENABLED: type[Event] = event_class(Mailbox, "Enabled", Event)
MAILBOX_FOLDERS_CHANGED: type[MailboxFoldersChanged] = event_class(Mailbox, "FoldersChanged", MailboxFoldersChanged)
MAILBOX_SYNC_FAILED: type[MailboxSyncFailed] = event_class(Mailbox, "SyncFailed", MailboxSyncFailed)
MAILBOX_SYNC_RECOVERED: type[Event] = event_class(Mailbox, "SyncRecovered", Event)
MAILBOX_DELETED: type[Event] = event_class(Mailbox, "Deleted", Event)

AGENT_EDITED: type[AgentEdited] = event_class(Agent, "Edited", AgentEdited)
AGENT_STATUS_CHANGED: type[AgentStatusChanged] = event_class(Agent, "StatusChanged", AgentStatusChanged)
AGENT_CAPACITY_CHANGED: type[AgentCapacityChanged] = event_class(Agent, "CapacityChanged", AgentCapacityChanged)
AGENT_DEACTIVATED: type[Event] = event_class(Agent, "Deactivated", Event)
MEMBERS_ADDED: type[MembersChanged] = event_class(AgentGroup, "MembersAdded", MembersChanged)
MEMBERS_REMOVED: type[MembersChanged] = event_class(AgentGroup, "MembersRemoved", MembersChanged)
GROUP_DELETED: type[Event] = event_class(AgentGroup, "Deleted", Event)

RULE_CHANGED: type[RuleChanged] = event_class(RoutingRule, "Changed", RuleChanged)
RULE_DELETED: type[Event] = event_class(RoutingRule, "Deleted", Event)

ACCOUNT_UPDATED: type[AccountUpdated] = event_class(Account, "Updated", AccountUpdated)
ACCOUNT_OWNER_CHANGED: type[OwnerChanged] = event_class(Account, "OwnerChanged", OwnerChanged)
CONTACT_UPDATED: type[ContactUpdated] = event_class(Contact, "Updated", ContactUpdated)
CONTACT_OWNER_CHANGED: type[OwnerChanged] = event_class(Contact, "OwnerChanged", OwnerChanged)

ROUTED: type[Routed] = event_class(Conversation, "Routed", Routed)
QUEUED: type[Queued] = event_class(Conversation, "Queued", Queued)
LEFT_UNROUTED: type[Event] = event_class(Conversation, "LeftUnrouted", Event)
ASSIGNED: type[Assigned] = event_class(Conversation, "Assigned", Assigned)
CLOSED: type[Closed] = event_class(Conversation, "Closed", Closed)
REOPENED: type[Reopened] = event_class(Conversation, "Reopened", Reopened)

TOKEN_REVOKED: type[Event] = event_class(ApiToken, "Revoked", Event)


# ---------------------------------------------------------------------- replies (domain/reply.py)


class ReplyStep(Event, Protocol):
    @property
    def attempt(self) -> int: ...


class ReplyClaimed(ReplyStep, Protocol):
    @property
    def worker(self) -> str: ...


class ReplySent(ReplyStep, Protocol):
    @property
    def response(self) -> str: ...
    @property
    def confirmed(self) -> bool: ...


class ReplyDeferred(ReplyStep, Protocol):
    @property
    def reason(self) -> str: ...
    @property
    def retry_at(self) -> datetime: ...


class ReplyFailed(ReplyStep, Protocol):
    @property
    def reason(self) -> str: ...


class ReplyBounced(Event, Protocol):
    @property
    def reason(self) -> str: ...
    @property
    def report_id(self) -> UUID: ...
    @property
    def mailbox_id(self) -> UUID: ...


REPLY_CLAIMED: type[ReplyClaimed] = event_class(Reply, "Claimed", ReplyClaimed)
REPLY_HANDED_OVER: type[ReplyStep] = event_class(Reply, "HandedOver", ReplyStep)
REPLY_SENT: type[ReplySent] = event_class(Reply, "Sent", ReplySent)
REPLY_DEFERRED: type[ReplyDeferred] = event_class(Reply, "Deferred", ReplyDeferred)
REPLY_FAILED: type[ReplyFailed] = event_class(Reply, "Failed", ReplyFailed)
REPLY_BOUNCED: type[ReplyBounced] = event_class(Reply, "Bounced", ReplyBounced)


# ---------------------------------------------------------------------- the sidebar (domain/sidebar.py)


class SidebarSourceChanged(Event, Protocol):
    @property
    def spec(self) -> SourceSpec: ...


class SidebarSourceAuthChanged(Event, Protocol):
    @property
    def auth_ref(self) -> UUID | None: ...


class SidebarRecordUpdated(Event, Protocol):
    @property
    def data(self) -> RecordData: ...


SIDEBAR_SOURCE_CHANGED: type[SidebarSourceChanged] = event_class(SidebarSource, "Changed", SidebarSourceChanged)
SIDEBAR_SOURCE_AUTH_CHANGED: type[SidebarSourceAuthChanged] = event_class(
    SidebarSource, "AuthChanged", SidebarSourceAuthChanged)
SIDEBAR_SOURCE_DELETED: type[Event] = event_class(SidebarSource, "Deleted", Event)
SIDEBAR_RECORD_UPDATED: type[SidebarRecordUpdated] = event_class(SidebarRecord, "Updated", SidebarRecordUpdated)
SIDEBAR_RECORD_DELETED: type[Event] = event_class(SidebarRecord, "Deleted", Event)
