"""Conversations: an exchange with one customer, opened by an inbound message.

Identities are derived, never random, so taking the same message in twice (re-poll,
crash and restart, two workers, UIDVALIDITY reset) finds what is already there:
- InboundKey(message key) says a message was taken in, and into which conversation;
- a conversation's id comes from the reference of its opening message;
- a quarantined message's id comes from its mailbox and its raw content.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.ids import NAMESPACE
from domain.mail import InboundMail, ReceivedMail
from domain.values import AssignmentStrategy, ConversationStatus

UNROUTED, QUEUED, OPEN, CLOSED = (ConversationStatus.UNROUTED, ConversationStatus.QUEUED, ConversationStatus.OPEN,
                                  ConversationStatus.CLOSED)
ASSIGNER, ADMIN = "assigner", "admin"  # who made an assignment decision


def conversation_id(ref: str) -> UUID:
    return uuid5(NAMESPACE, f"conversation:{ref}")


def message_uuid(key: str) -> UUID:
    return uuid5(NAMESPACE, f"message:{key}")


class Conversation(Aggregate, created_event_name="Opened"):
    TOPIC = "mailroom:Conversation"

    class Created(Aggregate.Created):
        """Base of the creation event; only Opened is ever recorded."""

        TOPIC = "mailroom:Conversation.Created"

    class Opened(Created):
        TOPIC = "mailroom:Conversation.Opened"
        mailbox_id: UUID
        customer_email: str
        subject: str
        ref: str

    def __init__(self, mailbox_id: UUID, customer_email: str, subject: str, ref: str) -> None:
        self.mailbox_id = mailbox_id
        self.customer_email = customer_email
        self.subject = subject
        self.ref = ref
        self.status = UNROUTED
        self.message_count = 0
        self.last_message_at: datetime | None = None
        self.rule_id: UUID | None = None
        self.group_ids: list[UUID] = []
        self.assignee_id: UUID | None = None
        self.previous_assignee_id: UUID | None = None
        self.decided_at: int | None = None  # log position of the latest trigger the assigner decided on

    @staticmethod
    def create_id(ref: str) -> UUID:
        return conversation_id(ref)

    class MessageReceived(Aggregate.Event):
        """A message taken into the conversation. v2 records a ReceivedMail (body text and header
        map by blob key); v1 recorded the InboundMail with both inline, read as v2 by the upcaster."""

        TOPIC = "mailroom:Conversation.MessageReceived"
        class_version = 2
        message_id: UUID
        mailbox_id: UUID
        mail: ReceivedMail

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            mail = state["mail"]
            if isinstance(mail, InboundMail):
                state["mail"] = ReceivedMail.of_legacy(mail)

    @event(MessageReceived)
    def receive(self, message_id: UUID, mailbox_id: UUID, mail: ReceivedMail) -> None:
        self.message_count += 1
        self.last_message_at = mail.date

    # Routing and assignment. `decided_at` is the log position of the event that triggered an
    # assigner decision (None for an admin's): replaying the log re-derives the same decision there.

    @event("Routed", topic="mailroom:Conversation.Routed")
    def route(self, rule_id: UUID, group_ids: list[UUID], decided_at: int) -> None:
        self.rule_id = rule_id
        self.group_ids = list(group_ids)
        self.decided_at = decided_at

    @event("LeftUnrouted", topic="mailroom:Conversation.LeftUnrouted")
    def leave_unrouted(self, reason: str, decided_at: int) -> None:
        self.status = UNROUTED
        self.assignee_id = None  # one routed again after its agent's deactivation no longer has one
        self.decided_at = decided_at

    @event("Queued", topic="mailroom:Conversation.Queued")
    def queue(self, strategy: AssignmentStrategy, reason: str, decided_at: int) -> None:
        self.status = QUEUED
        self.assignee_id = None
        self.decided_at = decided_at

    class Assigned(Aggregate.Event):
        """An assignment: by the assigner (`decided_by` ASSIGNER, `decided_at` the trigger's log
        position) or by hand (ADMIN, `decided_at` None). `override`: an admin assigned it to an
        agent outside the conversation's groups, or while it had none, explicitly (issue 8).
        v1 had no `override`: read as v2 with False (nobody could override then)."""

        TOPIC = "mailroom:Conversation.Assigned"
        class_version = 2
        agent_id: UUID
        previous_id: UUID | None
        strategy: AssignmentStrategy | None
        reason: str
        decided_by: str
        decided_at: int | None
        rule_id: UUID | None
        override: bool

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["override"] = False

    @event(Assigned)
    def assign(self, agent_id: UUID, previous_id: UUID | None, strategy: AssignmentStrategy | None, reason: str,
               decided_by: str, decided_at: int | None, rule_id: UUID | None, override: bool = False) -> None:
        self.status = OPEN
        self.previous_assignee_id = previous_id
        self.assignee_id = agent_id
        if decided_at is not None:
            self.decided_at = decided_at

    @event("Closed", topic="mailroom:Conversation.Closed")
    def close(self, assignee_id: UUID | None) -> None:
        self.status = CLOSED
        self.previous_assignee_id = assignee_id
        self.assignee_id = None

    @event("Reopened", topic="mailroom:Conversation.Reopened")
    def reopen(self, previous_assignee_id: UUID | None) -> None:
        self.status = UNROUTED if self.rule_id is None else QUEUED


class InboundKey(Aggregate):
    """One per inbound message key: taking the same message in again finds it, by one lookup.

    It also holds what tells the same mail served again from a different mail that reuses its
    Message-ID (the raw message's blob key, the digest of what its sender wrote), so that
    telling them apart needs no read of the conversation. Keys recorded before v2 have neither.
    """

    TOPIC = "mailroom:InboundKey"

    class Created(Aggregate.Created):
        TOPIC = "mailroom:InboundKey.Created"
        class_version = 2
        key: str
        conversation_id: UUID
        message_id: UUID
        raw_blob: str | None
        written: str | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["raw_blob"] = None
            state["written"] = None

    def __init__(self, key: str, conversation_id: UUID, message_id: UUID, raw_blob: str | None = None,
                 written: str | None = None) -> None:
        self.key = key
        self.conversation_id = conversation_id
        self.message_id = message_id
        self.raw_blob = raw_blob
        self.written = written

    @staticmethod
    def create_id(key: str) -> UUID:
        return uuid5(NAMESPACE, f"inbound:{key}")


class QuarantinedMessage(Aggregate, created_event_name="Quarantined"):
    """A message kept raw because it could not become part of a conversation."""

    TOPIC = "mailroom:QuarantinedMessage"

    class Created(Aggregate.Created):
        """Base of the creation event; only Quarantined is ever recorded."""

        TOPIC = "mailroom:QuarantinedMessage.Created"

    class Quarantined(Created):
        TOPIC = "mailroom:QuarantinedMessage.Quarantined"
        mailbox_id: UUID
        source: str
        reason: str
        size: int
        raw_blob: str

    def __init__(self, mailbox_id: UUID, source: str, reason: str, size: int, raw_blob: str) -> None:
        self.mailbox_id = mailbox_id
        self.source = source
        self.reason = reason
        self.size = size
        self.raw_blob = raw_blob

    @staticmethod
    def create_id(mailbox_id: UUID, raw_blob: str) -> UUID:
        # By content, not by source: after a UIDVALIDITY reset the same message comes back
        # under a new source, and must not be quarantined twice.
        return uuid5(NAMESPACE, f"quarantine:{mailbox_id}:{raw_blob}")
