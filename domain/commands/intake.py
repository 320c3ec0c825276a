"""Taking inbound mail in: each message exactly once, threaded into its conversation.

A batch is saved with one save() (one transaction): the store refuses a second
InboundKey or Conversation for the same derived id, so two workers racing on the
same messages cannot both record them; the loser retries message by message and
finds them taken.

A message is known by its Message-ID. A later message under a known Message-ID is the
same mail again (nothing new) when its raw bytes, or what its sender wrote (all but the
header fields servers add on the way), are the same; otherwise it is a different mail that
reuses the Message-ID, and it is taken in under a key of its own, never dropped.

Finding a message, a duplicate or a thread is a key lookup (InboundKey, by derived id),
never a read of a conversation's events: the key itself holds what tells the same mail from
a different one. A conversation is loaded only to record a message on it.

The conversation records a ReceivedMail: body text and header map by blob key. Their blobs
(InboundMail.text_data(), headers_data()) are stored by the caller before take_in, as the
raw message, HTML and attachments are (adapters/inbound.py): a crash in between leaves an
orphan blob, never an event that refers to nothing.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain.commands.base import Base, Conflict
from domain.conversation import CLOSED, Conversation, InboundKey, QuarantinedMessage, conversation_id, message_uuid
from domain.mail import (
    AUTO_SUBMITTED,
    AUTOREPLY,
    BOUNCE,
    BounceReport,
    InboundMail,
    conversation_ref,
    message_key,
    normalise_message_id,
    refs_in_subject,
)
from domain.reply import FAILED, Reply

SNAPSHOT_EVERY = 32  # conversation events between snapshots


@dataclass(frozen=True)
class Arrival:
    """One fetched message: parsed into `mail`, or a `problem` that quarantines it."""

    source: str
    size: int
    raw_blob: str
    mail: InboundMail | None = None
    problem: str | None = None
    bounce: BounceReport | None = None  # set when the mail is a delivery report


@dataclass
class IntakeResult:
    taken: int = 0
    opened: int = 0
    quarantined: int = 0
    duplicates: int = 0
    position: int | None = None
    conversation_ids: tuple[UUID, ...] = ()

    def add(self, other: IntakeResult) -> None:
        self.taken += other.taken
        self.opened += other.opened
        self.quarantined += other.quarantined
        self.duplicates += other.duplicates
        self.position = other.position or self.position
        self.conversation_ids += other.conversation_ids


class _Batch:
    """What one batch has looked up or created, so messages of the same batch see each other."""

    def __init__(self, app: Base, absent: frozenset[UUID] = frozenset()) -> None:
        self.app = app
        self.absent = absent  # InboundKey ids known not to exist: no lookup needed
        self.keys: dict[str, InboundKey | None] = {}
        self.conversations: dict[UUID, Conversation | None] = {}
        self.new: list[Aggregate] = []
        self.touched: dict[UUID, Conversation] = {}
        self.replies: dict[UUID, Reply] = {}  # our replies that reports in this batch bounce

    def key(self, key: str) -> InboundKey | None:
        if key not in self.keys:
            key_id = InboundKey.create_id(key)
            self.keys[key] = None if key_id in self.absent else self.app._find(key_id)
        return self.keys[key]

    def conversation(self, conversation_id: UUID) -> Conversation | None:
        if conversation_id not in self.conversations:
            found = self.app._find(conversation_id)
            self.conversations[conversation_id] = found if isinstance(found, Conversation) else None
        return self.conversations[conversation_id]

    def bounced_reply(self, report: BounceReport) -> Reply | None:
        """Our reply that a delivery report is about: by the Message-IDs it quotes."""
        for original in report.original_ids:
            reply_id = message_uuid(message_key(original))
            found = self.replies.get(reply_id) or self.app._find(reply_id)
            if isinstance(found, Reply):
                return found
        return None

    def thread(self, mail: InboundMail) -> Conversation | None:
        """DESIGN 4.1: a known Message-ID in In-Reply-To or References (nearest first), else a
        conversation reference token in the subject."""
        for reference in [*mail.in_reply_to, *reversed(mail.references)]:
            known = self.key(message_key(normalise_message_id(reference)))
            if known is not None:
                return self.conversation(known.conversation_id)
        for ref in refs_in_subject(mail.subject):
            found = self.conversation(conversation_id(ref))
            if found is not None:
                return found
        return None


class IntakeCommands(Base):
    # A reply is recorded on its conversation, so the conversation is loaded: from its latest
    # snapshot on, not from its first event, so the cost does not grow with its length.
    snapshotting_intervals = {Conversation: SNAPSHOT_EVERY}

    def take_in(self, mailbox_id: UUID, arrivals: list[Arrival]) -> IntakeResult:
        try:
            return self._take_in(mailbox_id, arrivals)
        except Conflict:
            result = IntakeResult()
            for arrival in arrivals:
                for attempt in range(3):
                    try:
                        result.add(self._take_in(mailbox_id, [arrival]))
                        break
                    except Conflict:
                        if attempt == 2:
                            raise
            return result

    def _take_in(self, mailbox_id: UUID, arrivals: list[Arrival]) -> IntakeResult:
        # One query for which keys exist, instead of a lookup per message and reference.
        candidates = {
            InboundKey.create_id(message_key(normalise_message_id(m)))
            for a in arrivals if a.mail is not None
            for m in (a.mail.message_id, *a.mail.in_reply_to, *a.mail.references)
        }
        batch = _Batch(self, frozenset(candidates - self.known_ids(candidates)))
        result = IntakeResult()
        quarantined: set[UUID] = set()
        for arrival in arrivals:
            if arrival.mail is None:
                qid = QuarantinedMessage.create_id(mailbox_id, arrival.raw_blob)
                if qid in quarantined or self._find(qid) is not None:
                    result.duplicates += 1
                    continue
                quarantined.add(qid)
                batch.new.append(QuarantinedMessage(
                    mailbox_id=mailbox_id, source=arrival.source, reason=arrival.problem or "unknown",
                    size=arrival.size, raw_blob=arrival.raw_blob))
                result.quarantined += 1
                continue
            self._take_one(batch, result, mailbox_id, arrival.mail, arrival.bounce)
        aggregates: list[Any] = [*batch.new, *batch.touched.values(), *batch.replies.values()]
        result.position = self._store(*aggregates)
        result.conversation_ids = tuple(batch.touched)
        return result

    def _take_one(self, batch: _Batch, result: IntakeResult, mailbox_id: UUID, mail: InboundMail,
                  bounce: BounceReport | None = None) -> None:
        key = message_key(mail.message_id)
        known = batch.key(key)
        written = written_digest(mail)
        if known is not None:
            if same_message(known, mail.raw_blob, written):
                result.duplicates += 1  # taken in before, or by another of our mailboxes (To + Cc)
                return
            # A different mail under a Message-ID already taken in (some senders reuse them):
            # never dropped, it gets a key of its own, derived from what it says.
            key = f"{key}#{written}"
            if batch.key(key) is not None:
                result.duplicates += 1
                return
        # A delivery report about one of our replies joins that reply's conversation (never opens
        # one) and, if the delivery failed, marks the reply FAILED with the server's reason.
        bounced = batch.bounced_reply(bounce) if bounce is not None else None
        conversation = batch.conversation(bounced.conversation_id) if bounced is not None else batch.thread(mail)
        if conversation is None:
            ref = conversation_ref(key)
            conversation = Conversation(
                mailbox_id=mailbox_id, customer_email=mail.from_address, subject=mail.subject, ref=ref)
            batch.conversations[conversation.id] = conversation
            result.opened += 1
        message_id = message_uuid(key)
        conversation.receive(message_id, mailbox_id, mail.received())
        # DESIGN 4.1: a reply into a closed conversation reopens it; an auto-reply or a bounce
        # does not (nobody wrote it: it must not bring a conversation back, or start a loop).
        if conversation.status == CLOSED and not set(mail.markers) & {AUTO_SUBMITTED, AUTOREPLY, BOUNCE}:
            conversation.reopen(conversation.previous_assignee_id)
        if bounced is not None and bounce is not None and bounce.failed and bounced.status != FAILED:
            bounced.bounce(bounce.reason, message_id, bounced.mailbox_id)
            batch.replies[bounced.id] = bounced
        batch.touched[conversation.id] = conversation
        inbound = InboundKey(key=key, conversation_id=conversation.id, message_id=message_id,
                             raw_blob=mail.raw_blob, written=written)
        batch.keys[key] = inbound
        batch.new.append(inbound)
        result.taken += 1


# Header fields that servers add or rewrite on the way (per delivery, per recipient): two
# copies of one mail differ in these, so they do not make two mails different.
_TRANSIT = frozenset({
    "received", "return-path", "delivered-to", "x-original-to", "envelope-to", "x-delivered-to", "x-received",
    "authentication-results", "received-spf", "status", "x-status", "x-uid", "x-keywords", "lines",
    "content-length", "x-uidl"})
_TRANSIT_PREFIXES = ("x-envelope-", "arc-", "x-spam", "x-virus", "x-ms-exchange-", "x-forefront-",
                     "x-microsoft-antispam", "x-mozilla-", "x-original-", "x-gm-")


def _written(mail: InboundMail) -> list[Any]:
    """What the sender wrote: the header fields (without transit ones), text, HTML, attachments."""
    headers = sorted((name, value) for name, value in mail.headers.items()
                     if name not in _TRANSIT and not name.startswith(_TRANSIT_PREFIXES))
    attachments = [[a.filename, a.content_type, a.size, a.blob, a.inline, a.content_id] for a in mail.attachments]
    return [headers, mail.text, mail.html_blob, attachments]


def written_digest(mail: InboundMail) -> str:
    return hashlib.sha256(json.dumps(_written(mail)).encode()).hexdigest()[:32]


def same_message(known: InboundKey, raw_blob: str, written: str) -> bool:
    """Whether a mail (its raw blob key, its written_digest) is the one taken in under `known`
    again (served again, moved, or delivered to two of our mailboxes), not a different one
    that reuses its Message-ID. A key recorded before keys held both cannot tell: the mail
    counts as the same (as a re-read of old mail is; nothing is recorded twice)."""
    if known.raw_blob is None or known.written is None:
        return True
    return known.raw_blob == raw_blob or known.written == written
