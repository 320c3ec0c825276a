"""Helpers for intake tests: a bound mailbox on the private Dovecot, and messages to send it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from api.bootstrap import Services
from domain.values import MailProtocol, ServerSettings, TransportSecurity
from tests.dovecot import Dovecot


def new_user(dovecot: Dovecot, password: str = "s3cret-pass") -> tuple[str, str]:
    name = f"u{uuid.uuid4().hex[:10]}"
    dovecot.add_user(name, password)
    return name, password


def bind(services: Services, dovecot: Dovecot, protocol: MailProtocol = MailProtocol.IMAP,
         user: str | None = None, password: str = "s3cret-pass") -> tuple[uuid.UUID, str]:
    """Binds a mailbox for a fresh Dovecot user (plain transport: tests are on loopback)."""
    if user is None:
        user, password = new_user(dovecot, password)
    port = dovecot.imap_port if protocol is MailProtocol.IMAP else dovecot.pop3_port
    written, _ = services.app.bind_mailbox(
        f"{user}@example.com", password, None, protocol,
        ServerSettings(dovecot.host, port, TransportSecurity.NONE, user))
    services.projections.wait_for(written.position)
    return written.id, user


def mail(subject: str = "Help please", sender: str = "carol@customer.example", body: str = "Hello",
         message_id: str | None = None, in_reply_to: str | None = None, to: str = "support@example.com",
         extra: dict[str, str] | None = None) -> bytes:
    message = EmailMessage()
    message["From"] = f"Carol <{sender}>"
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = message_id or make_msgid(domain="customer.example")
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
        message["References"] = in_reply_to
    for name, value in (extra or {}).items():
        message[name] = value
    message.set_content(body)
    return bytes(message)
