"""ImapSession against a real (private) Dovecot: folders, UIDs, fetching, IDLE, failures."""

from __future__ import annotations

import pickle
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from imapclient import IMAPClient

import adapters.imap
from adapters.imap import ConnectionLost, FolderMissing, ImapSession, LoginFailed
from domain.values import ServerSettings, TransportSecurity
from tests.dovecot import Dovecot, LoopbackProxy

NONE, STARTTLS, TLS = TransportSecurity.NONE, TransportSecurity.STARTTLS, TransportSecurity.TLS


@dataclass(frozen=True)
class User:
    name: str
    password: str


@pytest.fixture
def user(dovecot: Dovecot) -> User:
    # A user per test: every test starts with an empty mailbox of its own.
    created = User(f"imap-{secrets.token_hex(4)}", f"pw-{secrets.token_hex(4)}")
    dovecot.add_user(created.name, created.password)
    return created


def settings(
    dovecot: Dovecot, user: User, security: TransportSecurity = NONE, port: int | None = None
) -> ServerSettings:
    if port is None:
        port = dovecot.imaps_port if security is TLS else dovecot.imap_port
    return ServerSettings(dovecot.host, port, security, user.name)


@pytest.fixture
def session(dovecot: Dovecot, user: User) -> Iterator[ImapSession]:
    with ImapSession(settings(dovecot, user), user.password, timeout=5) as opened:
        yield opened


def message(number: int, *, eol: bytes = b"\r\n", body: bytes = b"") -> bytes:
    lines = [
        b"From: Customer <customer@example.org>",
        b"To: help@example.com",
        b"Subject: question %d" % number,
        b"Message-ID: <q%d-%s@example.org>" % (number, secrets.token_hex(4).encode()),
        b"",
        body or b"Hello, this is message %d." % number,
        b"",
    ]
    return eol.join(lines)


def append(dovecot: Dovecot, user: User, raw: bytes, folder: str = "INBOX") -> int:
    uid = dovecot.append(user.name, raw, folder)
    assert uid is not None  # Dovecot answers APPEND with APPENDUID
    return uid


def direct_client(dovecot: Dovecot, user: User) -> IMAPClient:
    client = IMAPClient(dovecot.host, port=dovecot.imap_port, ssl=False, timeout=5)
    client.login(user.name, user.password)
    return client


def test_new_uids_lists_appended_mail_and_nothing_past_the_end(
    dovecot: Dovecot, user: User, session: ImapSession
) -> None:
    appended = [append(dovecot, user, message(i)) for i in range(3)]

    status = session.open_folder("INBOX")

    assert status.uidvalidity > 0
    assert status.exists == 3
    assert status.uidnext == max(appended) + 1
    assert session.new_uids(0) == appended == sorted(appended)
    assert session.new_uids(appended[0]) == appended[1:]
    # "UID 3:*" (and "UID 100:*") return the newest message, UID 3: it must not come back.
    assert session.new_uids(appended[-1]) == []
    assert session.new_uids(99) == []


def test_new_uids_of_an_empty_folder(session: ImapSession) -> None:
    status = session.open_folder("INBOX")

    assert status.exists == 0
    assert session.new_uids(0) == []


def test_new_uids_searches_in_windows(
    dovecot: Dovecot, user: User, session: ImapSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    uids = [append(dovecot, user, message(i)) for i in range(7)]
    monkeypatch.setattr(adapters.imap, "SEARCH_WINDOW", 2)
    session.open_folder("INBOX")

    assert session.new_uids(0) == uids
    assert session.new_uids(uids[2]) == uids[3:]


def test_fetch_returns_the_served_bytes_and_leaves_mail_unread(
    dovecot: Dovecot, user: User, session: ImapSession
) -> None:
    crlf = message(1, body=b"Line one\r\n.Line starting with a dot\r\nNon-ASCII: \xc3\xa4")
    bare_lf = message(2, eol=b"\n")
    uid_crlf, uid_lf = append(dovecot, user, crlf), append(dovecot, user, bare_lf)
    session.open_folder("INBOX")

    fetched = session.fetch([uid_crlf, uid_lf, 999])
    sizes = session.sizes([uid_crlf, uid_lf])

    # Dovecot serves mail stored with bare LF with CRLF; the size counts that form.
    assert fetched == {uid_crlf: crlf, uid_lf: bare_lf.replace(b"\n", b"\r\n")}
    assert sizes == {uid: len(raw) for uid, raw in fetched.items()}
    client = direct_client(dovecot, user)
    try:
        client.select_folder("INBOX", readonly=True)
        flags = client.get_flags([uid_crlf, uid_lf])
    finally:
        client.logout()
    assert all(b"\\Seen" not in f for f in flags.values()), flags


def test_fetch_header_returns_only_the_header(dovecot: Dovecot, user: User, session: ImapSession) -> None:
    raw = message(1, body=b"Body text that must not be in the header.")
    uid = append(dovecot, user, raw)
    session.open_folder("INBOX")

    headers = session.fetch_header([uid])

    header, _, _ = raw.partition(b"\r\n\r\n")
    assert headers == {uid: header + b"\r\n\r\n"}


def test_fetch_many_uids_in_one_command(
    dovecot: Dovecot, user: User, session: ImapSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    raws = [message(i) for i in range(300)]
    client = direct_client(dovecot, user)
    try:
        uids = []
        for raw in raws:
            response = client.append("INBOX", raw)
            uids.append(int(response.split(b"]")[0].split()[-1]))
    finally:
        client.logout()
    session.open_folder("INBOX")
    # Gaps in the list, and UIDs that do not exist, mixed in.
    wanted = [*uids[::3], *uids[1::3], 5000, 5001]
    # Count the commands sent (imaplib's _command sends every one of them).
    imap = session._client._imap
    sent: list[tuple[object, ...]] = []
    original = imap._command

    def spy(*args: object) -> object:
        sent.append(args)
        return original(*args)

    monkeypatch.setattr(imap, "_command", spy)

    fetched = session.fetch(wanted)

    assert fetched == {uid: raws[uids.index(uid)] for uid in wanted if uid in uids}
    assert [args[:2] for args in sent] == [("UID", "FETCH")]
    assert session.fetch([]) == {} and session.sizes([]) == {} and session.fetch_header([]) == {}


def test_message_expunged_meanwhile_is_absent(dovecot: Dovecot, user: User, session: ImapSession) -> None:
    uids = [append(dovecot, user, message(i)) for i in range(3)]
    session.open_folder("INBOX")
    other = direct_client(dovecot, user)
    try:
        other.select_folder("INBOX")
        other.delete_messages([uids[1]])
        other.expunge()
    finally:
        other.logout()

    fetched = session.fetch(uids)

    # Dovecot answers "OK [EXPUNGEISSUED]" with BODY[] NIL for the expunged one.
    assert sorted(fetched) == [uids[0], uids[2]]


def test_second_folder_and_missing_folder(dovecot: Dovecot, user: User, session: ImapSession) -> None:
    folder = "Tickets Ä"  # non-ASCII: modified UTF-7 on the wire
    client = direct_client(dovecot, user)
    try:
        client.create_folder(folder)
    finally:
        client.logout()
    append(dovecot, user, message(1))
    raw = message(2)
    uid = append(dovecot, user, raw, folder)

    assert {"INBOX", folder} <= set(session.folders())
    status = session.open_folder(folder)
    assert status.exists == 1
    assert session.new_uids(0) == [uid]
    assert session.fetch([uid]) == {uid: raw}

    with pytest.raises(FolderMissing) as exc_info:
        session.open_folder("No such folder")
    assert exc_info.value.name == "No such folder"
    with pytest.raises(RuntimeError):
        session.new_uids(0)  # no folder is open after a failed EXAMINE
    # The session is still usable.
    assert session.open_folder("INBOX").exists == 1


def test_idle_reports_an_append_from_another_connection(
    dovecot: Dovecot, user: User, session: ImapSession
) -> None:
    first = append(dovecot, user, message(1))
    session.open_folder("INBOX")
    assert session.supports_idle()
    appended: list[int] = []
    appender = threading.Timer(0.3, lambda: appended.append(append(dovecot, user, message(2))))

    started = time.monotonic()
    appender.start()
    try:
        announced = session.idle_wait(10)
    finally:
        appender.join()
    elapsed = time.monotonic() - started

    assert announced is True
    assert elapsed < 2.0
    # IDLE has ended: the session takes commands again and sees the new message.
    assert session.new_uids(first) == appended


def test_idle_times_out_without_mail(session: ImapSession) -> None:
    session.open_folder("INBOX")

    started = time.monotonic()
    announced = session.idle_wait(1.0)
    elapsed = time.monotonic() - started

    assert announced is False
    assert 0.9 <= elapsed < 2.0
    assert session.new_uids(0) == []


@pytest.mark.parametrize("security", [STARTTLS, TLS], ids=lambda s: s.value)
def test_tls_modes_with_the_extra_ca(dovecot: Dovecot, user: User, security: TransportSecurity) -> None:
    raw = message(1)
    uid = append(dovecot, user, raw)

    with ImapSession(settings(dovecot, user, security), user.password, extra_ca_file=dovecot.ca_file, timeout=5) as s:
        s.open_folder("INBOX")
        assert s.fetch([uid]) == {uid: raw}


def test_wrong_password_is_login_failed(dovecot: Dovecot, user: User) -> None:
    with pytest.raises(LoginFailed) as exc_info:
        ImapSession(settings(dovecot, user), "wrong-password", timeout=5)

    assert exc_info.value.code == "AUTH_FAILED"


@pytest.fixture
def proxied(dovecot: Dovecot, user: User) -> Iterator[Callable[[float], tuple[ImapSession, LoopbackProxy]]]:
    made: list[tuple[ImapSession, LoopbackProxy]] = []

    def make(timeout: float) -> tuple[ImapSession, LoopbackProxy]:
        proxy = LoopbackProxy(dovecot.imap_port)
        opened = ImapSession(settings(dovecot, user, port=proxy.port), user.password, timeout=timeout)
        made.append((opened, proxy))
        return opened, proxy

    yield make
    for opened, proxy in made:
        opened.close()
        proxy.close()


@pytest.mark.parametrize("reset", [False, True], ids=["eof", "reset"])
def test_dropped_connection_is_connection_lost(
    dovecot: Dovecot, user: User, proxied: Callable[[float], tuple[ImapSession, LoopbackProxy]], reset: bool
) -> None:
    append(dovecot, user, message(1))
    session, proxy = proxied(5)
    session.open_folder("INBOX")

    proxy.cut(reset=reset)
    started = time.monotonic()
    with pytest.raises(ConnectionLost) as exc_info:
        session.fetch([1])

    assert time.monotonic() - started < 2.0
    assert not exc_info.value.timed_out
    assert isinstance(exc_info.value, OSError)
    # The session stays unusable, and closing it is quiet.
    with pytest.raises(ConnectionLost):
        session.new_uids(0)
    session.close()


def test_connection_dropped_during_idle_is_connection_lost(
    proxied: Callable[[float], tuple[ImapSession, LoopbackProxy]],
) -> None:
    session, proxy = proxied(5)
    session.open_folder("INBOX")
    cutter = threading.Timer(0.3, proxy.cut)

    started = time.monotonic()
    cutter.start()
    with pytest.raises(ConnectionLost):
        session.idle_wait(10)
    cutter.join()

    assert time.monotonic() - started < 2.0


def test_silent_server_is_connection_lost_after_the_timeout(
    proxied: Callable[[float], tuple[ImapSession, LoopbackProxy]],
) -> None:
    session, proxy = proxied(0.5)
    session.open_folder("INBOX")

    proxy.freeze()
    started = time.monotonic()
    with pytest.raises(ConnectionLost) as exc_info:
        session.new_uids(0)

    assert exc_info.value.timed_out
    assert time.monotonic() - started < 2.0


def test_connection_lost_survives_pickling() -> None:
    lost = pickle.loads(pickle.dumps(ConnectionLost("gone", True)))
    missing = pickle.loads(pickle.dumps(FolderMissing("Archive")))

    assert (str(lost), lost.message, lost.timed_out) == ("gone", "gone", True)
    assert missing.name == "Archive"


def test_uidvalidity_changes_when_dovecot_loses_its_index(dovecot: Dovecot, user: User) -> None:
    # Restarts the shared server, and leaves it running for the other tests.
    raws = [message(i) for i in range(2)]
    for raw in raws:
        append(dovecot, user, raw)
    with ImapSession(settings(dovecot, user), user.password, timeout=5) as s:
        before = s.open_folder("INBOX").uidvalidity

    dovecot.stop()
    try:
        maildir = dovecot.maildir(user.name)
        doomed = [maildir / "dovecot-uidlist", *maildir.glob("dovecot.index*")]
        assert (maildir / "dovecot-uidlist").exists()
        for path in doomed:
            path.unlink(missing_ok=True)
    finally:
        dovecot.start()

    with ImapSession(settings(dovecot, user), user.password, timeout=5) as s:
        status = s.open_folder("INBOX")
        uids = s.new_uids(0)
        fetched = s.fetch(uids)
    assert status.uidvalidity != before
    assert sorted(fetched.values()) == sorted(raws)
