"""A reply's way through the outbox (domain/reply.py, domain/commands/replies.py): every step a
new version, so two senders never both take one; claims of a sender gone are settled."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest

from domain.application import Mailroom
from domain.commands.replies import HandOverRefused
from domain.conversation import Conversation
from domain.reply import FAILED, QUEUED, SENT, OutboundMail, Reply, retry_delay

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.fixture
def app() -> Iterator[Mailroom]:
    application = Mailroom({"PERSISTENCE_MODULE": "eventsourcing.popo"})
    yield application
    application.close()


def queued(app: Mailroom, at: datetime = NOW) -> UUID:
    conversation = Conversation(mailbox_id=uuid4(), customer_email="jane@example.com", subject="Hi", ref="K7Q2M9XA")
    app.save(conversation)
    mail = OutboundMail(message_id=f"{uuid4().hex}@acme.example", from_address="support@acme.example",
                        from_name="Acme", to=["jane@example.com"], cc=[], subject="Re: Hi [#K7Q2M9XA]", date=at,
                        text_blob="t", html_blob="h", raw_blob="r", size=10)
    return app.queue_reply(conversation.id, uuid4(), mail).id


def reply(app: Mailroom, reply_id: UUID) -> Reply:
    found = app.reply(reply_id)
    assert found is not None
    return found


def test_a_claimed_attempt_is_not_claimed_again(app: Mailroom) -> None:
    reply_id = queued(app)
    first = app.claim_reply(reply_id, "a", NOW)
    assert first is not None and first.attempt == 1 and first.recipients == ["jane@example.com"]
    assert app.claim_reply(reply_id, "b", NOW) is None


def test_hand_over_then_sent(app: Mailroom) -> None:
    reply_id = queued(app)
    delivery = app.claim_reply(reply_id, "a", NOW)
    assert delivery is not None
    app.record_handover(delivery, "a")
    app.record_sent(delivery, "a", "250 ok")
    assert reply(app, reply_id).status == SENT


def test_a_sender_whose_claim_was_settled_may_not_hand_over(app: Mailroom) -> None:
    reply_id = queued(app)
    delivery = app.claim_reply(reply_id, "a", NOW)
    assert delivery is not None
    assert app.settle_abandoned_reply(reply_id, "b", NOW)  # b leads now: a's claim had no hand-over
    with pytest.raises(HandOverRefused):
        app.record_handover(delivery, "a")
    again = app.claim_reply(reply_id, "b", NOW)
    assert again is not None and again.attempt == 2


def test_a_handed_over_claim_of_a_sender_gone_counts_as_sent_never_resent(app: Mailroom) -> None:
    reply_id = queued(app)
    delivery = app.claim_reply(reply_id, "a", NOW)
    assert delivery is not None
    app.record_handover(delivery, "a")
    assert app.settle_abandoned_reply(reply_id, "b", NOW)
    settled = reply(app, reply_id)
    assert settled.status == SENT and settled.reason is not None and "never sent again" in settled.reason
    assert app.claim_reply(reply_id, "b", NOW + timedelta(hours=1)) is None
    app.record_sent(delivery, "a", "250 ok")  # the old sender's late answer changes nothing
    assert reply(app, reply_id).version == settled.version


def test_own_claims_are_not_settled(app: Mailroom) -> None:
    reply_id = queued(app)
    assert app.claim_reply(reply_id, "a", NOW) is not None
    assert not app.settle_abandoned_reply(reply_id, "a", NOW)


def test_temporary_failures_back_off_then_permanent_ones_fail(app: Mailroom) -> None:
    reply_id = queued(app)
    delivery = app.claim_reply(reply_id, "a", NOW)
    assert delivery is not None
    app.record_failure(delivery, "a", "451 try later", False, NOW)
    deferred = reply(app, reply_id)
    assert deferred.status == QUEUED and deferred.retry_at == NOW + timedelta(seconds=retry_delay(1))
    assert app.claim_reply(reply_id, "a", NOW) is None  # not due yet
    second = app.claim_reply(reply_id, "a", NOW + timedelta(seconds=5))
    assert second is not None and second.attempt == 2
    app.record_failure(second, "a", "550 5.1.1 no such user", True, NOW)
    failed = reply(app, reply_id)
    assert (failed.status, failed.reason) == (FAILED, "550 5.1.1 no such user")


def test_backoff_grows_to_a_minute() -> None:
    assert [retry_delay(n) for n in (1, 2, 3, 4, 7, 20)] == [1, 2, 4, 8, 60, 60]


def test_a_reply_not_delivered_within_a_day_fails(app: Mailroom) -> None:
    reply_id = queued(app, at=NOW - timedelta(hours=25))
    assert app.claim_reply(reply_id, "a", NOW) is None
    gone = reply(app, reply_id)
    assert gone.status == FAILED and gone.reason is not None and "24 hours" in gone.reason


def test_a_reply_into_a_closed_conversation_reopens_it(app: Mailroom) -> None:
    conversation = Conversation(mailbox_id=uuid4(), customer_email="jane@example.com", subject="Hi", ref="K7Q2M9XA")
    conversation.close(None)
    app.save(conversation)
    mail = OutboundMail(message_id="x1@acme.example", from_address="support@acme.example", from_name="Acme",
                        to=["jane@example.com"], cc=[], subject="Re: Hi", date=NOW, text_blob="t", html_blob="h",
                        raw_blob="r", size=1)
    app.queue_reply(conversation.id, None, mail)
    found = app.find(conversation.id)
    assert isinstance(found, Conversation) and found.status.value != "CLOSED"
