"""From raw bytes to an Arrival: parse, store the large parts as blobs, keep the markers.

Every blob a message's events will refer to (raw message, body text, header map, HTML,
attachments) is among the rows `prepare` returns; callers store them before take_in."""

from __future__ import annotations

import multiprocessing
import os
import threading
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import UTC, datetime

from adapters.blobs import BlobStore, blob_key, compress_all
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


BlobRow = tuple[str, int, bytes]  # key, size, compressed bytes
Prepared = tuple[list[Arrival], list[BlobRow]]


def prepare(batch: list[tuple[str, bytes]], mailbox_address: str) -> Prepared:
    """Parses a batch of (source, raw) into arrivals and the compressed blobs to store.
    Pure CPU work, no I/O: it may run in another process (see Parser)."""
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
        pending.extend((mail.text_data(), mail.headers_data()))  # the event refers to these by key
        out.append(Arrival(source=source, size=len(raw), raw_blob=mail.raw_blob, mail=mail, bounce=parsed.bounce))
    return out, compress_all(pending)


def arrivals(batch: list[tuple[str, bytes]], mailbox_address: str, blobs: BlobStore) -> list[Arrival]:
    """Parses a batch here and now, storing its blobs in one write."""
    out, rows = prepare(batch, mailbox_address)
    blobs.put_rows(rows)
    return out


class Parser:
    """Parses batches in worker processes, so that parsing the next batch overlaps with
    recording the current one (parsing is CPU-bound: threads would share one core).
    Small batches are parsed in-process: starting work elsewhere would cost more."""

    def __init__(self, workers: int | None = None, min_batch: int = 64) -> None:
        self.workers = workers or max(1, min(2, os.cpu_count() or 1))
        self.min_batch = min_batch
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def submit(self, batch: list[tuple[str, bytes]], mailbox_address: str) -> Future[Prepared]:
        if len(batch) >= self.min_batch:
            try:
                return self._get_pool().submit(prepare, batch, mailbox_address)
            except (BrokenProcessPool, RuntimeError, OSError):
                self._reset()
        done: Future[Prepared] = Future()
        done.set_result(prepare(batch, mailbox_address))
        return done

    def result(self, job: Future[Prepared], batch: list[tuple[str, bytes]],
               mailbox_address: str) -> Prepared:
        """The job's result; if its worker died, the batch is parsed here instead."""
        try:
            return job.result()
        except BrokenProcessPool:
            self._reset()
            return prepare(batch, mailbox_address)

    def _get_pool(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                # spawn, not fork: the parent runs threads and holds database connections
                self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"))
            return self._pool

    def _reset(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def close(self) -> None:
        self._reset()


def too_large(source: str, size: int, header: bytes, blobs: BlobStore) -> Arrival:
    """A message over the cap is not downloaded: its header is kept and it is quarantined."""
    key = blobs.put(header)
    reason = f"message of {size} bytes exceeds the {MAX_MESSAGE_BYTES // (1024 * 1024)} MB limit; header kept"
    return Arrival(source=source, size=size, raw_blob=key, problem=reason)
