"""Intake finds what it needs by key, never by reading a conversation's events: a duplicate
is one InboundKey lookup, and a reply loads its conversation from its latest snapshot."""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any
from uuid import UUID

import pytest

from adapters.inbound import prepare
from domain.application import Mailroom
from domain.commands.intake import SNAPSHOT_EVERY, Arrival
from domain.conversation import Conversation, InboundKey, message_uuid
from domain.mail import InboundMail, content_key, conversation_ref, message_key

MAILBOX = UUID(int=7)


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch) -> Iterator[Mailroom]:
    monkeypatch.delenv("MAILROOM_PERSISTENCE_MODULE", raising=False)
    application = Mailroom(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    yield application
    application.close()


class Reads:
    """Counts the events read from the event store, per aggregate."""

    def __init__(self, app: Mailroom, monkeypatch: pytest.MonkeyPatch) -> None:
        self.events: dict[UUID, int] = {}
        store: Any = app.repository.event_store
        original = store.get

        def get(originator_id: UUID, *args: Any, **kwargs: Any) -> Any:
            found = list(original(originator_id, *args, **kwargs))
            self.events[originator_id] = self.events.get(originator_id, 0) + len(found)
            return iter(found)

        monkeypatch.setattr(store, "get", get)


def mail(n: int, message_id: str | None = None, text: str = "Hello", in_reply_to: str | None = None,
         raw: str | None = None) -> Arrival:
    message_id = message_id or f"m{n}@customer.example"
    inbound = InboundMail(
        message_id=message_id, source=f"imap:INBOX:1:{n}", from_address="carol@customer.example", from_name="Carol",
        to=["help@example.org"], cc=[], subject="Invoice" if in_reply_to is None else "Re: Invoice",
        date=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=n), text=text, html_blob=None,
        raw_blob=content_key((raw or f"raw {n}").encode()), size=100 + n,
        in_reply_to=[in_reply_to] if in_reply_to else [], references=[in_reply_to] if in_reply_to else [],
        headers={"subject": "Invoice", "message-id": f"<{message_id}>", "received": f"hop {n}"})
    return Arrival(source=inbound.source, size=inbound.size, raw_blob=inbound.raw_blob, mail=inbound)


def conversation_of(message_id: str) -> UUID:
    return Conversation.create_id(conversation_ref(message_key(message_id)))


def test_the_same_mail_again_is_found_by_its_key_alone(app: Mailroom, monkeypatch: pytest.MonkeyPatch) -> None:
    first = app.take_in(MAILBOX, [mail(1)])
    assert (first.taken, first.opened) == (1, 1)
    reads = Reads(app, monkeypatch)
    # served again (same bytes), and relayed (other bytes, other transit headers, same content)
    relayed = mail(1, raw="raw 1 via another hop")
    assert relayed.mail is not None
    relayed = Arrival(relayed.source, relayed.size, relayed.raw_blob, InboundMail(**{
        **relayed.mail.__dict__, "headers": {**relayed.mail.headers, "received": "another hop"}}))
    again = app.take_in(MAILBOX, [mail(1), relayed])
    assert (again.taken, again.duplicates) == (0, 2)
    assert conversation_of("m1@customer.example") not in reads.events
    assert reads.events == {InboundKey.create_id("m1@customer.example"): 1}


def test_a_different_mail_reusing_a_message_id_is_told_apart_without_reading_the_conversation(
        app: Mailroom, monkeypatch: pytest.MonkeyPatch) -> None:
    app.take_in(MAILBOX, [mail(1, message_id="same@sender.example")])
    reads = Reads(app, monkeypatch)
    other = app.take_in(MAILBOX, [mail(2, message_id="same@sender.example", text="A new question")])
    assert (other.taken, other.opened, other.duplicates) == (1, 1, 0)
    assert conversation_of("same@sender.example") not in reads.events
    assert app.take_in(MAILBOX, [mail(2, message_id="same@sender.example", text="A new question")]).duplicates == 1


def test_a_key_recorded_before_keys_could_tell_mails_apart_counts_as_the_same_mail(app: Mailroom) -> None:
    key = message_key("old@customer.example")
    conversation_id = conversation_of("old@customer.example")
    app.save(InboundKey(key=key, conversation_id=conversation_id, message_id=message_uuid(key)))  # v1: no digests
    result = app.take_in(MAILBOX, [mail(1, message_id="old@customer.example", text="anything")])
    assert (result.taken, result.duplicates) == (0, 1)


def test_a_reply_loads_its_conversation_from_the_latest_snapshot(
        app: Mailroom, monkeypatch: pytest.MonkeyPatch) -> None:
    app.take_in(MAILBOX, [mail(0)])
    previous = "m0@customer.example"
    for n in range(1, 2 * SNAPSHOT_EVERY + 5):
        arrival = mail(n, in_reply_to=previous)
        app.take_in(MAILBOX, [arrival])
        previous = f"m{n}@customer.example"
    conversation_id = conversation_of("m0@customer.example")
    reads = Reads(app, monkeypatch)
    result = app.take_in(MAILBOX, [mail(999, in_reply_to=previous)])
    assert (result.taken, result.opened, result.conversation_ids) == (1, 0, (conversation_id,))
    assert reads.events[conversation_id] < SNAPSHOT_EVERY
    conversation = app.repository.get(conversation_id)
    assert isinstance(conversation, Conversation)
    assert conversation.message_count == 2 * SNAPSHOT_EVERY + 6


def test_every_blob_a_message_event_refers_to_is_among_the_rows_stored_before_it() -> None:
    """adapters/inbound.prepare returns the blob rows that callers store before take_in: the
    event's every blob key must be among them (else a crash could leave an event pointing at nothing)."""
    message = EmailMessage()
    message["From"] = "Carol <carol@customer.example>"
    message["To"] = "help@example.org"
    message["Subject"] = "Invoice"
    message["Message-ID"] = "<blobs@customer.example>"
    message.set_content("The invoice is attached.\n")
    message.add_alternative("<p>The invoice is attached.</p>", subtype="html")
    message.add_attachment(b"%PDF-1.4 invoice", maintype="application", subtype="pdf", filename="invoice.pdf")
    arrivals, rows = prepare([("imap:INBOX:1:1", bytes(message))], "help@example.org")
    assert arrivals[0].mail is not None
    received = arrivals[0].mail.received()
    referred = {received.text_blob, received.headers_blob, received.html_blob, received.raw_blob,
                *(a.blob for a in received.attachments)}
    stored = {key: zlib.decompress(data) for key, _, data in rows}
    assert None not in referred and referred <= set(stored)
    assert received.text_from(stored) == "The invoice is attached.\n"
    assert received.headers_from(stored)["subject"] == "Invoice"
    assert received.blob_keys() == [received.text_blob, received.headers_blob]
