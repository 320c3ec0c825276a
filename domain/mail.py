"""An inbound email as the domain records it: parsed, its large parts stored as blobs."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime

# Loop and noise markers kept on every message for later policies (auto-replies, routing).
AUTO_SUBMITTED = "auto-submitted"
BULK = "bulk"
AUTOREPLY = "autoreply"
OWN_ADDRESS = "own-address"
BOUNCE = "bounce"

MAX_TEXT = 256 * 1024  # characters of body text kept in the event; the raw message has all of it


@dataclass(frozen=True)
class AttachmentRef:
    filename: str | None
    content_type: str
    size: int
    blob: str  # sha256 of the stored bytes; "" when over the size cap and not stored
    inline: bool = False
    content_id: str | None = None


@dataclass(frozen=True)
class InboundMail:
    message_id: str  # RFC 5322 Message-ID without brackets; synthesised from the content hash when absent
    source: str  # where it was taken from, e.g. "imap:INBOX:1700000000:42" or "pop3:000000016b08a390"
    from_address: str
    from_name: str | None
    to: list[str]
    cc: list[str]
    subject: str
    date: datetime
    text: str
    html_blob: str | None  # sha256 of the sanitised HTML, when there is HTML
    raw_blob: str  # sha256 of the raw message (stored compressed)
    size: int
    in_reply_to: list[str] = field(default_factory=list)
    references: list[str] = field(default_factory=list)
    attachments: list[AttachmentRef] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    markers: list[str] = field(default_factory=list)


def normalise_message_id(value: str) -> str:
    return value.strip().strip("<>").strip().lower()


def content_message_id(raw: bytes) -> str:
    """A stable stand-in for a missing Message-ID: the same bytes give the same id."""
    return f"sha256-{hashlib.sha256(raw).hexdigest()}@mailroom.invalid"


def message_key(message_id: str) -> str:
    """The idempotency key of an inbound message (Message-IDs compare case-insensitively here)."""
    return normalise_message_id(message_id)


REF_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud and retyped by customers
_REF_TOKEN = re.compile(r"\[#([A-HJ-NP-Z2-9]{8})\]")


def conversation_ref(key: str) -> str:
    """An 8-character reference for subjects ("[#K7Q2M9XA]"), derived from the opening message."""
    digest = hashlib.sha256(key.encode()).digest()
    number = int.from_bytes(digest[:5], "big")
    out = []
    for _ in range(8):
        number, index = divmod(number, len(REF_ALPHABET))
        out.append(REF_ALPHABET[index])
    return "".join(out)


def refs_in_subject(subject: str) -> list[str]:
    return _REF_TOKEN.findall(subject.upper())
