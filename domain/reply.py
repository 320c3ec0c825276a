"""A reply an agent wrote, and its way out through the outbox.

The message is built once, when the reply is queued (its bytes are a blob, its Message-ID
fixed), so every attempt sends the same message. Delivery is recorded step by step, each step
a new version of this aggregate, so two senders can never both take one step:

    Queued -> Claimed(attempt) -> HandedOver(attempt) -> Sent
                    |                    \\-> (sender gone) Sent, unconfirmed
                    |-> Deferred (4xx, no connection; or the sender gone before the hand-over)
                    \\-> Failed (5xx, or too old)

HandedOver is recorded just before the SMTP transaction's final dot: without it the server was
never given the whole message (a transaction cut before the dot delivers nothing), so the
reply may be sent again; with it, it never is. A Bounced report marks a sent reply FAILED.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.conversation import message_uuid
from domain.mail import message_key

QUEUED, SENT, FAILED = "QUEUED", "SENT", "FAILED"  # Message.deliveryStatus
MAX_AGE = timedelta(hours=24)  # a reply not delivered within a day is given up: FAILED
MAX_DELAY = 60.0  # seconds between attempts, at most


def retry_delay(attempt: int) -> float:
    """Seconds before attempt `attempt + 1`: 1, 2, 4, ... 60."""
    return float(min(MAX_DELAY, 2 ** max(0, attempt - 1)))


@dataclass(frozen=True)
class OutboundMail:
    """The reply as built: what the conversation shows and what the sender transmits."""

    message_id: str  # without angle brackets, on the mailbox's domain
    from_address: str
    from_name: str
    to: list[str]
    cc: list[str]
    subject: str
    date: datetime
    text_blob: str  # the text part as sent (body, footer, quote)
    html_blob: str  # the HTML alternative as sent
    raw_blob: str  # the whole message as sent (RFC 5322 bytes)
    size: int
    in_reply_to: list[str] = field(default_factory=list)
    references: list[str] = field(default_factory=list)


class Reply(Aggregate, created_event_name="Queued"):
    TOPIC = "mailroom:Reply"

    class Created(Aggregate.Created):
        """Base of the creation event; only Queued is ever recorded."""

        TOPIC = "mailroom:Reply.Created"

    class Queued(Created):
        TOPIC = "mailroom:Reply.Queued"
        conversation_id: UUID
        mailbox_id: UUID
        author_id: UUID | None  # the agent who wrote it (None: an admin token without an agent)
        mail: OutboundMail

    @staticmethod
    def create_id(conversation_id: UUID, mailbox_id: UUID, author_id: UUID | None, mail: OutboundMail) -> UUID:
        """The id of the message it is in the conversation: derived from its Message-ID."""
        return message_uuid(message_key(mail.message_id))

    def __init__(self, conversation_id: UUID, mailbox_id: UUID, author_id: UUID | None, mail: OutboundMail) -> None:
        self.conversation_id = conversation_id
        self.mailbox_id = mailbox_id
        self.author_id = author_id
        self.mail = mail
        self.status = QUEUED
        self.attempt = 0
        self.claimed_by: str | None = None  # the sender holding the current attempt
        self.handed_over = False
        self.retry_at: datetime | None = None
        self.reason: str | None = None

    @event("Claimed", topic="mailroom:Reply.Claimed")
    def claim(self, attempt: int, worker: str) -> None:
        self.attempt, self.claimed_by, self.handed_over = attempt, worker, False

    @event("HandedOver", topic="mailroom:Reply.HandedOver")
    def hand_over(self, attempt: int) -> None:
        self.handed_over = True

    @event("Sent", topic="mailroom:Reply.Sent")
    def sent(self, attempt: int, response: str, confirmed: bool) -> None:
        """`confirmed` False: the sender stopped after the hand-over, before the server's answer."""
        self.status, self.claimed_by, self.reason = SENT, None, None if confirmed else response

    @event("Deferred", topic="mailroom:Reply.Deferred")
    def defer(self, attempt: int, reason: str, retry_at: datetime) -> None:
        self.claimed_by, self.handed_over, self.retry_at, self.reason = None, False, retry_at, reason

    @event("Failed", topic="mailroom:Reply.Failed")
    def fail(self, attempt: int, reason: str) -> None:
        self.status, self.claimed_by, self.reason = FAILED, None, reason

    @event("Bounced", topic="mailroom:Reply.Bounced")
    def bounce(self, reason: str, report_id: UUID, mailbox_id: UUID) -> None:
        """A delivery report for this reply (`report_id`: the report's message in the conversation;
        `mailbox_id` its own, for the per-mailbox totals of a reply no longer in the outbox)."""
        self.status, self.claimed_by, self.reason = FAILED, None, reason

    # ------------------------------------------------------------------ the sender's questions

    @property
    def deliverable(self) -> bool:
        return self.status == QUEUED

    def due(self, now: datetime) -> bool:
        return self.deliverable and self.claimed_by is None and (self.retry_at is None or self.retry_at <= now)

    def expired(self, now: datetime) -> bool:
        return now - self.mail.date > MAX_AGE

    def settle_abandoned(self, now: datetime) -> None:
        """Resolves a claim whose sender is gone (it no longer holds the outbox's lease)."""
        if self.claimed_by is None or not self.deliverable:
            return
        if self.handed_over:
            self.sent(self.attempt, "the sender stopped after handing the message to the server, before its "
                      "answer was recorded: counted as sent, never sent again", False)
        else:
            self.defer(self.attempt, "the sender stopped before handing the message over; nothing was delivered",
                       now)


@dataclass(frozen=True)
class Delivery:
    """What the sender needs to transmit a claimed reply."""

    reply_id: UUID
    mailbox_id: UUID
    attempt: int
    envelope_from: str
    recipients: list[str]
    raw_blob: str
    queued_at: datetime = field(compare=False)


def delivery_of(reply: Reply) -> Delivery:
    mail = reply.mail
    return Delivery(reply.id, reply.mailbox_id, reply.attempt, mail.from_address, [*mail.to, *mail.cc],
                    mail.raw_blob, mail.date)


def give_up_reason(reply: Reply, last: str) -> str:
    return f"not delivered within {int(MAX_AGE.total_seconds() // 3600)} hours; last error: {last}"
