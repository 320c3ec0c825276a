"""A reply as RFC 5322 bytes, built with the stdlib `email` package (EmailMessage, policy SMTP):
header values are set through its header classes, never joined into text by hand.

Values are checked before (domain/replies.py); the header classes refuse what slips through."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime

MAX_REFERENCES = 20  # the first id and the latest ones: enough to thread, short enough to fold


@dataclass(frozen=True)
class Draft:
    from_address: str
    from_name: str
    to: list[str]
    cc: list[str]
    subject: str
    date: datetime
    message_id: str  # without angle brackets
    in_reply_to: str | None
    references: list[str]
    text: str
    html: str


def new_message_id(mailbox_address: str, ref: str, date: datetime) -> str:
    """A Message-ID on the mailbox's domain, unique, with the conversation's reference in it."""
    domain = mailbox_address.rpartition("@")[2].lower()
    return f"{date:%Y%m%d%H%M%S}.{uuid.uuid4().hex[:20]}.{ref.lower()}@{domain}"


def usable_id(value: str) -> bool:
    """A Message-ID we can repeat in In-Reply-To/References as it came: printable ASCII, no brackets."""
    return bool(value) and len(value) <= 250 and all("!" <= ch <= "~" and ch not in "<>" for ch in value)


def thread_references(chain: list[str]) -> list[str]:
    unique = list(dict.fromkeys(c for c in chain if usable_id(c)))
    if len(unique) <= MAX_REFERENCES:
        return unique
    return [unique[0], *unique[-(MAX_REFERENCES - 1):]]


def _address(value: str, name: str = "") -> Address:
    local, _, domain = value.rpartition("@")
    return Address(display_name=name, username=local, domain=domain)


def compose(draft: Draft) -> bytes:
    message = EmailMessage(policy=SMTP)
    message["From"] = _address(draft.from_address, draft.from_name)
    message["To"] = [_address(a) for a in draft.to]
    if draft.cc:
        message["Cc"] = [_address(a) for a in draft.cc]
    message["Subject"] = draft.subject
    message["Date"] = format_datetime(draft.date)
    message["Message-ID"] = f"<{draft.message_id}>"
    if draft.in_reply_to and usable_id(draft.in_reply_to):
        message["In-Reply-To"] = f"<{draft.in_reply_to}>"
    references = thread_references(draft.references)
    if references:
        message["References"] = " ".join(f"<{r}>" for r in references)
    message.set_content(draft.text, subtype="plain", charset="utf-8", cte="quoted-printable")
    message.add_alternative(draft.html, subtype="html", charset="utf-8", cte="quoted-printable")
    return message.as_bytes(policy=SMTP)
