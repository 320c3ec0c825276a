"""Syncing one mailbox: fetch what is new by UID/UIDL, take it in, then advance the cursor.

One sync per mailbox at a time across processes (MailboxLocks). A failure turns the
mailbox FAILING with the error (an event only when the status changes) and backs off;
the next success turns it CONNECTED again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from prometheus_client import CollectorRegistry, Counter

from adapters.blobs import BlobStore
from adapters.imap import ImapSession
from adapters.inbound import MAX_MESSAGE_BYTES, Parser, Prepared, arrivals, too_large
from adapters.locks import MailboxLocks
from adapters.mailserver import LoginFailed
from adapters.pop3 import Pop3Session
from adapters.syncstate import SyncState
from api.services import Services
from domain.application import Mailroom
from domain.commands.intake import Arrival, IntakeResult
from domain.mailbox import Mailbox
from domain.values import MailProtocol

log = logging.getLogger("mailroom.sync")
REGISTRY = CollectorRegistry()
# Labelled by mailbox id, never by address: /metrics needs no token.
TAKEN_IN = Counter("mailroom_messages_taken_in", "Messages taken in", ["mailbox_id"], registry=REGISTRY)
QUARANTINED = Counter("mailroom_messages_quarantined", "Messages quarantined", ["mailbox_id"], registry=REGISTRY)
SYNC_ERRORS = Counter("mailroom_sync_errors", "Failed mailbox syncs", ["mailbox_id"], registry=REGISTRY)

BATCH_MESSAGES = 250
BATCH_BYTES = 32 * 1024 * 1024
RETRY_BASE_SECONDS = 15.0


PARSER = Parser()  # one pool of parsing processes per process, started on first use


@dataclass
class _Parsed:
    job: Future[Prepared]
    batch: list[tuple[str, bytes]]
    oversized: list[Arrival]
    last_uid: int


class Busy(Exception):
    """Another worker is syncing this mailbox right now."""


@dataclass
class SyncReport:
    fetched: int = 0
    opened: int = 0
    quarantined: int = 0
    position: int | None = None
    conversation_ids: list[UUID] = field(default_factory=list)
    error: str | None = None
    error_code: str | None = None

    def add(self, result: IntakeResult) -> None:
        self.fetched += result.taken + result.quarantined
        self.opened += result.opened
        self.quarantined += result.quarantined
        self.position = result.position or self.position
        self.conversation_ids.extend(result.conversation_ids)


def chunks(uids: list[int], sizes: dict[int, int]) -> Iterator[list[int]]:
    """Batches bounded by count and bytes, so memory stays bounded whatever the mailbox holds."""
    chunk: list[int] = []
    total = 0
    for uid in uids:
        size = min(sizes.get(uid, 0), MAX_MESSAGE_BYTES)
        if chunk and (len(chunk) >= BATCH_MESSAGES or total + size > BATCH_BYTES):
            yield chunk
            chunk, total = [], 0
        chunk.append(uid)
        total += size
    if chunk:
        yield chunk


class MailboxSync:
    def __init__(self, app: Mailroom, blobs: BlobStore, locks: MailboxLocks, sync_state: SyncState,
                 extra_ca_file: str | None, timeout: float = 30.0) -> None:
        self.app = app
        self.blobs = blobs
        self.locks = locks
        self.sync_state = sync_state
        self.extra_ca_file = extra_ca_file
        self.timeout = timeout

    @classmethod
    def of(cls, services: Services, timeout: float = 30.0) -> MailboxSync:
        return cls(services.app, services.blobs, services.locks, services.sync_state,
                   services.settings.extra_ca_file, timeout)

    def sync(self, mailbox_id: UUID, wait: float = 0.0) -> SyncReport:
        lease = self.locks.acquire(f"mailbox:{mailbox_id}", wait)
        if lease is None:
            raise Busy(str(mailbox_id))
        with lease:
            mailbox = self.app.find(mailbox_id)
            if isinstance(mailbox, Mailbox) and mailbox.deleted:
                self.sync_state.forget(mailbox_id)  # a deleted mailbox leaves no sync state behind
                return SyncReport()
            if not isinstance(mailbox, Mailbox) or not mailbox.enabled:
                return SyncReport()
            report = SyncReport()
            try:
                password = self.app.secrets.get(mailbox.secret_ref)
                if mailbox.protocol is MailProtocol.IMAP:
                    self._imap(mailbox, password, report, lease)
                else:
                    self._pop3(mailbox, password, report, lease)
            except LoginFailed as exc:
                self._failed(mailbox, f"login failed ({exc.code}): {exc.message}", exc.code, report)
            except (OSError, EOFError, TimeoutError) as exc:
                self._failed(mailbox, f"connection failed: {exc}", "UNREACHABLE", report)
            except Exception as exc:  # any other failure must show, not stop the worker silently
                log.exception("sync of %s failed", mailbox.address)
                self._failed(mailbox, f"sync failed: {type(exc).__name__}: {exc}", "SYNC_FAILED", report)
            else:
                self._succeeded(mailbox)
            label = str(mailbox.id)
            TAKEN_IN.labels(label).inc(report.fetched - report.quarantined)
            QUARANTINED.labels(label).inc(report.quarantined)
            return report

    def _imap(self, mailbox: Mailbox, password: str, report: SyncReport, lease: Any) -> None:
        state = self.sync_state
        with ImapSession(mailbox.incoming, password, extra_ca_file=self.extra_ca_file,
                         timeout=self.timeout) as session:
            for folder in mailbox.folders:
                status = session.open_folder(folder)
                known = state.folder(mailbox.id, folder)
                last = known[1] if known is not None and known[0] == status.uidvalidity else 0
                if known is not None and known[0] != status.uidvalidity:
                    log.warning("%s %s: UIDVALIDITY changed; re-reading (known messages are skipped)",
                                mailbox.address, folder)
                uids = session.new_uids(last)
                sizes = session.sizes(uids) if uids else {}
                source = f"imap:{folder}:{status.uidvalidity}:"
                # While one batch is parsed elsewhere, the one before it is recorded here.
                pending: _Parsed | None = None
                for chunk in chunks(uids, sizes):
                    small = [u for u in chunk if sizes.get(u, 0) <= MAX_MESSAGE_BYTES]
                    large = [u for u in chunk if sizes.get(u, 0) > MAX_MESSAGE_BYTES]
                    raws = session.fetch(small) if small else {}
                    batch = [(f"{source}{u}", raws[u]) for u in small if u in raws]
                    headers = session.fetch_header(large) if large else {}
                    # A large message deleted from the server meanwhile is skipped, like a small one.
                    oversized = [too_large(f"{source}{u}", sizes[u], headers[u], self.blobs)
                                 for u in large if u in headers]
                    parsed = _Parsed(PARSER.submit(batch, mailbox.address), batch, oversized, max(chunk))
                    if pending is not None:
                        self._record(mailbox, pending, report, lease, folder, status.uidvalidity)
                    pending = parsed
                if pending is not None:
                    self._record(mailbox, pending, report, lease, folder, status.uidvalidity)

    def _record(self, mailbox: Mailbox, parsed: _Parsed, report: SyncReport, lease: Any, folder: str,
                uidvalidity: int) -> None:
        """Stores a parsed batch's blobs, takes it in, then (only then) advances the cursor."""
        arrived, blob_rows = PARSER.result(parsed.job, parsed.batch, mailbox.address)
        self.blobs.put_rows(blob_rows)
        report.add(self.app.take_in(mailbox.id, arrived + parsed.oversized))
        self.sync_state.advance_folder(mailbox.id, folder, uidvalidity, parsed.last_uid)
        lease.renew()

    def _pop3(self, mailbox: Mailbox, password: str, report: SyncReport, lease: Any) -> None:
        state, blobs, app = self.sync_state, self.blobs, self.app
        with Pop3Session(mailbox.incoming, password, extra_ca_file=self.extra_ca_file,
                         timeout=self.timeout) as session:
            seen = state.seen_uidls(mailbox.id)
            listing = [(n, uidl, size) for n, uidl, size in session.listing() if uidl not in seen]
            numbers = [n for n, _, _ in listing]
            by_number = {n: (uidl, size) for n, uidl, size in listing}
            for chunk in chunks(numbers, {n: s for n, (_, s) in by_number.items()}):
                raws, oversized = [], []
                for n in chunk:
                    uidl, size = by_number[n]
                    if size > MAX_MESSAGE_BYTES:
                        oversized.append(too_large(f"pop3:{uidl}", size, session.top(n, 0), blobs))
                    else:
                        raws.append((f"pop3:{uidl}", session.retrieve(n)))
                # One parse and one blob write per batch, as for IMAP, not one per message.
                report.add(app.take_in(mailbox.id, arrivals(raws, mailbox.address, blobs) + oversized))
                state.mark_uidls(mailbox.id, [by_number[n][0] for n in chunk])
                lease.renew()

    def _failed(self, mailbox: Mailbox, error: str, code: str, report: SyncReport) -> None:
        log.warning("mailbox %s: %s", mailbox.address, error)
        SYNC_ERRORS.labels(str(mailbox.id)).inc()
        self.sync_state.failed(mailbox.id, error, RETRY_BASE_SECONDS)
        report.error, report.error_code = error, code
        self._set_failing(mailbox.id, error)

    def _succeeded(self, mailbox: Mailbox) -> None:
        self.sync_state.succeeded(mailbox.id)
        if mailbox.failing:
            self._set_failing(mailbox.id, None)

    def _set_failing(self, mailbox_id: UUID, error: str | None) -> None:
        self.app.record_sync_health(mailbox_id, error)
