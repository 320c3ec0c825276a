"""Replies: queued by an agent, then delivered by the outbox sender step by step (domain/reply.py).

Every step is a new version of the Reply: a sender whose step was taken by another (or whose
claim was settled because it lost the outbox's lease) gets a Conflict and stops. That, not the
lease, is what makes delivery at most once."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from uuid import UUID

from domain.commands.base import Base, Conflict, Written, retrying
from domain.conversation import CLOSED, Conversation, InboundKey
from domain.errors import invalid
from domain.mail import message_key
from domain.reply import Delivery, OutboundMail, Reply, delivery_of, give_up_reason, retry_delay


class HandOverRefused(Exception):
    """The claim is no longer this sender's: the final dot must not be sent."""


class ReplyCommands(Base):
    @retrying()
    def queue_reply(self, conversation_id: UUID, author_id: UUID | None, mail: OutboundMail) -> Written:
        """Records the reply QUEUED, with its Message-ID known to threading (an answer to it joins
        this conversation). A reply into a CLOSED conversation reopens it."""
        conversation = self._load(Conversation, conversation_id, ("input", "conversationId"), "conversation")
        key = message_key(mail.message_id)
        if self._find(InboundKey.create_id(key)) is not None:
            raise invalid(("input",), "this Message-ID is taken already", "CONFLICT")
        reply = Reply(conversation.id, conversation.mailbox_id, author_id, mail)
        known = InboundKey(key=key, conversation_id=conversation.id, message_id=reply.id, raw_blob=mail.raw_blob)
        touched: list[object] = [reply, known]
        if conversation.status == CLOSED:
            conversation.reopen(conversation.previous_assignee_id)
            touched.append(conversation)
        return Written(reply.id, self._store(*touched))  # type: ignore[arg-type]

    def reply(self, reply_id: UUID) -> Reply | None:
        found = self._find(reply_id)
        return found if isinstance(found, Reply) else None

    # ------------------------------------------------------------------ the sender's steps

    def claim_reply(self, reply_id: UUID, worker: str, now: datetime) -> Delivery | None:
        """The next attempt, claimed for `worker`; None when it is not due or another took it."""
        reply = self.reply(reply_id)
        if reply is None or not reply.due(now):
            return None
        if reply.expired(now):
            reply.fail(reply.attempt, give_up_reason(reply, reply.reason or "none"))
        else:
            reply.claim(reply.attempt + 1, worker)
        try:
            self._store(reply)
        except Conflict:
            return None
        return delivery_of(reply) if reply.deliverable else None

    def settle_abandoned_reply(self, reply_id: UUID, worker: str, now: datetime, own: bool = False) -> bool:
        """Settles a claim held by a sender other than `worker` (which leads now), or with `own` one
        of `worker`'s own that no delivery is working on any more: see Reply.settle_abandoned."""
        reply = self.reply(reply_id)
        if reply is None or reply.claimed_by is None or (reply.claimed_by == worker and not own):
            return False
        reply.settle_abandoned(now)
        try:
            self._store(reply)
        except Conflict:
            return False
        return True

    def record_handover(self, delivery: Delivery, worker: str) -> None:
        """Just before the final dot. Raises HandOverRefused unless the claim is still this one's."""
        reply = self.reply(delivery.reply_id)
        if reply is None or reply.claimed_by != worker or reply.attempt != delivery.attempt or reply.handed_over:
            raise HandOverRefused(f"reply {delivery.reply_id}: attempt {delivery.attempt} is no longer ours")
        reply.hand_over(delivery.attempt)
        try:
            self._store(reply)
        except Conflict:
            raise HandOverRefused(f"reply {delivery.reply_id}: changed meanwhile") from None

    def record_sent(self, delivery: Delivery, worker: str, response: str, confirmed: bool = True) -> None:
        """`confirmed` False: handed over, but the server's answer never came (the connection broke
        after the final dot): it may have been delivered, so it counts as sent and never goes again."""
        self._finish(delivery, worker, lambda r: r.sent(delivery.attempt, response[:500], confirmed))

    def record_failure(self, delivery: Delivery, worker: str, reason: str, permanent: bool, now: datetime) -> None:
        def step(reply: Reply) -> None:
            if permanent:
                reply.fail(delivery.attempt, reason[:500])
            elif reply.expired(now):
                reply.fail(delivery.attempt, give_up_reason(reply, reason)[:500])
            else:
                retry_at = now + timedelta(seconds=retry_delay(delivery.attempt))
                reply.defer(delivery.attempt, reason[:500], retry_at)

        self._finish(delivery, worker, step)

    def _finish(self, delivery: Delivery, worker: str, step: Callable[[Reply], None]) -> None:
        for _ in range(3):
            reply = self.reply(delivery.reply_id)
            # Settled by another sender meanwhile, or bounced: what is recorded stands.
            if reply is None or reply.claimed_by != worker or reply.attempt != delivery.attempt:
                return
            step(reply)
            try:
                self._store(reply)
                return
            except Conflict:
                continue
