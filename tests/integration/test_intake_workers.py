"""The background side of intake: the scheduler syncs bound mailboxes by itself, IDLE makes new
mail arrive without waiting for the next poll, and threading by subject reference and the noise
markers reach the read models."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from adapters.settings import load_settings
from api.bootstrap import Services, real_login
from api.processes.sync import MailboxSync
from api.processes.workers import Workers
from domain.mail import AUTO_SUBMITTED, BULK, OWN_ADDRESS
from projections.conversation_queries import ConversationFilter
from tests.dovecot import Dovecot
from tests.integration.intake_support import bind, mail


@pytest.fixture
def services(make_services: Callable[..., Services], monkeypatch: pytest.MonkeyPatch) -> Services:
    monkeypatch.setenv("MAILROOM_POLL_SECONDS", "3600")  # only IDLE can bring mail in quickly
    return make_services(verify_login=real_login(load_settings()))


@pytest.fixture
def workers(services: Services) -> Iterator[Workers]:
    running = Workers(services)
    yield running
    running.stop()


def conversations(services: Services) -> list[dict[str, object]]:
    rows, _, _ = services.conversations.page(ConversationFilter(), 50, None)
    return rows


def wait_until(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def test_workers_take_mail_in_and_idle_brings_new_mail_without_a_poll(
    services: Services, dovecot: Dovecot, workers: Workers
) -> None:
    _, user = bind(services, dovecot)
    dovecot.append(user, mail(subject="Before the worker started"))
    workers.start()
    assert wait_until(lambda: len(conversations(services)) == 1, 15), "the scheduler's first sync"
    # Whether the watcher is still setting IDLE up or already idling, the mail is taken in:
    # by the sync that follows the IDLE set-up, or by the IDLE announcement.
    started = time.monotonic()
    dovecot.append(user, mail(subject="While idling"))
    assert wait_until(lambda: len(conversations(services)) == 2, 15), "IDLE should announce the new mail"
    assert time.monotonic() - started < 15  # far below the 3600 s poll interval
    assert workers.alive()


def test_a_subject_reference_threads_a_reply_whose_headers_were_lost(services: Services, dovecot: Dovecot) -> None:
    mailbox_id, user = bind(services, dovecot)
    dovecot.append(user, mail(subject="Printer on fire"))
    report = MailboxSync.of(services).sync(mailbox_id)
    services.projections.wait_for(report.position)
    [opened] = conversations(services)
    # Outlook-style: no In-Reply-To/References, only our reference in the subject.
    dovecot.append(user, mail(subject=f"RE: Printer on fire [#{opened['ref']}]"))
    report = MailboxSync.of(services).sync(mailbox_id)
    services.projections.wait_for(report.position)
    assert (report.fetched, report.opened) == (1, 0)
    assert [r["message_count"] for r in conversations(services)] == [2]


def test_loop_and_noise_markers_are_kept_on_each_message(services: Services, dovecot: Dovecot) -> None:
    mailbox_id, user = bind(services, dovecot)
    own = f"{user}@example.com"
    dovecot.append(user, mail(subject="Out of office", extra={"Auto-Submitted": "auto-replied"}))
    dovecot.append(user, mail(subject="Newsletter", sender="news@lists.example", extra={"Precedence": "bulk"}))
    dovecot.append(user, mail(subject="From ourselves", sender=own))
    report = MailboxSync.of(services).sync(mailbox_id)
    services.projections.wait_for(report.position)
    markers = {}
    for row in conversations(services):
        [message] = services.conversations.messages(str(row["id"]))
        markers[row["subject"]] = message["markers"]
    assert AUTO_SUBMITTED in str(markers["Out of office"])
    assert BULK in str(markers["Newsletter"])
    assert OWN_ADDRESS in str(markers["From ourselves"])


def test_mail_that_lands_while_idle_is_being_set_up_does_not_wait_for_a_poll(
    services: Services, dovecot: Dovecot, workers: Workers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first sync runs, then the IDLE watcher connects; a mail that lands in between is
    announced by nothing (IDLE reports changes from when it starts): a sync once the IDLE
    session is established takes it in, instead of the next poll an hour later."""
    from adapters.imap import ImapSession

    _, user = bind(services, dovecot)
    dovecot.append(user, mail(subject="Before the worker started"))
    supports_idle = ImapSession.supports_idle
    landed = []

    def mail_lands_during_setup(session: ImapSession) -> bool:
        if not landed:  # the watcher starts after the first sync: this lands before IDLE
            dovecot.append(user, mail(subject="During IDLE set-up"))
            landed.append(time.monotonic())
        return supports_idle(session)

    monkeypatch.setattr(ImapSession, "supports_idle", mail_lands_during_setup)
    workers.start()
    assert wait_until(lambda: bool(landed), 15), "the IDLE watcher should have started after the first sync"
    assert wait_until(lambda: len(conversations(services)) == 2, 10), "taken in without waiting for a poll"
