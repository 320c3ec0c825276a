"""The whole shared mail corpus through a real Dovecot: no mail stops a sync, each one is
taken in or quarantined (with a reason), and a second sync takes in nothing."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest

from adapters.settings import load_settings
from api.bootstrap import Services, real_login
from api.sync import MailboxSync
from domain.values import MailProtocol
from tests.dovecot import Dovecot
from tests.integration.faults_support import (
    append_many,
    bind_at,
    corpus_files,
    count_topic,
    messages_of,
    new_user,
    served,
    verify_views,
)


@pytest.fixture
def services(make_services: Callable[..., Services]) -> Services:
    """Services whose mailbox logins go to the real server."""
    return make_services(verify_login=real_login(load_settings()))


def test_the_corpus_has_the_files_it_describes() -> None:
    assert len(corpus_files()) == 232


def _accounting(services: Services, mailbox_id: object, by_source: dict[str, bytes]) -> None:
    """Every delivered message is a message row or a quarantine row with its own source."""
    services.projections.catch_up()
    messages = {row["source"]: row for row in messages_of(services, mailbox_id)}  # type: ignore[arg-type]
    quarantined = {row["source"]: row for row in services.conversations.quarantine(mailbox_id)}  # type: ignore[arg-type]
    assert not messages.keys() & quarantined.keys()
    missing = sorted(set(by_source) - messages.keys() - quarantined.keys())
    assert not missing, f"neither taken in nor quarantined: {missing}"
    assert set(by_source) == messages.keys() | quarantined.keys()
    for source, row in quarantined.items():
        assert row["reason"].strip(), f"{source}: quarantined without a reason"
        # The original is kept, byte for byte as served.
        assert services.blobs.get(row["raw_blob"]) == by_source[source]
    for source, row in messages.items():
        assert row["raw_blob"] == hashlib.sha256(by_source[source]).hexdigest()
    assert count_topic(services, "mailroom:InboundKey.Created") == len(messages)
    assert count_topic(services, "mailroom:QuarantinedMessage.Quarantined") == len(quarantined)


def test_every_corpus_mail_is_taken_in_or_quarantined_over_imap(services: Services, dovecot: Dovecot) -> None:
    files = corpus_files()
    user = new_user(dovecot)
    uids = append_many(dovecot, user, (path.read_bytes() for path in files))
    assert len(uids) == len(files)
    mailbox_id = bind_at(services, dovecot, user)

    report = MailboxSync(services).sync(mailbox_id)
    assert report.error is None, report.error
    assert report.fetched == len(files)
    assert report.quarantined > 0  # the corpus has mail that cannot become a conversation

    contents = served(dovecot, user)
    validity = next(iter(services.database.query(
        "SELECT uidvalidity FROM mailroom_imap_folders WHERE mailbox_id = ?", (str(mailbox_id),))))["uidvalidity"]
    _accounting(services, mailbox_id, {f"imap:INBOX:{validity}:{uid}": raw for uid, raw in contents.items()})

    again = MailboxSync(services).sync(mailbox_id)
    assert (again.fetched, again.error) == (0, None)
    assert verify_views(services) == {"directory": [], "conversations": []}


def test_every_corpus_mail_is_taken_in_or_quarantined_over_pop3(
    make_services: Callable[..., Services], dovecot: Dovecot, backend: str
) -> None:
    if backend != "sqlite":
        pytest.skip("POP3 over the corpus is about the mail server; one backend is enough")
    services = make_services(verify_login=real_login(load_settings()))
    files = corpus_files()
    user = new_user(dovecot)
    append_many(dovecot, user, (path.read_bytes() for path in files))
    contents = served(dovecot, user)  # before POP3 reads them (RETR sets \Seen at QUIT)
    mailbox_id = bind_at(services, dovecot, user, protocol=MailProtocol.POP3)

    report = MailboxSync(services).sync(mailbox_id)
    assert report.error is None, report.error
    assert report.fetched == len(files)

    uidls = {row["uidl"] for row in services.database.query(
        "SELECT uidl FROM mailroom_pop3_uidls WHERE mailbox_id = ?", (str(mailbox_id),))}
    assert len(uidls) == len(files)
    # Dovecot's UIDL is %08Xu%08Xv: the IMAP UID in hex, then UIDVALIDITY.
    by_uid = {int(uidl[:8], 16): uidl for uidl in uidls}
    _accounting(services, mailbox_id, {f"pop3:{by_uid[uid]}": raw for uid, raw in contents.items()})

    again = MailboxSync(services).sync(mailbox_id)
    assert (again.fetched, again.error) == (0, None)
