"""Writing a reply: the mailbox's subject template and footer, the customer's last message quoted,
threading headers, the message built once and queued (domain/commands/replies.py). The outbox
sender (api/processes/outbox.py) delivers it later."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from email.utils import getaddresses
from typing import Any
from uuid import UUID

from adapters.compose import Draft, compose, new_message_id
from api.services import Services
from domain.commands.base import Written
from domain.conversation import Conversation
from domain.errors import Collector, invalid, not_found
from domain.mail import content_key
from domain.mailbox import Mailbox
from domain.replies import (
    MAX_BODY,
    MAX_SUBJECT,
    Quoted,
    check_header_value,
    normalise_body,
    reply_html,
    reply_subject,
    reply_text,
    with_ref,
)
from domain.reply import OutboundMail
from domain.validation import is_email, normalise_email


def queue_reply(services: Services, conversation_id: UUID, author_id: UUID | None, body: str,
                subject: str | None = None) -> tuple[Written, dict[str, Any]]:
    """Queues the reply; returns what was written and the message as the conversation shows it."""
    errors = Collector()
    if not normalise_body(body).strip():
        errors.add(("input", "body"), "must not be empty")
    elif len(body) > MAX_BODY:
        errors.add(("input", "body"), f"must be at most {MAX_BODY} characters")
    if subject is not None:
        check_header_value(errors, ("input", "subject"), subject, MAX_SUBJECT)
        if not subject.strip():
            errors.add(("input", "subject"), "must not be empty")
    errors.raise_if_any()
    app = services.app
    conversation = app.find(conversation_id)
    if not isinstance(conversation, Conversation):
        raise not_found(("input", "conversationId"), "conversation")
    mailbox = app.find(conversation.mailbox_id)
    if not isinstance(mailbox, Mailbox) or mailbox.deleted:
        raise invalid(("input", "conversationId"), "the conversation's mailbox was deleted", "MAILBOX_DELETED")
    if mailbox.outgoing is None:
        raise invalid(("input", "conversationId"), f"mailbox {mailbox.address} has no outgoing (SMTP) settings: "
                      "set them with updateMailbox first", "NO_OUTGOING_SETTINGS")
    messages = services.conversations.messages(conversation_id)
    last = next((m for m in reversed(messages) if m["direction"] == "INBOUND"), None)
    now = datetime.now(UTC)
    if subject is not None:
        title = with_ref(" ".join(subject.split()), conversation.ref)
    else:
        title = reply_subject(mailbox.subject_template, conversation.subject, mailbox.display_name, conversation.ref)
    errors = Collector()
    check_header_value(errors, ("input", "subject"), title, MAX_SUBJECT + 20)
    errors.raise_if_any()
    quoted = _quoted(last) if last is not None else None
    text = reply_text(body, mailbox.footer, quoted)
    html = reply_html(body, mailbox.footer, quoted)
    draft = Draft(
        from_address=mailbox.address, from_name=mailbox.display_name,
        to=_recipients(services, last, conversation.customer_email, mailbox.address), cc=[], subject=title,
        date=now, message_id=new_message_id(mailbox.address, conversation.ref, now),
        in_reply_to=last["message_id"] if last is not None else None,
        references=[*_references(services, last), *(m["message_id"] for m in messages)], text=text, html=html)
    raw = compose(draft)
    blobs = [raw, text.encode(), html.encode()]
    services.blobs.put_many(blobs)  # before the event that names them: a crash leaves an orphan, never a gap
    mail = OutboundMail(
        message_id=draft.message_id, from_address=draft.from_address, from_name=draft.from_name, to=draft.to,
        cc=draft.cc, subject=title, date=now, text_blob=content_key(blobs[1]), html_blob=content_key(blobs[2]),
        raw_blob=content_key(raw), size=len(raw), in_reply_to=[draft.in_reply_to] if draft.in_reply_to else [],
        references=list(draft.references))
    written = app.queue_reply(conversation_id, author_id, mail)
    return written, outbound_row(written.id, conversation_id, conversation.mailbox_id, mail, text, now)


def _quoted(row: dict[str, Any]) -> Quoted:
    name, address = row.get("from_name"), str(row["from_address"])
    return Quoted(sender=f"{name} <{address}>" if name else address, date=datetime.fromisoformat(row["date"]),
                  text=str(row["text"] or ""))


def _headers(services: Services, row: dict[str, Any] | None) -> dict[str, str]:
    if row is None or not row.get("headers_blob"):
        return {}
    data = services.blobs.get(str(row["headers_blob"]))
    return {} if data is None else {str(k): str(v) for k, v in json.loads(data).items()}


def _recipients(services: Services, last: dict[str, Any] | None, customer: str, own: str) -> list[str]:
    """Where the customer asked answers to go (Reply-To), else the customer; never ourselves."""
    reply_to = _headers(services, last).get("reply-to", "")
    found = [normalise_email(a) for _, a in getaddresses([reply_to]) if is_email(a.strip())]
    found = [a for a in dict.fromkeys(found) if a != own.lower()][:10]
    return found or [customer]


def _references(services: Services, last: dict[str, Any] | None) -> list[str]:
    refs = _headers(services, last).get("references", "")
    return [r.strip("<> ") for r in refs.split() if r.startswith("<")]


def outbound_row(reply_id: UUID, conversation_id: UUID, mailbox_id: UUID, mail: OutboundMail, text: str,
                 at: datetime, status: str = "QUEUED") -> dict[str, Any]:
    """The message as the conversations view shows it (projections/conversations.py writes the same)."""
    return {
        "id": str(reply_id), "conversation_id": str(conversation_id), "direction": "OUTBOUND",
        "message_id": mail.message_id, "mailbox_id": str(mailbox_id), "from_address": mail.from_address,
        "from_name": mail.from_name, "to_addresses": json.dumps(mail.to), "cc_addresses": json.dumps(mail.cc),
        "subject": mail.subject, "date": mail.date.isoformat(), "text": text, "text_blob": mail.text_blob,
        "headers_blob": None, "html_blob": mail.html_blob, "attachments": "[]", "markers": "[]",
        "delivery_status": status, "raw_blob": mail.raw_blob, "size": mail.size, "source": "outbox",
        "received_at": at.isoformat()}
