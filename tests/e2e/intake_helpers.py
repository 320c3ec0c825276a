"""Helpers for end-to-end intake tests: mailboxes bound over GraphQL against the private Dovecot,
mails appended to them, syncMailbox, and the conversation read models."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any

from tests.dovecot import Dovecot
from tests.e2e.conftest import Server

USER_ERRORS = "userErrors { field message code }"
MAILBOX_HEALTH = "id address status lastSyncedAt lastError quarantinedCount"
SYNC = f"""
mutation($id: UUID!) {{
  syncMailbox(id: $id) {{ mailbox {{ {MAILBOX_HEALTH} }} fetched conversationsOpened {USER_ERRORS} }}
}}"""
BIND = f"""
mutation($input: BindMailboxInput!) {{
  bindMailbox(input: $input) {{ mailbox {{ {MAILBOX_HEALTH} }} {USER_ERRORS} }}
}}"""
MESSAGE_FIELDS = """
  id direction messageId from fromName to cc subject date text html deliveryStatus
  attachments { filename contentType size url }
"""
CONVERSATION_FIELDS = f"""
  id mailbox {{ id }} subject customerEmail status createdAt lastMessageAt
  messages {{ {MESSAGE_FIELDS} }}
"""
CONVERSATIONS = f"""
query($filter: ConversationFilter, $first: Int, $after: String) {{
  conversations(filter: $filter, first: $first, after: $after) {{
    totalCount
    pageInfo {{ hasNextPage endCursor }}
    edges {{ cursor node {{ {CONVERSATION_FIELDS} }} }}
  }}
}}"""
CONVERSATION = f"""
query($id: UUID!, $asOf: DateTime) {{
  conversation(id: $id, asOf: $asOf) {{ {CONVERSATION_FIELDS} }}
}}"""


@dataclass
class BoundMailbox:
    id: str
    address: str
    user: str
    password: str


def bind_imap_mailbox(server: Server, admin: str, dovecot: Dovecot) -> BoundMailbox:
    """A fresh Dovecot user, bound as an IMAP mailbox over implicit TLS (the server trusts the
    test CA through MAILROOM_EXTRA_CA_FILE)."""
    user = f"intake-{secrets.token_hex(4)}"
    password = "intake pass " + secrets.token_hex(4)
    dovecot.add_user(user, password)
    address = f"support-{secrets.token_hex(3)}@helpdesk.example"
    payload = server.gql(admin, BIND, input={
        "address": address, "password": password, "protocol": "IMAP",
        "incoming": {"host": dovecot.host, "port": dovecot.imaps_port, "security": "TLS", "username": user},
    })["bindMailbox"]
    assert payload["userErrors"] == [], payload
    assert payload["mailbox"]["status"] == "CONNECTED"
    return BoundMailbox(payload["mailbox"]["id"], address, user, password)


def sync(server: Server, token: str, mailbox_id: str) -> dict[str, Any]:
    return dict(server.gql(token, SYNC, id=mailbox_id)["syncMailbox"])


def conversations(server: Server, token: str, filter: dict[str, Any] | None = None, first: int | None = None,
                  after: str | None = None) -> dict[str, Any]:
    variables: dict[str, Any] = {"filter": filter, "after": after}
    if first is not None:
        variables["first"] = first
    return dict(server.gql(token, CONVERSATIONS, **variables)["conversations"])


def crlf(raw: bytes) -> bytes:
    """CRLF line ends throughout, as IMAP hands the message back."""
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def rich_mail(*, subject: str, sender: str, to: str, cc: str, text: str, html: str,
              attachment: bytes, filename: str, content_type: str = "application/pdf") -> bytes:
    """A multipart/mixed mail: text and HTML alternatives plus one attachment."""
    message = EmailMessage()
    message["From"] = f"Dave <{sender}>"
    message["To"] = to
    message["Cc"] = cc
    message["Subject"] = subject
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = make_msgid(domain="customer.example")
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    maintype, subtype = content_type.split("/", 1)
    message.add_attachment(attachment, maintype=maintype, subtype=subtype, filename=filename)
    return crlf(bytes(message))


def senderless_mail(subject: str = "who sent this?") -> bytes:
    """No From, Sender, Reply-To or Return-Path: cannot become a conversation."""
    return crlf(
        f"To: support@helpdesk.example\nSubject: {subject}\n"
        f"Date: {format_datetime(datetime.now(UTC))}\nMessage-ID: {make_msgid(domain='nowhere.example')}\n"
        "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\nNobody wrote this.\n".encode())
