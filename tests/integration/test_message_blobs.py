"""Message bodies and header maps live in blobs, not in events: everything that reads them
(the conversations view, a conversation as it stood, routing facts) reads the blobs; erasing
them leaves the log as it is and the text empty. Long conversations load from snapshots."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from adapters.blobs import TABLE
from adapters.inbound import arrivals
from api.bootstrap import Services
from domain.commands.intake import SNAPSHOT_EVERY, IntakeResult
from domain.conversation import Conversation
from domain.mail import conversation_ref, message_key
from projections import rebuild
from projections.arrivals import arrival
from projections.conversation_queries import as_of
from projections.conversations import Conversations
from tests.integration.intake_support import mail

ADDRESS = "support@example.com"
BODY = "Where is my order 58213? It was due on Monday.\n"


def take(services: Services, mailbox_id: uuid.UUID, *raws: bytes) -> IntakeResult:
    batch = [(f"imap:INBOX:1:{uuid.uuid4().hex}", raw) for raw in raws]
    return services.app.take_in(mailbox_id, arrivals(batch, ADDRESS, services.blobs))  # blobs first, then events


def conversation_of(message_id: str) -> uuid.UUID:
    return Conversation.create_id(conversation_ref(message_key(message_id)))


def test_body_and_headers_are_read_from_blobs_not_events(services: Services) -> None:
    mailbox_id = uuid.uuid4()
    raw = mail(subject="Order 58213", body=BODY, message_id="<b1@customer.example>", extra={"X-Priority": "1"})
    result = take(services, mailbox_id, raw)
    conversation_id = conversation_of("b1@customer.example")
    assert result.conversation_ids == (conversation_id,)

    stored = [n for n in services.app.recorder.select_notifications(1, 100)
              if n.topic == "mailroom:Conversation.MessageReceived"]
    assert len(stored) == 1
    assert b"due on Monday" not in stored[0].state and b"x-priority" not in stored[0].state
    received = services.app.mapper.to_domain_event(stored[0]).mail  # type: ignore[attr-defined]
    assert received.text_blob and received.headers_blob

    services.projections.catch_up()
    [row] = services.conversations.messages(conversation_id)
    assert (row["text"], row["text_blob"], row["headers_blob"]) == (BODY, received.text_blob, received.headers_blob)
    past = as_of(services.app, conversation_id, datetime.now(UTC))
    assert past is not None and past[1][0]["text"] == BODY
    facts = arrival(services.app, conversation_id)
    assert facts is not None
    assert (facts.facts.body, facts.facts.headers["x-priority"]) == (BODY, "1")


def test_erased_blobs_leave_the_log_readable_and_the_text_empty(services: Services) -> None:
    mailbox_id = uuid.uuid4()
    take(services, mailbox_id, mail(body=BODY, message_id="<e1@customer.example>"))
    conversation_id = conversation_of("e1@customer.example")
    services.projections.catch_up()
    [row] = services.conversations.messages(conversation_id)
    with services.database.transaction() as tx:  # right to erasure: the message's content blobs go
        tx.execute(f"DELETE FROM {TABLE} WHERE sha256 IN (?, ?)", (row["text_blob"], row["headers_blob"]))
    rebuild.rebuild(services.projections, services.projections.views[Conversations.name])
    [row] = services.conversations.messages(conversation_id)
    assert (row["text"], row["subject"]) == ("", "Help please")
    facts = arrival(services.app, conversation_id)
    assert facts is not None and (facts.facts.body, facts.facts.headers) == ("", {})
    conversation = services.app.repository.get(conversation_id)
    assert isinstance(conversation, Conversation) and conversation.message_count == 1


def test_a_long_conversation_is_loaded_from_its_latest_snapshot(services: Services) -> None:
    mailbox_id = uuid.uuid4()
    take(services, mailbox_id, mail(message_id="<t0@customer.example>"))
    replies = [mail(subject="Re: Help please", message_id=f"<t{n}@customer.example>",
                    in_reply_to=f"<t{n - 1}@customer.example>") for n in range(1, SNAPSHOT_EVERY + 3)]
    result = take(services, mailbox_id, *replies)
    conversation_id = conversation_of("t0@customer.example")
    assert (result.taken, result.opened, result.conversation_ids) == (len(replies), 0, (conversation_id,))
    assert services.app.snapshots is not None
    snapshots = list(services.app.snapshots.get(conversation_id))
    assert [s.originator_version for s in snapshots] == [SNAPSHOT_EVERY]
    more = take(services, mailbox_id, mail(subject="Re: Help please", message_id="<t99@customer.example>",
                                           in_reply_to=f"<t{len(replies)}@customer.example>"))
    assert more.conversation_ids == (conversation_id,)
    conversation = services.app.repository.get(conversation_id)
    assert isinstance(conversation, Conversation) and conversation.message_count == len(replies) + 2
    services.projections.catch_up()
    assert len(services.conversations.messages(conversation_id)) == len(replies) + 2
