"""Background work of one process: the log followers (views always; the assigner and mailbox
sync unless the process is API-only) and the watch that wakes them.

Every enabled mailbox is synced every MAILROOM_POLL_SECONDS (failing ones back off);
an IMAP mailbox whose server offers IDLE is also watched, and synced as soon as the
server announces new mail. Across processes a mailbox is synced by one worker at a
time (the sync's lock); a worker that finds it busy simply tries again later.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from functools import partial
from uuid import UUID

from adapters.imap import ImapSession
from api.processes.sync import Busy, MailboxSync
from api.services import Services
from domain.mailbox import Mailbox
from domain.values import MailProtocol
from projections.logwatch import LogWatch

log = logging.getLogger("mailroom.workers")
IDLE_RENEW_SECONDS = 25 * 60  # servers may drop an IDLE after 29 minutes


class MailboxScheduler:
    def __init__(self, services: Services, stopping: threading.Event) -> None:
        self.services = services
        self.stopping = stopping
        self.sync = MailboxSync.of(services)
        self.due: dict[str, float] = {}
        self.wake = threading.Event()
        self.watchers: dict[str, threading.Thread] = {}

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self._tick()
            except Exception:
                log.exception("mailbox scheduler tick failed")
            self.wake.wait(1.0)
            self.wake.clear()

    def _tick(self) -> None:
        poll = self.services.settings.poll_seconds
        listed = self.services.directory.mailboxes()
        mailboxes = [m for m in listed if m["enabled"]]
        for gone in self.services.sync_state.mailbox_ids() - {m["id"] for m in listed}:
            with contextlib.suppress(Busy):  # deleted since: its sync state goes, under its sync lock
                self.sync.sync(UUID(gone))
        now = time.time()
        for row in mailboxes:
            mailbox_id = row["id"]
            if self.stopping.is_set():
                return
            health = self.services.sync_state.health(mailbox_id)
            if now < max(self.due.get(mailbox_id, 0.0), health.next_attempt_at):
                continue
            with contextlib.suppress(Busy):  # another worker is on it
                self.sync.sync(UUID(mailbox_id))
            self.due[mailbox_id] = time.time() + poll
            if row["protocol"] == MailProtocol.IMAP.value:
                self._watch(mailbox_id)

    def _watch(self, mailbox_id: str) -> None:
        watcher = self.watchers.get(mailbox_id)
        if watcher is None or not watcher.is_alive():
            watcher = threading.Thread(target=self._idle, args=(mailbox_id,), name=f"idle-{mailbox_id}", daemon=True)
            self.watchers[mailbox_id] = watcher
            watcher.start()

    def _idle(self, mailbox_id: str) -> None:
        """Holds an IDLE on INBOX; new mail makes the mailbox due now. Ends where IDLE is not offered."""
        while not self.stopping.is_set():
            mailbox = self.services.app.find(UUID(mailbox_id))
            if not isinstance(mailbox, Mailbox) or mailbox.deleted or not mailbox.enabled or mailbox.failing:
                return
            try:
                password = self.services.app.secrets.get(mailbox.secret_ref)
                with ImapSession(mailbox.incoming, password, extra_ca_file=self.services.settings.extra_ca_file,
                                 timeout=30.0) as session:
                    if not session.supports_idle():
                        return
                    session.open_folder("INBOX")
                    # Mail that landed while IDLE was being set up announces nothing: sync once
                    # now that the session is established (and at every renewal).
                    self.due[mailbox_id] = 0.0
                    self.wake.set()
                    renew_at = time.monotonic() + IDLE_RENEW_SECONDS
                    while not self.stopping.is_set() and time.monotonic() < renew_at:
                        if session.idle_wait(5.0):
                            self.due[mailbox_id] = 0.0
                            self.wake.set()
            except Exception as exc:  # the scheduler's polling still covers this mailbox
                log.info("IDLE on %s ended: %s", mailbox.address, exc)
                self.stopping.wait(30.0)


class Workers:
    """`processes=False` (an API-only replica) still follows the views, so that its requests
    read their own writes; the assigner and mailbox sync then run in a worker elsewhere."""

    def __init__(self, services: Services, mail: bool = True, processes: bool = True) -> None:
        self.services = services
        self.mail = mail and processes
        self.processes = processes
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []
        views = list(services.projections.followers.values())
        self.followers = services.followers() if processes else views

    def start(self) -> None:
        self.stopping.clear()
        s = self.services
        signal = s.app.recorder.signal  # type: ignore[attr-defined]
        targets: list[tuple[str, Callable[[], None]]] = [
            ("logwatch", lambda: LogWatch(s.app, s.database).run(self.stopping))]
        targets += [(f"follower-{f.name}", partial(f.run, self.stopping, signal)) for f in self.followers]
        if self.mail:
            targets.append(("mailboxes", MailboxScheduler(s, self.stopping).run))
        for name, target in targets:
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self.threads.append(thread)

    def alive(self) -> bool:
        return bool(self.threads) and all(t.is_alive() for t in self.threads)

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=10)
        self.threads.clear()

    def run_forever(self) -> None:
        """`mailroom worker`: the same work, in the foreground."""
        self.start()
        try:
            while self.alive():
                self.stopping.wait(1.0)
        finally:
            self.stop()
