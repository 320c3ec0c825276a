"""Pop3Session against a real (private) Dovecot: listing, RETR/TOP, long lines, failures."""

from __future__ import annotations

import poplib
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from adapters.pop3 import CommandFailed, ConnectionLost, LoginFailed, Pop3Session
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
    created = User(f"pop3-{secrets.token_hex(4)}", f"pw-{secrets.token_hex(4)}")
    dovecot.add_user(created.name, created.password)
    return created


def settings(
    dovecot: Dovecot, user: User, security: TransportSecurity = NONE, port: int | None = None
) -> ServerSettings:
    if port is None:
        port = dovecot.pop3s_port if security is TLS else dovecot.pop3_port
    return ServerSettings(dovecot.host, port, security, user.name)


def session_for(dovecot: Dovecot, user: User, security: TransportSecurity = NONE, **kwargs: float) -> Pop3Session:
    return Pop3Session(settings(dovecot, user, security), user.password, extra_ca_file=dovecot.ca_file, **kwargs)


def message(number: int, *, eol: bytes = b"\r\n", body: bytes = b"") -> bytes:
    lines = [
        b"From: Customer <customer@example.org>",
        b"To: help@example.com",
        b"Subject: question %d" % number,
        b"Message-ID: <p%d-%s@example.org>" % (number, secrets.token_hex(4).encode()),
        b"",
        body or b"Hello, this is message %d." % number,
        b"",
    ]
    return eol.join(lines)


def crlf(raw: bytes) -> bytes:
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def test_listing_has_stable_uidls_and_sizes(dovecot: Dovecot, user: User) -> None:
    raws = [message(1), message(2, eol=b"\n"), message(3)]
    for raw in raws:
        dovecot.append(user.name, raw)

    with session_for(dovecot, user, timeout=5) as session:
        first = session.listing()
        retrieved = [session.retrieve(number) for number, _, _ in first]
    with session_for(dovecot, user, timeout=5) as session:
        second = session.listing()

    assert [number for number, _, _ in first] == [1, 2, 3]
    assert len({uidl for _, uidl, _ in first}) == 3
    assert second == first  # UIDLs stable across sessions; the mail is still there after QUIT
    assert retrieved == [crlf(raw) for raw in raws]
    # Sizes count the CRLF form, as RETR serves it.
    assert [size for _, _, size in first] == [len(raw) for raw in retrieved]


def test_retrieve_undoes_dot_stuffing(dovecot: Dovecot, user: User) -> None:
    raw = message(1, body=b".leading dot\r\n..two dots\r\n.\r\nend")
    dovecot.append(user.name, raw)

    with session_for(dovecot, user, timeout=5) as session:
        assert session.retrieve(1) == raw


def test_top_zero_is_the_header_only(dovecot: Dovecot, user: User) -> None:
    raw = message(1, body=b"Body text that must not be in the header.")
    dovecot.append(user.name, raw)

    with session_for(dovecot, user, timeout=5) as session:
        top = session.top(1, 0)
        top_one = session.top(1, 1)

    header, _, _ = raw.partition(b"\r\n\r\n")
    assert top == header + b"\r\n\r\n"
    assert top_one == header + b"\r\n\r\nBody text that must not be in the header.\r\n"


def test_mail_stays_on_the_server_after_quit(dovecot: Dovecot, user: User) -> None:
    for i in range(2):
        dovecot.append(user.name, message(i))
    with session_for(dovecot, user, timeout=5) as session:
        listed = session.listing()
        for number, _, _ in listed:
            session.retrieve(number)

    maildir = dovecot.maildir(user.name)
    on_disk = [*maildir.glob("cur/*"), *maildir.glob("new/*")]
    assert len(on_disk) == 2
    with session_for(dovecot, user, timeout=5) as session:
        assert session.listing() == listed


def test_a_5000_byte_line_is_retrieved_intact(dovecot: Dovecot, user: User) -> None:
    long_line = b"<p>" + b"x" * 4993 + b"</p>"  # HTML without line breaks
    assert len(long_line) == 5000
    raw = message(1, body=long_line)
    dovecot.append(user.name, raw)

    # Stock poplib refuses the line (2048-byte limit).
    stock = poplib.POP3(dovecot.host, dovecot.pop3_port, timeout=5)
    try:
        stock.user(user.name)
        stock.pass_(user.password)
        with pytest.raises(poplib.error_proto, match="line too long"):
            stock.retr(1)
    finally:
        stock.close()

    with session_for(dovecot, user, timeout=5) as session:
        assert session.retrieve(1) == raw
        # The process-wide limit was not touched.
        assert getattr(poplib, "_MAXLINE") == 2048  # noqa: B009


@pytest.mark.parametrize("security", [STARTTLS, TLS], ids=lambda s: s.value)
def test_stls_and_tls_with_the_extra_ca(dovecot: Dovecot, user: User, security: TransportSecurity) -> None:
    raw = message(1, body=b"y" * 3000)  # a long line through TLS, too
    dovecot.append(user.name, raw)

    with session_for(dovecot, user, security, timeout=5) as session:
        (number, _, size), = session.listing()
        assert session.retrieve(number) == raw
        assert size == len(raw)


def test_wrong_password_is_login_failed(dovecot: Dovecot, user: User) -> None:
    with pytest.raises(LoginFailed) as exc_info:
        Pop3Session(settings(dovecot, user), "wrong-password", timeout=5)

    assert exc_info.value.code == "AUTH_FAILED"


def test_missing_message_is_command_failed_and_the_session_goes_on(dovecot: Dovecot, user: User) -> None:
    raw = message(1)
    dovecot.append(user.name, raw)

    with session_for(dovecot, user, timeout=5) as session:
        with pytest.raises(CommandFailed):
            session.retrieve(7)
        assert session.retrieve(1) == raw


@pytest.fixture
def proxy(dovecot: Dovecot) -> Iterator[LoopbackProxy]:
    with LoopbackProxy(dovecot.pop3_port) as relay:
        yield relay


@pytest.mark.parametrize("reset", [False, True], ids=["eof", "reset"])
def test_dropped_connection_is_connection_lost(
    dovecot: Dovecot, user: User, proxy: LoopbackProxy, reset: bool
) -> None:
    dovecot.append(user.name, message(1))
    with Pop3Session(settings(dovecot, user, port=proxy.port), user.password, timeout=5) as session:
        assert len(session.listing()) == 1

        proxy.cut(reset=reset)
        started = time.monotonic()
        with pytest.raises(ConnectionLost) as exc_info:
            session.retrieve(1)

        assert time.monotonic() - started < 2.0
        assert not exc_info.value.timed_out
        with pytest.raises(ConnectionLost):
            session.listing()


def test_silent_server_is_connection_lost_after_the_timeout(
    dovecot: Dovecot, user: User, proxy: LoopbackProxy
) -> None:
    with Pop3Session(settings(dovecot, user, port=proxy.port), user.password, timeout=0.5) as session:
        proxy.freeze()
        started = time.monotonic()
        with pytest.raises(ConnectionLost) as exc_info:
            session.listing()

        assert exc_info.value.timed_out
        assert time.monotonic() - started < 2.0
