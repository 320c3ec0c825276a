"""From raw bytes to an Arrival: parse, store the large parts as blobs, keep the markers."""

from __future__ import annotations

from datetime import UTC, datetime

from adapters.blobs import BlobStore, blob_key
from adapters.mime import ParsedMail, Unparseable, parse_mail
from domain.commands.intake import Arrival
from domain.mail import (
    AUTO_SUBMITTED,
    AUTOREPLY,
    BOUNCE,
    BULK,
    MAX_TEXT,
    OWN_ADDRESS,
    AttachmentRef,
    InboundMail,
    content_message_id,
)

MAX_MESSAGE_BYTES = 25 * 1024 * 1024


def markers(parsed: ParsedMail, mailbox_address: str) -> list[str]:
    found = []
    if parsed.auto_submitted:
        found.append(AUTO_SUBMITTED)
    if parsed.precedence:
        found.append(BULK)
    if parsed.is_autoreply:
        found.append(AUTOREPLY)
    if parsed.is_bounce:
        found.append(BOUNCE)
    if parsed.from_address == mailbox_address.lower():
        found.append(OWN_ADDRESS)
    return found


def arrivals(batch: list[tuple[str, bytes]], mailbox_address: str, blobs: BlobStore) -> list[Arrival]:
    """Parses a batch of (source, raw) and stores every blob of it in one write."""
    out: list[Arrival] = []
    pending: list[bytes] = []
    for source, raw in batch:
        pending.append(raw)
        try:
            parsed = parse_mail(raw, max_part_bytes=MAX_MESSAGE_BYTES)
        except Unparseable as exc:
            out.append(Arrival(source=source, size=len(raw), raw_blob=blob_key(raw), problem=exc.reason))
            continue
        html_blob = None
        if parsed.html is not None:
            data = parsed.html.encode()
            pending.append(data)
            html_blob = blob_key(data)
        attachments = []
        for part in parsed.parts:
            if part.sha256:  # "" marks a part over the size cap, not stored
                pending.append(part.data)
            attachments.append(AttachmentRef(
                filename=part.filename, content_type=part.content_type, size=part.size,
                blob=part.sha256, inline=part.inline, content_id=part.content_id))
        mail = InboundMail(
            message_id=parsed.message_id or content_message_id(raw), source=source,
            from_address=parsed.from_address, from_name=parsed.from_name, to=parsed.to, cc=parsed.cc,
            subject=parsed.subject, date=parsed.date or datetime.now(UTC), text=parsed.text[:MAX_TEXT],
            html_blob=html_blob, raw_blob=blob_key(raw), size=len(raw), in_reply_to=parsed.in_reply_to,
            references=parsed.references, attachments=attachments, headers=parsed.headers,
            markers=markers(parsed, mailbox_address))
        out.append(Arrival(source=source, size=len(raw), raw_blob=mail.raw_blob, mail=mail))
    blobs.put_many(pending)
    return out


def too_large(source: str, size: int, header: bytes, blobs: BlobStore) -> Arrival:
    """A message over the cap is not downloaded: its header is kept and it is quarantined."""
    key = blobs.put(header)
    reason = f"message of {size} bytes exceeds the {MAX_MESSAGE_BYTES // (1024 * 1024)} MB limit; header kept"
    return Arrival(source=source, size=size, raw_blob=key, problem=reason)
