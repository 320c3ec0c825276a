"""The outbox sender: a log follower (projections/follower.py) that keeps the outbox table
(projections/outbox.py, rows and position in one transaction) and, after each catch-up, while it
holds the outbox's lease, delivers the replies that are due over SMTP (adapters/smtp.py).

At most one delivery per reply: each attempt is claimed (a new version of the Reply) before the
SMTP transaction and handed over (another version) just before its final dot, which is sent only
if that record succeeded. A sender that takes the lease over settles the claims of the one
before (domain/reply.py, Reply.settle_abandoned): without a hand-over the message may go again
(the server never got its final dot, so it delivered nothing); with one, it never goes again
and counts as sent. The window left is between the hand-over record and the server's answer:
a sender dying in it leaves a reply marked sent whose final dot may not have left (one write
and one round trip on a live connection: milliseconds).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
import threading
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from adapters.blobs import BlobStore
from adapters.database import Database
from adapters.smtp import DeliveryFailed, deliver
from domain.application import Mailroom
from domain.commands.replies import HandOverRefused
from domain.mailbox import Mailbox
from domain.reply import Delivery
from projections.driver import Projections, ViewConsumer
from projections.outbox import OUTBOX, Outbox

log = logging.getLogger("mailroom.outbox")
NAME = "outbox"
BATCH = 50  # replies delivered per catch-up, before the log is read again
PARALLEL = 4  # SMTP transactions at once
_SERVER_REPLY = re.compile(r"^[45]\d\d\b")  # a reason that is the server's own answer: it did not take the mail
Send = Callable[..., str]


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class OutboxSender(ViewConsumer):
    """The follower's consumer: the outbox view's batches, then deliveries (`after_catch_up`)."""

    def __init__(self, app: Mailroom, database: Database, blobs: BlobStore, extra_ca_file: str | None = None,
                 send: Send = deliver, timeout: float = 30.0) -> None:
        super().__init__(Projections(app, database, [Outbox()]), Outbox())
        self.app = app
        self.database = database
        self.blobs = blobs
        self.extra_ca_file = extra_ca_file
        self.send = send
        self.timeout = timeout
        self.worker = worker_name()
        self._executor: ThreadPoolExecutor | None = None
        self._in_flight: set[UUID] = set()  # replies a delivery of this process is working on now
        self._pool_lock = threading.Lock()

    def create_tables(self) -> None:
        self.projections.create_tables()

    def read(self, after: int, limit: int) -> Sequence[Any]:
        return self.projections.read(after, limit)

    # ------------------------------------------------------------------ deliveries

    def after_catch_up(self, renew: Callable[[], Any] | None = None) -> int:
        """Settles claims of senders gone, then delivers what is due; returns replies handled."""
        now = datetime.now(UTC)
        due: list[UUID] = []
        settled = 0
        for row in self.database.query(
                f"SELECT reply_id, claimed_by FROM {OUTBOX.name} WHERE due_at <= ? OR "
                f"(claimed_by IS NOT NULL AND claimed_by <> ?) ORDER BY due_at LIMIT {BATCH}",
                (now.isoformat(), self.worker)):
            reply_id = UUID(row["reply_id"])
            if row["claimed_by"] and (row["claimed_by"] != self.worker or reply_id not in self._in_flight):
                # Another sender's (it no longer holds the lease), or our own that no delivery is
                # working on any more (it ended in an error before its outcome was recorded).
                settled += self.app.settle_abandoned_reply(reply_id, self.worker, now,
                                                           own=row["claimed_by"] == self.worker)
            elif not row["claimed_by"]:
                due.append(reply_id)
        # A few deliveries at once: one slow server does not hold up the other mailboxes' replies.
        delivered = sum(self._pool().map(lambda reply_id: self.deliver(reply_id, now, renew), due))
        return settled + delivered

    def deliver(self, reply_id: UUID, now: datetime, renew: Callable[[], Any] | None = None) -> int:
        with self._pool_lock:
            self._in_flight.add(reply_id)
        try:
            delivery = self.app.claim_reply(reply_id, self.worker, now)
            if delivery is None:
                return 0
            try:
                self.transmit(delivery)
            except Exception as exc:  # a database error mid-way: recorded as a temporary failure if it can be
                log.exception("reply %s attempt %s failed unexpectedly", reply_id, delivery.attempt)
                with contextlib.suppress(Exception):
                    self.app.record_failure(delivery, self.worker, f"internal error: {type(exc).__name__}", False,
                                            datetime.now(UTC))
            if renew is not None:
                renew()
            return 1
        finally:
            with self._pool_lock:
                self._in_flight.discard(reply_id)

    def _pool(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(PARALLEL, thread_name_prefix="outbox")
            return self._executor

    def transmit(self, delivery: Delivery) -> None:
        mailbox = self.app.find(delivery.mailbox_id)
        data = self.blobs.get(delivery.raw_blob)
        now = datetime.now(UTC)
        if not isinstance(mailbox, Mailbox) or mailbox.deleted or mailbox.outgoing is None or data is None:
            why = "the message is gone" if data is None else "the mailbox was deleted or has no outgoing settings"
            self.app.record_failure(delivery, self.worker, why, True, now)
            return
        handed: list[bool] = []

        def handing_over() -> None:
            self.app.record_handover(delivery, self.worker)
            handed.append(True)

        try:
            password = self.app.secrets.get(mailbox.secret_ref)
            response = self.send(
                mailbox.outgoing, password, delivery.envelope_from, delivery.recipients, data,
                extra_ca_file=self.extra_ca_file, timeout=self.timeout, handing_over=handing_over)
        except HandOverRefused as refused:  # settled by a sender that took over: it decides
            log.warning("reply %s: %s", delivery.reply_id, refused)
            return
        except DeliveryFailed as failed:
            log.info("reply %s attempt %s: %s", delivery.reply_id, delivery.attempt, failed.reason)
            if handed and not _SERVER_REPLY.match(failed.reason):
                # The final dot went out and no answer came: it may have arrived. Never again.
                self.app.record_sent(delivery, self.worker, f"unconfirmed: {failed.reason}", confirmed=False)
            else:
                self.app.record_failure(delivery, self.worker, failed.reason, failed.permanent, datetime.now(UTC))
            return
        self.app.record_sent(delivery, self.worker, response)

    # ------------------------------------------------------------------ /metrics

    def depth(self) -> dict[str, int]:
        rows = self.database.query(f"SELECT mailbox_id, COUNT(*) AS n FROM {OUTBOX.name} GROUP BY mailbox_id")
        return {str(r["mailbox_id"]): int(r["n"]) for r in rows}

    def totals(self) -> list[dict[str, Any]]:
        return self.database.query("SELECT mailbox_id, sent, retried, failed FROM rm_outbox_totals")
