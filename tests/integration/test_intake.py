"""Intake against the real Dovecot: every message once, threaded, quarantined when it must be."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from adapters.settings import load_settings
from api.bootstrap import Services, real_login
from api.processes.sync import MailboxSync
from domain.values import MailProtocol
from projections.conversation_queries import ConversationFilter
from tests.dovecot import Dovecot
from tests.integration.intake_support import bind, mail


@pytest.fixture
def services(make_services: Callable[..., Services]) -> Services:
    """Services whose mailbox logins go to the real server."""
    return make_services(verify_login=real_login(load_settings()))


def test_imap_messages_become_conversations_once(services: Services, dovecot: Dovecot) -> None:
    mailbox_id, user = bind(services, dovecot)
    first = mail(subject="Invoice missing", message_id="<a1@customer.example>")
    dovecot.append(user, first)
    dovecot.append(user, mail(subject="Re: Invoice missing", in_reply_to="<a1@customer.example>"))
    dovecot.append(user, mail(subject="Another thing", sender="dave@other.example"))

    report = MailboxSync.of(services).sync(mailbox_id)
    assert (report.fetched, report.opened, report.error) == (3, 2, None)
    services.projections.wait_for(report.position)
    rows, _, total = services.conversations.page(ConversationFilter(), 10, None)
    assert total == 2
    by_subject = {r["subject"]: r for r in rows}
    assert by_subject["Invoice missing"]["message_count"] == 2
    assert by_subject["Another thing"]["customer_email"] == "dave@other.example"

    again = MailboxSync.of(services).sync(mailbox_id)
    assert (again.fetched, again.opened) == (0, 0)


def test_pop3_messages_become_conversations_once(services: Services, dovecot: Dovecot) -> None:
    mailbox_id, user = bind(services, dovecot, MailProtocol.POP3)
    for i in range(3):
        dovecot.append(user, mail(subject=f"Question {i}"))
    report = MailboxSync.of(services).sync(mailbox_id)
    assert (report.fetched, report.opened, report.error) == (3, 3, None)
    assert MailboxSync.of(services).sync(mailbox_id).fetched == 0


def test_unparseable_mail_is_quarantined_and_sync_goes_on(services: Services, dovecot: Dovecot) -> None:
    mailbox_id, user = bind(services, dovecot)
    dovecot.append(user, b"Subject: no sender at all\r\n\r\nbody\r\n")
    dovecot.append(user, mail(subject="Fine"))
    report = MailboxSync.of(services).sync(mailbox_id)
    assert (report.fetched, report.opened, report.quarantined) == (2, 1, 1)
    services.projections.wait_for(report.position)
    [quarantined] = services.conversations.quarantine(mailbox_id)
    assert "sender" in quarantined["reason"]
    assert services.blobs.get(quarantined["raw_blob"]) is not None


def test_one_mail_to_two_bound_mailboxes_is_one_conversation(services: Services, dovecot: Dovecot) -> None:
    first_id, first_user = bind(services, dovecot)
    second_id, second_user = bind(services, dovecot)
    shared = mail(subject="To and Cc", message_id="<shared-1@customer.example>")
    dovecot.append(first_user, shared)
    dovecot.append(second_user, shared)
    assert MailboxSync.of(services).sync(first_id).opened == 1
    report = MailboxSync.of(services).sync(second_id)
    assert (report.fetched, report.opened) == (0, 0)


def test_configured_folders_are_taken_in_and_bad_names_refused(services: Services, dovecot: Dovecot) -> None:
    from domain.errors import Rejected

    mailbox_id, user = bind(services, dovecot)
    dovecot.append(user, mail(subject="In the inbox"))
    dovecot.append(user, mail(subject="Filed by a server rule"), folder="Support")
    assert MailboxSync.of(services).sync(mailbox_id).fetched == 1  # INBOX only by default

    services.app.update_mailbox(mailbox_id, folders=["INBOX", "Support"])
    report = MailboxSync.of(services).sync(mailbox_id)
    assert (report.fetched, report.error) == (1, None)
    try:
        services.app.update_mailbox(mailbox_id, folders=[])
    except Rejected as rejected:
        assert rejected.problems[0].field == ("input", "folders")
    else:
        raise AssertionError("an empty folder list must be refused")


def test_missing_folder_turns_the_mailbox_failing_with_its_name(services: Services, dovecot: Dovecot) -> None:
    mailbox_id, _ = bind(services, dovecot)
    services.app.update_mailbox(mailbox_id, folders=["INBOX", "No Such Folder"])
    report = MailboxSync.of(services).sync(mailbox_id)
    assert report.error is not None and "No Such Folder" in report.error


def test_a_deleted_mailbox_leaves_no_sync_state_behind(services: Services, dovecot: Dovecot) -> None:
    from api.processes.workers import MailboxScheduler

    mailbox_id, user = bind(services, dovecot)
    dovecot.append(user, mail(subject="Taken in"))
    MailboxSync.of(services).sync(mailbox_id)
    assert str(mailbox_id) in services.sync_state.mailbox_ids()
    services.projections.wait_for(services.app.delete_mailbox(mailbox_id).position)

    scheduler = MailboxScheduler(services, threading.Event())
    scheduler._tick()  # the scheduler notices the mailbox is gone and forgets its folders, UIDs, health
    assert str(mailbox_id) not in services.sync_state.mailbox_ids()
    assert services.sync_state.folder(mailbox_id, "INBOX") is None
