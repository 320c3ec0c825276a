"""What routing needs of a conversation, read from the conversation's events (a handful: the
opening message, then decisions and changes)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from adapters.blobs import blobs_of
from domain.assigner import Arrived
from domain.conditions import MessageFacts
from domain.conversation import Conversation
from domain.mail import ReceivedMail
from domain.personal import is_erased

ROUTED: Any = Conversation.Routed  # type: ignore[attr-defined]


def arrival(app: Any, conversation_id: UUID) -> Arrived | None:
    """The mailbox, customer and first message of a conversation (None if it has none yet).
    The body text and header map are read from their blobs (`app.blobs`, see blobs_of), by one
    query; a message recorded before they moved to blobs has them inline."""
    events: list[Any] = list(app.repository.event_store.get(conversation_id))
    if len(events) < 2:
        return None
    opened, received = events[0], events[1]
    mail: ReceivedMail | None = getattr(received, "mail", None)
    if mail is None:
        return None
    keys = mail.blob_keys()
    found = blobs_of(app).get_many(keys) if keys else {}
    facts = MessageFacts(from_address=mail.from_address, to=list(mail.to), cc=list(mail.cc),
                         subject=mail.subject, body=mail.text_from(found), headers=mail.headers_from(found),
                         has_attachment=any(not a.inline for a in mail.attachments))
    routes = tuple((e.decided_at, e.rule_id) for e in events[2:] if isinstance(e, ROUTED))
    return Arrived(mailbox_id=opened.mailbox_id, customer_email=opened.customer_email, facts=facts, routes=routes,
                   erased=is_erased(opened.customer_email))
