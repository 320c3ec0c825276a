"""The whole shared mail corpus through a real Dovecot: no mail stops a sync, each one is
taken in or quarantined (with a reason), and a second sync takes in nothing."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from uuid import UUID

import pytest

from adapters.settings import load_settings
from api.bootstrap import Services, real_login
from api.processes.sync import MailboxSync
from domain.values import MailProtocol
from tests.dovecot import Dovecot
from tests.integration.faults_support import (
    CORPUS,
    append_many,
    bind_at,
    corpus_files,
    count_rows,
    count_topic,
    messages_of,
    new_user,
    served,
    served_pop3,
    uidvalidity,
    verify_views,
)


@pytest.fixture
def services(make_services: Callable[..., Services]) -> Services:
    """Services whose mailbox logins go to the real server."""
    return make_services(verify_login=real_login(load_settings()))


# Corpus files that are the same mail as an earlier file (same Message-ID, same content): they
# differ only in line ends (which the server normalises to CRLF), in Received header fields
# (added on the way), or in how a MIME part spells the same thing. Taking one of these in
# again would break "each message exactly once" (it is what makes a re-delivery, a UIDVALIDITY
# reset or a To + Cc copy a no-op), so they count as already taken in. Every other reuse of a
# Message-ID in the corpus (30 files) is a different mail and is taken in on its own.
SAME_MAIL = {
    "flanker/enclosed.eml": "flanker/enclosed-broken.eml",
    "mikel-mail/mime_emails/raw_email12.eml": "mikel-mail/attachment_emails/attachment_content_location.eml",
    "mikel-mail/attachment_emails/attachment_pdf_lf.eml": "mikel-mail/attachment_emails/attachment_pdf.eml",
    "mikel-mail/attachment_emails/attachment_pdf_non_ascii_lf.eml":
        "mikel-mail/attachment_emails/attachment_pdf_non_ascii.eml",
    "mikel-mail/plain_emails/raw_email8.eml": "mikel-mail/attachment_emails/attachment_with_encoded_name.eml",
    "mikel-mail/mime_emails/raw_email_with_quoted_illegal_boundary.eml":
        "mikel-mail/mime_emails/raw_email_with_illegal_boundary.eml",
    "mikel-mail/multipart_report_emails/multi_address_bounce2.eml":
        "mikel-mail/multipart_report_emails/multi_address_bounce1.eml",
    "mikel-mail/plain_emails/basic_email_lf.eml": "mikel-mail/plain_emails/basic_email.eml",
    "mikel-mail/rfc2822/example05.eml": "mikel-mail/rfc2822/example01.eml",
    "mikel-mail/rfc2822/example09.eml": "mikel-mail/rfc2822/example01.eml",
}


def test_the_corpus_has_the_files_it_describes() -> None:
    files = corpus_files()
    assert len(files) == 232
    names = {path.relative_to(CORPUS).as_posix() for path in files}
    assert set(SAME_MAIL) <= names and set(SAME_MAIL.values()) <= names


def _check_accounting(services: Services, mailbox_id: UUID, delivered: dict[str, tuple[str, bytes]]) -> None:
    """`delivered`: corpus name -> (source, the bytes as served). Each delivered mail is a message
    row or a quarantine row under its own source, except the copies in SAME_MAIL, whose first
    delivery was taken in."""
    services.projections.catch_up()
    messages = {row["source"]: row for row in messages_of(services, mailbox_id)}
    quarantined = {row["source"]: row for row in services.conversations.quarantine(mailbox_id)}
    assert not messages.keys() & quarantined.keys()
    missing = []
    for name, (source, raw) in delivered.items():
        if name in SAME_MAIL:
            assert source not in messages and source not in quarantined, f"{name} was taken in twice"
            original = messages[delivered[SAME_MAIL[name]][0]]
            assert original["message_id"] in raw.decode("utf-8", "replace"), name
        elif source in quarantined:
            row = quarantined[source]
            assert row["reason"].strip(), f"{name}: quarantined without a reason"
            assert services.blobs.get(row["raw_blob"]) == raw, f"{name}: the original is not kept"
        elif source in messages:
            assert messages[source]["raw_blob"] == hashlib.sha256(raw).hexdigest(), name
        else:
            missing.append(name)
    assert not missing, f"neither taken in nor quarantined: {missing}"
    assert len(messages) + len(quarantined) + len(SAME_MAIL) == len(delivered)
    assert count_topic(services, "mailroom:InboundKey.Created") == len(messages)
    assert count_topic(services, "mailroom:QuarantinedMessage.Quarantined") == len(quarantined)
    assert count_rows(services, "rm_messages") == len(messages)


def test_every_corpus_mail_is_taken_in_or_quarantined_over_imap(services: Services, dovecot: Dovecot) -> None:
    files = corpus_files()
    user = new_user(dovecot)
    uids = append_many(dovecot, user, (path.read_bytes() for path in files))
    assert len(uids) == len(files)
    mailbox_id = bind_at(services, dovecot, user)

    report = MailboxSync.of(services).sync(mailbox_id)
    assert (report.error, report.error_code) == (None, None)
    assert report.fetched == len(files) - len(SAME_MAIL)
    assert 0 < report.quarantined < len(files) // 4  # the corpus has some mail that cannot become a conversation
    assert services.sync_state.health(mailbox_id).last_error is None

    contents = served(dovecot, user)
    validity = uidvalidity(dovecot, user)
    delivered = {path.relative_to(CORPUS).as_posix(): (f"imap:INBOX:{validity}:{uid}", contents[uid])
                 for path, uid in zip(files, uids, strict=True)}
    _check_accounting(services, mailbox_id, delivered)
    _check_display_names(services, mailbox_id, delivered)

    again = MailboxSync.of(services).sync(mailbox_id)
    assert (again.fetched, again.quarantined, again.error) == (0, 0, None)
    assert verify_views(services) == {name: [] for name in services.projections.views}


# Display names as mail clients read them (issue 9), kept through intake into the view that serves
# Message.fromName: the comment form, a bounce from MAILER-DAEMON, one taken in since issue 9.
DISPLAY_NAMES = {
    "cpython-email-3.11.7/msg_44.txt": ("barry@python.org", "Barry A. Warsaw"),  # barry@python.org (Barry A. Warsaw)
    "mikel-mail/multipart_report_emails/multi_address_bounce1.eml": (None, "Mail Delivery System"),
    "cpython-email-3.11.7/msg_43.txt": ("mailer-daemon@python.org", "MAILER DAEMON"),  # was quarantined
}


def _check_display_names(services: Services, mailbox_id: UUID, delivered: dict[str, tuple[str, bytes]]) -> None:
    messages = {row["source"]: row for row in messages_of(services, mailbox_id)}
    for name, (address, display) in DISPLAY_NAMES.items():
        row = messages[delivered[name][0]]
        assert row["from_name"] == display, name
        assert address is None or row["from_address"] == address, name


@pytest.mark.parametrize("backend", ["sqlite"])  # about the mail server: one backend is enough
def test_every_corpus_mail_is_taken_in_or_quarantined_over_pop3(services: Services, dovecot: Dovecot) -> None:
    files = corpus_files()
    user = new_user(dovecot)
    uids = append_many(dovecot, user, (path.read_bytes() for path in files))
    validity = uidvalidity(dovecot, user)
    mailbox_id = bind_at(services, dovecot, user, protocol=MailProtocol.POP3)

    report = MailboxSync.of(services).sync(mailbox_id)
    assert (report.error, report.error_code) == (None, None)
    assert report.fetched == len(files) - len(SAME_MAIL)

    # Dovecot's UIDL is %08Xu%08Xv: the IMAP UID, then UIDVALIDITY, in hex.
    contents = served_pop3(dovecot, user)
    delivered = {}
    for path, uid in zip(files, uids, strict=True):
        uidl = f"{uid:08x}{validity:08x}"
        delivered[path.relative_to(CORPUS).as_posix()] = (f"pop3:{uidl}", contents[uidl])
    _check_accounting(services, mailbox_id, delivered)

    again = MailboxSync.of(services).sync(mailbox_id)
    assert (again.fetched, again.quarantined, again.error) == (0, 0, None)
