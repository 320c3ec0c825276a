"""Taking inbound mail in: each message exactly once, threaded into its conversation.

A batch is saved with one save() (one transaction): the store refuses a second
InboundKey or Conversation for the same derived id, so two workers racing on the
same messages cannot both record them; the loser retries message by message and
finds them taken.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain.commands.base import Base, Conflict
from domain.conversation import Conversation, InboundKey, QuarantinedMessage, conversation_id, message_uuid
from domain.mail import InboundMail, conversation_ref, message_key, normalise_message_id, refs_in_subject


@dataclass(frozen=True)
class Arrival:
    """One fetched message: parsed into `mail`, or a `problem` that quarantines it."""

    source: str
    size: int
    raw_blob: str
    mail: InboundMail | None = None
    problem: str | None = None


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

    def __init__(self, app: Base) -> None:
        self.app = app
        self.keys: dict[str, InboundKey | None] = {}
        self.conversations: dict[UUID, Conversation | None] = {}
        self.new: list[Aggregate] = []
        self.touched: dict[UUID, Conversation] = {}

    def key(self, key: str) -> InboundKey | None:
        if key not in self.keys:
            self.keys[key] = self.app._find(InboundKey.create_id(key))
        return self.keys[key]

    def conversation(self, conversation_id: UUID) -> Conversation | None:
        if conversation_id not in self.conversations:
            found = self.app._find(conversation_id)
            self.conversations[conversation_id] = found if isinstance(found, Conversation) else None
        return self.conversations[conversation_id]

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
        batch = _Batch(self)
        result = IntakeResult()
        quarantined: set[UUID] = set()
        for arrival in arrivals:
            if arrival.mail is None:
                qid = QuarantinedMessage.create_id(mailbox_id, arrival.source)
                if qid in quarantined or self._find(qid) is not None:
                    result.duplicates += 1
                    continue
                quarantined.add(qid)
                batch.new.append(QuarantinedMessage(
                    mailbox_id=mailbox_id, source=arrival.source, reason=arrival.problem or "unknown",
                    size=arrival.size, raw_blob=arrival.raw_blob))
                result.quarantined += 1
                continue
            self._take_one(batch, result, mailbox_id, arrival.mail)
        aggregates: list[Any] = [*batch.new, *batch.touched.values()]
        result.position = self._store(*aggregates)
        result.conversation_ids = tuple(batch.touched)
        return result

    def _take_one(self, batch: _Batch, result: IntakeResult, mailbox_id: UUID, mail: InboundMail) -> None:
        key = message_key(mail.message_id)
        if batch.key(key) is not None:
            result.duplicates += 1  # taken in before, or by another of our mailboxes (To + Cc)
            return
        conversation = batch.thread(mail)
        if conversation is None:
            ref = conversation_ref(key)
            conversation = Conversation(
                mailbox_id=mailbox_id, customer_email=mail.from_address, subject=mail.subject, ref=ref)
            batch.conversations[conversation.id] = conversation
            result.opened += 1
        message_id = message_uuid(key)
        conversation.receive(message_id, mailbox_id, mail)
        batch.touched[conversation.id] = conversation
        inbound = InboundKey(key=key, conversation_id=conversation.id, message_id=message_id)
        batch.keys[key] = inbound
        batch.new.append(inbound)
        result.taken += 1
