"""verify_login against a real (private) Dovecot: each security mode, and each failure code."""

from __future__ import annotations

import secrets
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from adapters.mailserver import LoginFailed, make_verifier, verify_login
from domain.values import MailProtocol, ServerSettings, TransportSecurity
from tests.dovecot import Dovecot

IMAP, POP3 = MailProtocol.IMAP, MailProtocol.POP3
NONE, STARTTLS, TLS = TransportSecurity.NONE, TransportSecurity.STARTTLS, TransportSecurity.TLS


@dataclass(frozen=True)
class Account:
    name: str
    password: str


@pytest.fixture(scope="module")
def account(dovecot: Dovecot) -> Account:
    # A user of this module's own, so the shared server's other users do not matter.
    acct = Account(f"login-{secrets.token_hex(4)}", "correct horse 42")
    dovecot.add_user(acct.name, acct.password)
    return acct


def port_for(dovecot: Dovecot, protocol: MailProtocol, security: TransportSecurity) -> int:
    # STARTTLS/STLS is an upgrade on the plain port; only TLS has ports of its own.
    if protocol is IMAP:
        return dovecot.imaps_port if security is TLS else dovecot.imap_port
    return dovecot.pop3s_port if security is TLS else dovecot.pop3_port


def settings_for(
    dovecot: Dovecot, protocol: MailProtocol, security: TransportSecurity, username: str
) -> ServerSettings:
    return ServerSettings(dovecot.host, port_for(dovecot, protocol, security), security, username)


def failure(exc_info: pytest.ExceptionInfo[LoginFailed]) -> LoginFailed:
    return exc_info.value


ALL_MODES = [(p, s) for p in (IMAP, POP3) for s in (NONE, STARTTLS, TLS)]


@pytest.mark.parametrize(("protocol", "security"), ALL_MODES, ids=lambda v: v.value)
def test_login_succeeds(
    dovecot: Dovecot, account: Account, protocol: MailProtocol, security: TransportSecurity
) -> None:
    settings = settings_for(dovecot, protocol, security, account.name)

    verify_login(protocol, settings, account.password, extra_ca_file=dovecot.ca_file, timeout=5)


@pytest.mark.parametrize("protocol", [IMAP, POP3], ids=lambda v: v.value)
def test_password_needing_quoting_and_utf8_works(dovecot: Dovecot, protocol: MailProtocol) -> None:
    # Space, quote, backslash, colon and non-ASCII: IMAP has to quote it (LOGIN) or switch to
    # AUTHENTICATE PLAIN, and the test server has to store it.
    name, password = f"odd-{secrets.token_hex(4)}", 'p ä"\\:ss'
    dovecot.add_user(name, password)
    settings = settings_for(dovecot, protocol, TLS, name)

    verify_login(protocol, settings, password, extra_ca_file=dovecot.ca_file, timeout=5)


def test_bound_verifier_uses_its_ca_file(dovecot: Dovecot, account: Account) -> None:
    verifier = make_verifier(dovecot.ca_file, timeout=5)

    verifier(IMAP, settings_for(dovecot, IMAP, TLS, account.name), account.password)


@pytest.mark.parametrize(
    ("protocol", "security"), [(IMAP, TLS), (IMAP, STARTTLS), (POP3, TLS)], ids=lambda v: v.value
)
def test_server_certificate_from_unknown_ca_is_tls_failed(
    dovecot: Dovecot, account: Account, protocol: MailProtocol, security: TransportSecurity
) -> None:
    settings = settings_for(dovecot, protocol, security, account.name)

    with pytest.raises(LoginFailed) as exc_info:
        verify_login(protocol, settings, account.password, timeout=5)

    assert failure(exc_info).code == "TLS_FAILED"


@pytest.mark.parametrize(("protocol", "security"), [(IMAP, NONE), (POP3, TLS)], ids=lambda v: v.value)
def test_wrong_password_is_auth_failed_and_not_echoed(
    dovecot: Dovecot, account: Account, protocol: MailProtocol, security: TransportSecurity
) -> None:
    wrong = f"Wrong-{secrets.token_hex(8)}"
    settings = settings_for(dovecot, protocol, security, account.name)

    with pytest.raises(LoginFailed) as exc_info:
        verify_login(protocol, settings, wrong, extra_ca_file=dovecot.ca_file, timeout=5)

    exc = failure(exc_info)
    assert exc.code == "AUTH_FAILED"
    assert exc.message
    for text in (str(exc), exc.message, repr(exc), str(exc.__cause__), repr(exc.__cause__)):
        assert wrong not in text


def test_changed_password_applies_without_restart(dovecot: Dovecot) -> None:
    name = f"change-{secrets.token_hex(4)}"
    dovecot.add_user(name, "before-1")
    settings = settings_for(dovecot, IMAP, NONE, name)
    verify_login(IMAP, settings, "before-1", timeout=5)

    dovecot.set_password(name, "after--1")  # same length: only the mtime tells them apart

    verify_login(IMAP, settings, "after--1", timeout=5)
    with pytest.raises(LoginFailed) as exc_info:
        verify_login(IMAP, settings, "before-1", timeout=5)
    assert failure(exc_info).code == "AUTH_FAILED"


@pytest.fixture
def closed_port() -> Iterator[int]:
    # Bound but not listening: connects are refused, and nobody else can take the port
    # while the test runs.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@pytest.mark.parametrize("protocol", [IMAP, POP3], ids=lambda v: v.value)
def test_closed_port_is_unreachable(protocol: MailProtocol, closed_port: int) -> None:
    settings = ServerSettings("127.0.0.1", closed_port, NONE, "someone")

    with pytest.raises(LoginFailed) as exc_info:
        verify_login(protocol, settings, "irrelevant", timeout=2)

    assert failure(exc_info).code == "UNREACHABLE"


@pytest.fixture
def silent_port() -> Iterator[int]:
    # Listening but never accepting: the kernel completes the TCP handshake, and then
    # nothing is ever written, like a hung server.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


@pytest.mark.parametrize(
    ("protocol", "security"), [(IMAP, NONE), (IMAP, TLS), (POP3, STARTTLS)], ids=lambda v: v.value
)
def test_silent_server_is_timeout(
    protocol: MailProtocol, security: TransportSecurity, silent_port: int
) -> None:
    settings = ServerSettings("127.0.0.1", silent_port, security, "someone")
    started = time.monotonic()

    with pytest.raises(LoginFailed) as exc_info:
        verify_login(protocol, settings, "irrelevant", timeout=0.5)

    assert failure(exc_info).code == "TIMEOUT"
    assert time.monotonic() - started < 2.0
