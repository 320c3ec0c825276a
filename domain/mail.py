"""An inbound email: as parsed (InboundMail), and as a conversation records it (ReceivedMail),
its large parts (body text, header map, HTML, attachments, the raw message) kept as blobs."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

# Loop and noise markers kept on every message for later policies (auto-replies, routing).
AUTO_SUBMITTED = "auto-submitted"
BULK = "bulk"
AUTOREPLY = "autoreply"
OWN_ADDRESS = "own-address"
BOUNCE = "bounce"

MAX_TEXT = 256 * 1024  # characters of body text kept (in its blob); the raw message has all of it


@dataclass(frozen=True)
class AttachmentRef:
    filename: str | None
    content_type: str
    size: int
    blob: str  # sha256 of the stored bytes; "" when over the size cap and not stored
    inline: bool = False
    content_id: str | None = None


@dataclass(frozen=True)
class BounceReport:
    """What a delivery report (DSN or a mailer-daemon's bounce) says about mail it quotes.
    Intake uses it to find the reply it bounces; it is not recorded as such."""

    original_ids: tuple[str, ...]  # Message-IDs of the mail it reports on, normalised (normalise_message_id)
    reason: str  # the server's words, e.g. "550 5.1.1 <x@example.com>: user unknown"; at most 500 characters
    failed: bool  # a permanent failure (DSN Action: failed, or a plain bounce), not a delay notice


@dataclass(frozen=True)
class InboundMail:
    """A message as parsed, with its body text and header map: what intake works on. Events
    recorded before the bodies moved to blobs (MessageReceived v1) hold this record; new ones
    hold a ReceivedMail. Its transcoding stays registered, its fields unchanged, to read them."""

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

    def text_data(self) -> bytes:
        """The body text as the blob stored under `ReceivedMail.text_blob`."""
        return self.text.encode("utf-8", "replace")  # parsed text has no lone surrogates; never fail on one

    def headers_data(self) -> bytes:
        """The header map as the blob stored under `ReceivedMail.headers_blob`."""
        return encode_headers(self.headers)

    def received(self) -> ReceivedMail:
        """What a conversation records of this mail: the body text and the header map by blob key
        (their blobs, `text_data()` and `headers_data()`, must be stored before the event is)."""
        return ReceivedMail(
            message_id=self.message_id, source=self.source, from_address=self.from_address, from_name=self.from_name,
            to=list(self.to), cc=list(self.cc), subject=self.subject, date=self.date,
            text_blob=content_key(self.text_data()), headers_blob=content_key(self.headers_data()),
            html_blob=self.html_blob, raw_blob=self.raw_blob, size=self.size, in_reply_to=list(self.in_reply_to),
            references=list(self.references), attachments=list(self.attachments), markers=list(self.markers))


@dataclass(frozen=True)
class ReceivedMail:
    """An inbound message as a conversation's MessageReceived event records it: what routing,
    threading and display need cheaply. The body text and the header map are blobs, so events
    stay small and erasing a message's content is deleting its blobs.

    Events recorded before that (MessageReceived v1) held them inline and no blob exists for
    them: upcast, they come back with `text_blob`/`headers_blob` None and the content in
    `inline_text`/`inline_headers`, which readers fall back to (see `blob_keys`, `text_from`, `headers_from`).
    """

    message_id: str  # RFC 5322 Message-ID without brackets (see InboundMail)
    source: str
    from_address: str
    from_name: str | None
    to: list[str]
    cc: list[str]
    subject: str
    date: datetime
    text_blob: str | None  # sha256 of the body text (UTF-8); None only in events recorded before v2
    headers_blob: str | None  # sha256 of the header map (encode_headers); None only before v2
    html_blob: str | None
    raw_blob: str
    size: int
    in_reply_to: list[str] = field(default_factory=list)
    references: list[str] = field(default_factory=list)
    attachments: list[AttachmentRef] = field(default_factory=list)
    markers: list[str] = field(default_factory=list)
    inline_text: str | None = None  # only in events recorded before v2
    inline_headers: dict[str, str] | None = None  # only in events recorded before v2

    @staticmethod
    def of_legacy(mail: InboundMail) -> ReceivedMail:
        """A v1 event's inline mail in the v2 shape (its text and headers stay inline: no blob holds them)."""
        return ReceivedMail(
            message_id=mail.message_id, source=mail.source, from_address=mail.from_address, from_name=mail.from_name,
            to=list(mail.to), cc=list(mail.cc), subject=mail.subject, date=mail.date, text_blob=None,
            headers_blob=None, html_blob=mail.html_blob, raw_blob=mail.raw_blob, size=mail.size,
            in_reply_to=list(mail.in_reply_to), references=list(mail.references), attachments=list(mail.attachments),
            markers=list(mail.markers), inline_text=mail.text, inline_headers=dict(mail.headers))

    def blob_keys(self) -> list[str]:
        """The blobs to fetch for `text_from` and `headers_from` (none for a message recorded inline)."""
        return [key for key in (self.text_blob, self.headers_blob) if key]

    def text_from(self, blobs: Mapping[str, bytes]) -> str:
        """The body text, given the fetched blobs ("" when its blob is gone: erased)."""
        if self.text_blob is None:
            return self.inline_text or ""
        data = blobs.get(self.text_blob)
        return "" if data is None else data.decode("utf-8", "replace")

    def headers_from(self, blobs: Mapping[str, bytes]) -> dict[str, str]:
        """The header map (lower-cased name -> first value), given the fetched blobs ({} when erased)."""
        if self.headers_blob is None:
            return dict(self.inline_headers or {})
        data = blobs.get(self.headers_blob)
        return {} if data is None else decode_headers(data)


def content_key(data: bytes) -> str:
    """The key content-addressed blobs are stored under (adapters/blobs.py): the sha256 of the bytes."""
    return hashlib.sha256(data).hexdigest()


def encode_headers(headers: Mapping[str, str]) -> bytes:
    """A header map as stored in its blob: compact JSON, in the message's order."""
    return json.dumps(dict(headers), ensure_ascii=False, separators=(",", ":")).encode("utf-8", "replace")


def decode_headers(data: bytes) -> dict[str, str]:
    found = json.loads(data.decode("utf-8", "replace"))
    return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}


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
