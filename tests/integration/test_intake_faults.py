"""Mail intake when things go wrong, against the real Dovecot: a worker killed mid-sync, a
UIDVALIDITY reset, a connection dropped mid-fetch, a password changed on the server, two
workers on one mailbox, and mail too large or with very many parts. In every case each
message is taken in exactly once, nothing is lost, and trouble is visible (FAILING)."""

from __future__ import annotations

import contextlib
import email
import hashlib
import imaplib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

import api.processes.sync
from adapters.inbound import MAX_MESSAGE_BYTES
from adapters.settings import load_settings
from api.bootstrap import Services, real_login
from api.processes.sync import Busy, MailboxSync, SyncReport
from domain.commands.base import Conflict
from domain.mailbox import Mailbox
from domain.values import MailProtocol
from projections.conversation_queries import ConversationFilter
from tests.dovecot import Dovecot
from tests.integration.faults_support import (
    Proxy,
    append_many,
    bind_at,
    count_rows,
    count_topic,
    huge_attachment,
    many_attachments,
    messages_of,
    new_user,
    padded,
    plain,
    uidvalidity,
    verify_views,
)

ROOT = Path(__file__).resolve().parents[2]
INBOUND_KEY = "mailroom:InboundKey.Created"
QUARANTINED = "mailroom:QuarantinedMessage.Quarantined"
SYNC_FAILED = "mailroom:Mailbox.SyncFailed"
SYNC_RECOVERED = "mailroom:Mailbox.SyncRecovered"


@pytest.fixture
def services(make_services: Callable[..., Services]) -> Services:
    """Services whose mailbox logins go to the real server."""
    return make_services(verify_login=real_login(load_settings()))


def real_services(make_services: Callable[..., Services]) -> Services:
    return make_services(verify_login=real_login(load_settings()))


def assert_each_once(services: Services, mailbox_id: UUID, message_ids: list[str]) -> None:
    """Each of the delivered Message-IDs is exactly one message (and one InboundKey) of this
    mailbox, each in a conversation of its own; the views equal a rebuild from the log."""
    services.projections.catch_up()
    rows = messages_of(services, mailbox_id)
    taken = [row["message_id"] for row in rows]
    assert len(taken) == len(set(taken)), "a Message-ID was taken in twice"
    assert sorted(taken) == sorted(message_ids)
    assert count_topic(services, INBOUND_KEY) == len(message_ids)
    _, _, total = services.conversations.page(ConversationFilter(mailbox_id=str(mailbox_id)), 1, None)
    assert total == len(message_ids)
    assert verify_views(services) == {name: [] for name in services.projections.views}


def message_id_of(raw: bytes) -> str:
    value = email.message_from_bytes(raw)["Message-ID"]
    assert value, "no Message-ID"
    return "".join(str(value).split()).strip("<>")


def status(services: Services, mailbox_id: UUID) -> str:
    mailbox = services.app.find(mailbox_id)
    assert isinstance(mailbox, Mailbox)
    return mailbox.status


def mailbox_row(services: Services, mailbox_id: UUID) -> dict[str, Any]:
    services.projections.catch_up()
    row = services.directory.mailbox(mailbox_id)
    assert row is not None
    return row


# ----------------------------------------------------------------- 2. kill -9 in the middle of a sync


def test_a_sync_killed_midway_takes_in_every_message_once_after_restart(
    services: Services, dovecot: Dovecot
) -> None:
    count = 300
    user = new_user(dovecot)
    raws = [plain(n, "kill") for n in range(count)]
    uids = append_many(dovecot, user, raws)
    mailbox_id = bind_at(services, dovecot, user)

    # A process of its own (same MAILROOM_* environment), 20 messages a batch, pausing after
    # each batch is recorded: killed with SIGKILL once some batches but not all are recorded,
    # most likely in that pause (recorded, but the cursor not moved on: the worst moment).
    worker = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.faults_worker", str(mailbox_id), "20", "0.3"],
        cwd=ROOT, env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        recorded = 0
        while time.monotonic() < deadline and worker.poll() is None:
            recorded = count_topic(services, INBOUND_KEY)
            if recorded >= 60:
                break
            time.sleep(0.01)
        assert worker.poll() is None, f"the worker ended before it was killed: {worker.communicate()[0]!r}"
        worker.send_signal(signal.SIGKILL)
    finally:
        if worker.poll() is None:
            worker.kill()
        output, _ = worker.communicate(timeout=30)
    assert worker.returncode == -signal.SIGKILL, output
    recorded = count_topic(services, INBOUND_KEY)
    assert 0 < recorded < count, recorded
    cursor = services.sync_state.folder(mailbox_id, "INBOX")
    assert cursor is not None and cursor[1] < uids[recorded - 1]  # recorded mail beyond the cursor

    # "Restart": this process syncs the same mailbox (the dead worker's lock is gone).
    report = MailboxSync.of(services).sync(mailbox_id, wait=10)
    assert (report.error, report.quarantined) == (None, 0)
    assert report.fetched == count - recorded
    assert services.sync_state.folder(mailbox_id, "INBOX") == (uidvalidity(dovecot, user), max(uids))
    assert_each_once(services, mailbox_id, [message_id_of(raw) for raw in raws])
    assert MailboxSync.of(services).sync(mailbox_id).fetched == 0


# ----------------------------------------------------------------- 3. UIDVALIDITY reset


def test_a_uidvalidity_reset_takes_in_only_the_new_message(services: Services, dovecot: Dovecot) -> None:
    user = new_user(dovecot)
    raws = [plain(n, "reset") for n in range(3)]
    no_message_id = (b"From: Erin <erin@customer.example>\r\nTo: support@example.com\r\n"
                     b"Subject: no Message-ID here\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\nHi\r\n")
    unparseable = b"Subject: no sender at all\r\n\r\nbody\r\n"
    append_many(dovecot, user, [*raws, no_message_id, unparseable])
    mailbox_id = bind_at(services, dovecot, user)
    first = MailboxSync.of(services).sync(mailbox_id)
    assert (first.fetched, first.opened, first.quarantined, first.error) == (5, 4, 1, None)
    before = uidvalidity(dovecot, user)

    # Dovecot derives UIDVALIDITY and UIDs from dovecot-uidlist and its indexes: without them
    # it renumbers the Maildir from 1 under a new UIDVALIDITY (the time it rebuilds them).
    dovecot.stop()
    try:
        maildir = dovecot.maildir(user)
        removed = [*maildir.glob("dovecot-uidlist"), *maildir.glob("dovecot.index*")]
        assert any(p.name == "dovecot-uidlist" for p in removed)
        for path in removed:
            path.unlink()
    finally:
        dovecot.start()  # the server is shared: it must run again whatever happened
    after = uidvalidity(dovecot, user)
    assert after != before

    newest = plain(99, "reset")
    append_many(dovecot, user, [newest])
    report = MailboxSync.of(services).sync(mailbox_id)
    assert (report.fetched, report.opened, report.quarantined, report.error) == (1, 1, 0, None)
    assert services.sync_state.folder(mailbox_id, "INBOX") == (after, 6)
    assert count_topic(services, QUARANTINED) == 1
    ids = [message_id_of(raw) for raw in [*raws, newest]]
    services.projections.catch_up()
    no_id = [r["message_id"] for r in messages_of(services, mailbox_id) if r["message_id"] not in ids]
    assert len(no_id) == 1 and no_id[0].endswith("@mailroom.invalid")
    assert_each_once(services, mailbox_id, [*ids, no_id[0]])
    assert len(services.conversations.quarantine(mailbox_id)) == 1


def test_a_reused_message_id_is_another_mail_but_a_relayed_copy_is_not(services: Services, dovecot: Dovecot) -> None:
    """Exactly once means: the same mail again is nothing new, wherever it comes from (served
    again, renumbered, or delivered to two of our mailboxes with its own trace headers); but a
    different mail under a Message-ID seen before (some senders reuse them) is never dropped."""
    first_user, second_user = new_user(dovecot), new_user(dovecot)
    first = bind_at(services, dovecot, first_user)
    second = bind_at(services, dovecot, second_user)
    original = plain(1, "reuse", message_id="<always-the-same@sender.example>")
    trace = b"Received: from mx2.example.com by mail.example.com; Mon, 1 Jan 2024 10:00:00 +0000\r\n"
    relayed = trace + f"Delivered-To: {second_user}@example.com\r\n".encode() + original
    different = plain(2, "reuse", message_id="<always-the-same@sender.example>", body="A new question.\n")
    append_many(dovecot, first_user, [original])
    append_many(dovecot, second_user, [relayed])
    assert MailboxSync.of(services).sync(first).opened == 1
    assert (MailboxSync.of(services).sync(second).fetched, count_topic(services, INBOUND_KEY)) == (0, 1)

    append_many(dovecot, first_user, [different, original])  # a new mail, and the first one again
    report = MailboxSync.of(services).sync(first)
    assert (report.fetched, report.opened, report.error) == (1, 1, None)
    services.projections.catch_up()
    rows = messages_of(services, first)
    assert sorted(r["text"].strip() for r in rows) == ["A new question.", "Hello, this is message 1 of reuse."]
    assert count_topic(services, INBOUND_KEY) == 2
    assert verify_views(services) == {name: [] for name in services.projections.views}


# ----------------------------------------------------------------- 4. connection dropped mid-fetch


@pytest.mark.parametrize("fault", ["cut", "freeze"])
def test_a_connection_lost_mid_fetch_fails_visibly_and_loses_nothing(
    services: Services, dovecot: Dovecot, monkeypatch: pytest.MonkeyPatch, fault: str
) -> None:
    count, batch = 40, 10
    user = new_user(dovecot)
    raws = [padded(n, f"drop-{fault}", 150_000) for n in range(count)]
    append_many(dovecot, user, raws)
    with Proxy(dovecot.imap_port) as proxy:
        mailbox_id = bind_at(services, dovecot, user, port=proxy.port)
        monkeypatch.setattr(api.processes.sync, "BATCH_MESSAGES", batch)

        # Once the first batch is recorded, the next message body read (the second batch's
        # UID FETCH, already streaming in) finds the connection cut or the server gone silent.
        armed, struck = threading.Event(), threading.Event()
        take_in = services.app.take_in

        def take_in_then_arm(*args: Any, **kwargs: Any) -> Any:
            result = take_in(*args, **kwargs)
            armed.set()
            return result

        read = imaplib.IMAP4.read

        def read_with_fault(self: imaplib.IMAP4, size: int) -> bytes:
            if armed.is_set() and not struck.is_set():
                struck.set()
                proxy.cut() if fault == "cut" else proxy.freeze()
            return read(self, size)

        monkeypatch.setattr(services.app, "take_in", take_in_then_arm)
        monkeypatch.setattr(imaplib.IMAP4, "read", read_with_fault)

        started = time.monotonic()
        report = MailboxSync.of(services, timeout=1.0).sync(mailbox_id)
        assert struck.is_set()
        assert time.monotonic() - started < 10
        assert report.error_code == "UNREACHABLE", report
        assert report.error is not None and "connection" in report.error
        # The first batch is recorded; a batch whose response had fully arrived before the
        # fault may be too. Whatever was recorded, the cursor is exactly there.
        assert report.fetched in range(batch, count, batch), report.fetched
        health = services.sync_state.health(mailbox_id)
        assert health.last_error == report.error and health.next_attempt_at > time.time()
        row = mailbox_row(services, mailbox_id)
        assert (row["failing"], row["last_error"]) == (1, report.error)
        assert "connection" in row["last_error"]
        assert services.sync_state.folder(mailbox_id, "INBOX")[1] == report.fetched  # type: ignore[index]
        assert count_topic(services, INBOUND_KEY) == report.fetched
        recorded = report.fetched

        # The proxy works again: new connections pass (the fault struck once).
        if fault == "freeze":
            proxy.thaw()
        again = MailboxSync.of(services).sync(mailbox_id)
        assert (again.fetched, again.error) == (count - recorded, None)
    row = mailbox_row(services, mailbox_id)
    assert (row["failing"], row["last_error"]) == (0, None)
    assert status(services, mailbox_id) == "CONNECTED"
    assert (count_topic(services, SYNC_FAILED), count_topic(services, SYNC_RECOVERED)) == (1, 1)
    assert_each_once(services, mailbox_id, [message_id_of(raw) for raw in raws])


# ----------------------------------------------------------------- 5. password changed on the server


def test_a_password_changed_on_the_server_turns_the_mailbox_failing_once_until_fixed(
    services: Services, dovecot: Dovecot
) -> None:
    user = new_user(dovecot)
    append_many(dovecot, user, [plain(0, "pw")])
    mailbox_id = bind_at(services, dovecot, user)
    assert MailboxSync.of(services).sync(mailbox_id).fetched == 1

    dovecot.set_password(user, "changed-by-the-admin")
    reports = []
    next_attempts = []
    for _ in range(3):
        reports.append(MailboxSync.of(services).sync(mailbox_id))
        next_attempts.append(services.sync_state.health(mailbox_id).next_attempt_at)
    for report in reports:
        assert report.error_code == "AUTH_FAILED"
        assert report.error is not None and report.error.startswith("login failed (AUTH_FAILED)")
        assert report.fetched == 0
    health = services.sync_state.health(mailbox_id)
    assert health.failures == 3
    assert "login failed" in (health.last_error or "") and "AUTHENTICATIONFAILED" in (health.last_error or "")
    assert next_attempts[0] > time.time() + 5  # backed off
    assert next_attempts[0] < next_attempts[1] < next_attempts[2]  # and further each time
    row = mailbox_row(services, mailbox_id)
    assert row["failing"] == 1 and "login failed" in row["last_error"]
    assert status(services, mailbox_id) == "FAILING"
    assert count_topic(services, SYNC_FAILED, mailbox_id) == 1  # a status change, not every poll

    # The admin stores the new password (verified against the server); the next sync works.
    written = services.app.update_mailbox(mailbox_id, password="changed-by-the-admin")
    services.projections.wait_for(written.position)
    append_many(dovecot, user, [plain(1, "pw")], password="changed-by-the-admin")
    report = MailboxSync.of(services).sync(mailbox_id)
    assert (report.fetched, report.error, report.error_code) == (1, None, None)
    row = mailbox_row(services, mailbox_id)
    assert (row["failing"], row["last_error"]) == (0, None)
    assert status(services, mailbox_id) == "CONNECTED"
    health = services.sync_state.health(mailbox_id)
    assert (health.last_error, health.failures, health.next_attempt_at) == (None, 0, 0.0)
    assert count_topic(services, SYNC_FAILED, mailbox_id) == 1
    assert count_topic(services, SYNC_RECOVERED, mailbox_id) == 1


def test_setting_the_server_password_back_also_recovers(services: Services, dovecot: Dovecot) -> None:
    user = new_user(dovecot)
    mailbox_id = bind_at(services, dovecot, user)
    dovecot.set_password(user, "temporarily-different")
    assert MailboxSync.of(services).sync(mailbox_id).error_code == "AUTH_FAILED"
    assert MailboxSync.of(services).sync(mailbox_id).error_code == "AUTH_FAILED"
    dovecot.set_password(user, "s3cret-pass")
    report = MailboxSync.of(services).sync(mailbox_id)
    assert (report.error, report.error_code) == (None, None)
    assert mailbox_row(services, mailbox_id)["failing"] == 0
    assert (count_topic(services, SYNC_FAILED, mailbox_id), count_topic(services, SYNC_RECOVERED, mailbox_id)) == (1, 1)


# ----------------------------------------------------------------- 6. two workers on one mailbox


def _deliver_with_replies(dovecot: Dovecot, user: str, tag: str, count: int) -> list[bytes]:
    """`count` mails: new questions, and every fourth a reply to the question before it."""
    raws: list[bytes] = []
    for n in range(count):
        if n % 4 == 3:
            raws.append(plain(n, tag, in_reply_to=f"<{message_id_of(raws[-1])}>", sender=f"c{n - 1}@customer.example"))
        else:
            raws.append(plain(n, tag))
    append_many(dovecot, user, raws)
    return raws


def _check_two_workers(services: Services, mailbox_id: UUID, raws: list[bytes], reports: list[SyncReport]) -> None:
    assert [r.error for r in reports] == [None] * len(reports)
    assert sum(r.fetched for r in reports) == len(raws)
    services.projections.catch_up()
    rows = messages_of(services, mailbox_id)
    assert sorted(r["message_id"] for r in rows) == sorted(message_id_of(raw) for raw in raws)
    assert count_topic(services, INBOUND_KEY) == len(raws)
    questions = len(raws) - len(raws) // 4
    _, _, total = services.conversations.page(ConversationFilter(), 1, None)
    assert total == questions
    counts = [row["message_count"] for row in services.conversations.page(ConversationFilter(), 1000, None)[0]]
    assert sorted(counts) == sorted([2] * (len(raws) // 4) + [1] * (questions - len(raws) // 4))
    assert verify_views(services) == {name: [] for name in services.projections.views}


def _together(*calls: Callable[[], SyncReport]) -> list[SyncReport]:
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(i: int, call: Callable[[], SyncReport]) -> None:
        barrier.wait(timeout=10)
        try:
            results[i] = call()
        except BaseException as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results


def test_two_workers_waiting_for_the_lock_sync_one_after_the_other(
    make_services: Callable[..., Services], dovecot: Dovecot, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = real_services(make_services), real_services(make_services)
    user = new_user(dovecot)
    raws = _deliver_with_replies(dovecot, user, "wait", 80)
    mailbox_id = bind_at(first, dovecot, user)
    monkeypatch.setattr(api.processes.sync, "BATCH_MESSAGES", 10)
    reports = _together(lambda: MailboxSync.of(first).sync(mailbox_id, wait=30),
                        lambda: MailboxSync.of(second).sync(mailbox_id, wait=30))
    assert sorted(r.fetched for r in reports) == [0, len(raws)]
    _check_two_workers(first, mailbox_id, raws, reports)


def test_two_workers_retrying_when_busy_take_each_message_once(
    make_services: Callable[..., Services], dovecot: Dovecot, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = real_services(make_services), real_services(make_services)
    user = new_user(dovecot)
    raws = _deliver_with_replies(dovecot, user, "busy", 80)
    mailbox_id = bind_at(first, dovecot, user)
    monkeypatch.setattr(api.processes.sync, "BATCH_MESSAGES", 10)
    busy = []

    def worker(services: Services) -> Callable[[], SyncReport]:
        def run() -> SyncReport:
            total = SyncReport()
            for _ in range(3):  # three polls each; a busy mailbox is tried again a moment later
                try:
                    report = MailboxSync.of(services).sync(mailbox_id, wait=0)
                except Busy:
                    busy.append(services)
                    time.sleep(0.05)
                    continue
                total.fetched += report.fetched
                total.error = total.error or report.error
            return total
        return run

    reports = _together(worker(first), worker(second))
    assert busy, "the two workers never met"
    _check_two_workers(first, mailbox_id, raws, reports)


class _NoLock:
    """A lock that is always granted: as if a lease had expired under a slow worker and a
    second one took over while the first still ran. Only the store's identities protect then."""

    class _Lease:
        def renew(self) -> None:
            pass

        def __enter__(self) -> _NoLock._Lease:
            return self

        def __exit__(self, *exc: object) -> None:
            pass

    def acquire(self, name: str, wait: float) -> _NoLock._Lease:
        return self._Lease()


def test_two_workers_taking_in_the_same_messages_at_once_record_each_once(
    make_services: Callable[..., Services], dovecot: Dovecot, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = real_services(make_services), real_services(make_services)
    user = new_user(dovecot)
    raws = _deliver_with_replies(dovecot, user, "race", 120)
    mailbox_id = bind_at(first, dovecot, user)
    monkeypatch.setattr(api.processes.sync, "BATCH_MESSAGES", 10)

    # Both workers hold the batch they built (the same messages, none recorded yet) until the
    # other has built its own too, then both save: one save must lose on the derived ids.
    gate = threading.Barrier(2)
    conflicts: list[Services] = []
    for services in (first, second):
        services.locks = _NoLock()  # type: ignore[assignment]
        store = services.app._store
        started: list[bool] = []

        def gated_store(*aggregates: Any, store: Any = store, started: list[bool] = started,
                        services: Services = services) -> Any:
            if not started:
                started.append(True)
                with contextlib.suppress(threading.BrokenBarrierError):
                    gate.wait(timeout=10)
            try:
                return store(*aggregates)
            except Conflict:
                conflicts.append(services)
                raise

        monkeypatch.setattr(services.app, "_store", gated_store)
    reports = _together(lambda: MailboxSync.of(first).sync(mailbox_id), lambda: MailboxSync.of(second).sync(mailbox_id))
    assert conflicts, "the two workers never saved the same messages at the same time"
    _check_two_workers(first, mailbox_id, raws, reports)


# ----------------------------------------------------------------- 7. very large mail, very many parts


@pytest.fixture
def odd_mail() -> Iterator[tuple[bytes, bytes, list[bytes]]]:
    """A mail a bit over the size cap (one large base64 attachment) and one with 200 small
    attachments; built once per test, freed afterwards."""
    huge = huge_attachment(MAX_MESSAGE_BYTES + 1_500_000)
    many, contents = many_attachments(200)
    yield huge, many, contents


def _check_odd_mail(services: Services, mailbox_id: UUID, huge: bytes, many: bytes, contents: list[bytes],
                    report: SyncReport) -> None:
    assert (report.fetched, report.opened, report.quarantined, report.error) == (2, 1, 1, None)
    services.projections.catch_up()
    [held] = services.conversations.quarantine(mailbox_id)
    assert "exceeds the 25 MB limit" in held["reason"]
    assert held["size"] > MAX_MESSAGE_BYTES
    header = services.blobs.get(held["raw_blob"])
    assert header is not None
    assert header == huge.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"  # the header only, not the mail
    [row] = messages_of(services, mailbox_id)
    attachments = json.loads(row["attachments"])
    assert len(attachments) == 200
    assert [a["filename"] for a in attachments] == [f"receipt-{i:03d}.bin" for i in range(200)]
    for attachment, data in zip(attachments, contents, strict=True):
        assert attachment["blob"] == hashlib.sha256(data).hexdigest()
        assert attachment["size"] == len(data)
        assert services.blobs.get(attachment["blob"]) == data
    assert services.blobs.get(row["raw_blob"]) is not None
    assert count_rows(services, "mailroom_blobs", "size > ?", (MAX_MESSAGE_BYTES // 2,)) == 0


def _peak(call: Callable[[], SyncReport]) -> tuple[SyncReport, int]:
    tracemalloc.start()
    try:
        report = call()
        return report, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_huge_mail_is_quarantined_unread_and_200_attachments_are_kept(
    services: Services, dovecot: Dovecot, odd_mail: tuple[bytes, bytes, list[bytes]]
) -> None:
    huge, many, contents = odd_mail
    user = new_user(dovecot)
    append_many(dovecot, user, [huge, many])
    mailbox_id = bind_at(services, dovecot, user)
    report, peak = _peak(lambda: MailboxSync.of(services).sync(mailbox_id))
    print(f"IMAP sync of a {len(huge) / 2**20:.1f} MiB mail and a 200-attachment mail: "
          f"peak traced memory {peak / 2**20:.1f} MiB")
    _check_odd_mail(services, mailbox_id, huge, many, contents, report)
    # Far below the size of the large mail itself: it was never downloaded.
    assert peak < MAX_MESSAGE_BYTES // 2, peak


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_huge_mail_is_quarantined_unread_over_pop3(
    services: Services, dovecot: Dovecot, odd_mail: tuple[bytes, bytes, list[bytes]]
) -> None:
    huge, many, contents = odd_mail
    user = new_user(dovecot)
    append_many(dovecot, user, [huge, many])
    mailbox_id = bind_at(services, dovecot, user, protocol=MailProtocol.POP3)
    report, peak = _peak(lambda: MailboxSync.of(services).sync(mailbox_id))
    print(f"POP3 sync of the same: peak traced memory {peak / 2**20:.1f} MiB")
    _check_odd_mail(services, mailbox_id, huge, many, contents, report)
    assert peak < MAX_MESSAGE_BYTES // 2, peak
