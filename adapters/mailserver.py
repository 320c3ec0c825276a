"""Log in to a mailbox's real IMAP or POP3 server.

`verify_login` is used when an admin connects a mailbox to the helpdesk: log in once, log
out, and turn every way that can fail into a `LoginFailed` with a stable code the UI can
explain. `open_imap` / `open_pop3` do the same connect + login and hand back the logged-in
connection, for the fetch sessions in adapters/imap.py and adapters/pop3.py. The password
is only ever written to the server's socket; it is never put into an exception message.

After the login, those sessions report failures with the two exceptions defined here:
`ConnectionLost` (the connection is gone or hung; open a new session) and `CommandFailed`
(the server refused one command; the connection is still in step).
"""

from __future__ import annotations

import contextlib
import errno
import imaplib
import poplib
import re
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO, Final, Literal, Protocol, TypeVar

# imapclient ships no type information (pyproject sets ignore_missing_imports): its names
# are Any to mypy, so the calls below are checked by the integration tests instead.
from imapclient import IMAPClient
from imapclient.exceptions import CapabilityError, LoginError

from domain.values import MailProtocol, ServerSettings, TransportSecurity

FailureCode = Literal["AUTH_FAILED", "UNREACHABLE", "TLS_FAILED", "TIMEOUT", "PROTOCOL_ERROR"]

# Connect errors that mean "nothing answers at that address", as opposed to a server that
# answered and then misbehaved (reset, EOF), which is a PROTOCOL_ERROR.
_UNREACHABLE_ERRNOS: Final = frozenset(
    {
        errno.ECONNREFUSED,
        errno.ENETUNREACH,
        errno.EHOSTUNREACH,
        errno.EHOSTDOWN,
        errno.ENETDOWN,
        errno.EADDRNOTAVAIL,
    }
)

# Response codes (RFC 5530 for IMAP, RFC 3206 for POP3) with which a server refuses a login
# for its own reasons. Reporting those as a wrong password would send the admin hunting for
# a typo while the server is the problem.
_SERVER_SIDE_REFUSALS: Final = ("[UNAVAILABLE]", "[SERVERBUG]", "[SYS/", "[IN-USE]")

# Server replies are quoted in messages for diagnosis, but kept to one short line.
_MAX_SERVER_TEXT: Final = 160
_BYTES_REPR: Final = re.compile(r"\bb'([^']*)'")


class LoginFailed(Exception):
    """The login could not be verified; `code` says why, `message` says it for humans."""

    def __init__(self, code: FailureCode, message: str) -> None:
        # Both go to Exception.args so that the exception survives pickling (e.g. when it
        # crosses a process pool) with the same two-argument constructor.
        super().__init__(code, message)
        self.code: FailureCode = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class ConnectionLost(OSError):
    """The connection to the mail server broke after the login: EOF, reset, a TLS error, a
    `BYE`, or no answer within the session's timeout (`timed_out` is then True).

    A subclass of OSError, so that code which already treats socket errors as "the server
    is unreachable" handles it the same way. The session that raised it is unusable: every
    further call raises ConnectionLost again; open a new session to continue.
    """

    def __init__(self, message: str, timed_out: bool = False) -> None:
        # One argument only: OSError reads two positional arguments as (errno, strerror).
        super().__init__(message)
        self.message = message
        self.timed_out = timed_out

    def __str__(self) -> str:
        return self.message


class CommandFailed(Exception):
    """The server refused one command (IMAP NO/BAD, POP3 -ERR) or answered it in a way that
    cannot be understood. The connection is still usable unless a later call says otherwise.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


# Lines of a POP3 response are read with this limit instead of poplib's 2048 bytes: mail
# with longer lines (HTML without line breaks, base64 without wrapping) exists, and RETR
# must hand it over intact. It only bounds the memory a broken server can make us use.
POP3_MAX_LINE: Final = 10 * 1024 * 1024


class LoginVerifier(Protocol):
    """The port the application depends on; unit tests pass a fake instead of the network."""

    def __call__(self, protocol: MailProtocol, settings: ServerSettings, password: str) -> None: ...


def tls_context(extra_ca_file: str | None) -> ssl.SSLContext:
    """A verifying client context: the system CAs, plus the CAs in `extra_ca_file` if given.

    The extra file lets an installation trust a private CA (and lets tests trust their own)
    without ever turning verification off.
    """
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    # create_default_context already does both; stated so that a future edit cannot
    # silently weaken them.
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if extra_ca_file is not None:
        context.load_verify_locations(cafile=extra_ca_file)
    return context


def verify_login(
    protocol: MailProtocol,
    settings: ServerSettings,
    password: str,
    *,
    extra_ca_file: str | None = None,
    timeout: float = 10.0,
) -> None:
    """Log in to the server described by `settings` and log out again.

    `timeout` bounds each network step (connect, TLS handshake, every read), not the whole
    exchange. Raises `LoginFailed` for anything the server or the network does wrong. A
    broken `extra_ca_file` is a configuration error of ours, not a failed login, so it
    raises the underlying OSError/ssl.SSLError instead.
    """
    context = None if settings.security is TransportSecurity.NONE else tls_context(extra_ca_file)
    _verify(protocol, settings, password, context, timeout)


def open_imap(
    settings: ServerSettings,
    password: str,
    *,
    extra_ca_file: str | None = None,
    timeout: float = 30.0,
) -> IMAPClient:
    """Connect to the IMAP server of `settings` and log in; the caller owns the client.

    Fails exactly like `verify_login` (`LoginFailed`). `timeout` stays set on the client's
    socket, so every later read or write is bounded by it too.
    """
    context = None if settings.security is TransportSecurity.NONE else tls_context(extra_ca_file)
    return _open(_open_imap, settings, password, context, timeout)


def open_pop3(
    settings: ServerSettings,
    password: str,
    *,
    extra_ca_file: str | None = None,
    timeout: float = 30.0,
) -> poplib.POP3:
    """Connect to the POP3 server of `settings` and log in; the caller owns the connection.

    Fails exactly like `verify_login` (`LoginFailed`). `timeout` stays set on the socket,
    so every later read or write is bounded by it too. The connection reads response lines
    of up to `POP3_MAX_LINE` bytes, not poplib's 2048.
    """
    context = None if settings.security is TransportSecurity.NONE else tls_context(extra_ca_file)
    return _open(_open_pop3, settings, password, context, timeout)


@dataclass(frozen=True)
class _BoundVerifier:
    context: ssl.SSLContext
    timeout: float

    def __call__(self, protocol: MailProtocol, settings: ServerSettings, password: str) -> None:
        context = None if settings.security is TransportSecurity.NONE else self.context
        _verify(protocol, settings, password, context, self.timeout)


def make_verifier(extra_ca_file: str | None, timeout: float = 10.0) -> LoginVerifier:
    """A `LoginVerifier` bound to one CA file and timeout.

    The context is built here, once, so that a missing or broken CA file shows up when the
    application starts rather than as the first admin's failed login.
    """
    _check_timeout(timeout)
    return _BoundVerifier(tls_context(extra_ca_file), timeout)


def _check_timeout(timeout: float) -> None:
    # None would block forever and 0 would make the sockets non-blocking; both defeat the
    # promise that a verification always ends.
    if not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")


def _verify(
    protocol: MailProtocol,
    settings: ServerSettings,
    password: str,
    context: ssl.SSLContext | None,
    timeout: float,
) -> None:
    # The login is verified once _open returns; a failing LOGOUT/QUIT must not turn it into
    # an error.
    if protocol is MailProtocol.IMAP:
        client = _open(_open_imap, settings, password, context, timeout)
        _quietly(client.logout)
        _quietly(client.shutdown)
    else:
        conn = _open(_open_pop3, settings, password, context, timeout)
        _quietly(conn.quit)
        _quietly(conn.close)


_Connection = TypeVar("_Connection")


def _open(
    opener: Callable[[ServerSettings, str, ssl.SSLContext | None, float], _Connection],
    settings: ServerSettings,
    password: str,
    context: ssl.SSLContext | None,
    timeout: float,
) -> _Connection:
    """Run `opener` (connect + login) and turn every way it fails into a `LoginFailed`."""
    _check_timeout(timeout)
    if any(ch in text for text in (settings.username, password) for ch in "\r\n\0"):
        # Sent as is, these would end the command early (or inject another one); no server
        # can hold such credentials, so do not send them anywhere.
        raise LoginFailed("AUTH_FAILED", "the user name or password contains a line break or NUL character")
    try:
        return opener(settings, password, context, timeout)
    except LoginFailed:
        raise
    except UnicodeError:
        # The error object carries the offending text, possibly the password, so it is not
        # chained.
        raise LoginFailed(
            "PROTOCOL_ERROR", "the user name or password cannot be encoded for this server"
        ) from None
    except Exception as exc:
        raise _classify(exc, password) from exc


def _classify(exc: Exception, password: str) -> LoginFailed:
    """Map a low-level failure to a code; the order matters because of subclassing."""
    if isinstance(exc, TimeoutError):  # socket.timeout is an alias, and an OSError
        return LoginFailed("TIMEOUT", "the server did not answer in time")
    if isinstance(exc, ssl.SSLCertVerificationError):
        return LoginFailed("TLS_FAILED", f"certificate not accepted: {exc.verify_message}")
    if isinstance(exc, ssl.SSLError):
        return LoginFailed("TLS_FAILED", f"TLS failed: {exc.reason or exc}")
    if isinstance(exc, socket.gaierror):
        return LoginFailed("UNREACHABLE", "the host name could not be resolved")
    if isinstance(exc, OSError) and exc.errno in _UNREACHABLE_ERRNOS:
        return LoginFailed("UNREACHABLE", f"could not connect: {exc.strerror}")
    if isinstance(exc, OSError):
        return LoginFailed("PROTOCOL_ERROR", f"connection failed: {exc.strerror or exc}")
    if isinstance(exc, (imaplib.IMAP4.error, poplib.error_proto)):
        return LoginFailed("PROTOCOL_ERROR", f"unexpected reply: {_server_text(exc, password)}")
    return LoginFailed("PROTOCOL_ERROR", f"unexpected failure: {type(exc).__name__}")


def _server_text(exc: Exception, password: str) -> str:
    """The server's words from an imaplib/poplib error, as one short line."""
    raw = exc.args[0] if exc.args else ""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    # imaplib puts reprs of bytes into its messages (b'...'); keep only the words.
    text = " ".join(_BYTES_REPR.sub(r"\1", text).split())
    if not text or text == "None":
        return "(no details from the server)"
    # Servers do not echo passwords, but the text is not ours, so make sure.
    if password:
        text = text.replace(password, "***")
    if len(text) > _MAX_SERVER_TEXT:
        text = text[: _MAX_SERVER_TEXT - 3] + "..."
    return text


def _rejected(exc: Exception, password: str) -> LoginFailed:
    text = _server_text(exc, password)
    if any(code in text.upper() for code in _SERVER_SIDE_REFUSALS):
        return LoginFailed("PROTOCOL_ERROR", f"the server cannot log in now: {text}")
    return LoginFailed("AUTH_FAILED", f"the server rejected the login: {text}")


def _quietly(action: Callable[[], object]) -> None:
    """Run a clean-up step whose failure must not hide the outcome that is already known."""
    # A connection that is already dead is the expected reason for these to fail.
    with contextlib.suppress(OSError, imaplib.IMAP4.error, poplib.error_proto):
        action()


def _open_imap(
    settings: ServerSettings, password: str, context: ssl.SSLContext | None, timeout: float
) -> IMAPClient:
    # imapclient defaults to ssl=True, so it is always passed explicitly.
    client = IMAPClient(
        settings.host,
        port=settings.port,
        ssl=settings.security is TransportSecurity.TLS,
        ssl_context=context,
        timeout=timeout,
    )
    try:
        if settings.security is TransportSecurity.STARTTLS:
            try:
                client.starttls(context)
            except CapabilityError as exc:
                # Never fall back to plaintext when encryption was asked for.
                raise LoginFailed("PROTOCOL_ERROR", "the server does not offer STARTTLS") from exc
        try:
            if settings.username.isascii() and password.isascii():
                client.login(settings.username, password)
            else:
                # LOGIN can only carry ASCII; AUTHENTICATE PLAIN sends UTF-8 (RFC 4616).
                client.plain_login(settings.username, password)
        except LoginError as exc:
            # imapclient turns every error during login into LoginError, including the
            # connection dropping; the original is kept as the context.
            original = exc.__context__
            if isinstance(original, imaplib.IMAP4.abort):
                raise _classify(original, password) from exc
            # The original keeps the server's words as bytes; LoginError has only their repr.
            reply = original if isinstance(original, imaplib.IMAP4.error) else exc
            raise _rejected(reply, password) from exc
    except BaseException:
        _quietly(client.shutdown)
        raise
    return client


def _open_pop3(
    settings: ServerSettings, password: str, context: ssl.SSLContext | None, timeout: float
) -> poplib.POP3:
    conn: poplib.POP3
    if settings.security is TransportSecurity.TLS:
        conn = _POP3_SSL(settings.host, settings.port, timeout=timeout, context=context)
    else:
        conn = _POP3(settings.host, settings.port, timeout=timeout)
    try:
        if settings.security is TransportSecurity.STARTTLS:
            try:
                conn.stls(context)
            except poplib.error_proto as exc:
                # Never fall back to plaintext when encryption was asked for.
                text = _server_text(exc, password)
                raise LoginFailed("PROTOCOL_ERROR", f"STLS refused: {text}") from exc
        try:
            conn.user(settings.username)
            conn.pass_(password)
        except poplib.error_proto as exc:
            if exc.args and exc.args[0] in (b"-ERR EOF", "-ERR EOF"):
                # poplib's own marker for a connection closed by the server.
                raise LoginFailed("PROTOCOL_ERROR", "the server closed the connection") from exc
            raise _rejected(exc, password) from exc
    except BaseException:
        _quietly(conn.close)
        raise
    return conn


def _read_pop3_line(file: BinaryIO) -> tuple[bytes, int]:
    """poplib.POP3._getline with `POP3_MAX_LINE` instead of poplib's fixed 2048 bytes.

    Returns the line without its terminator and the number of octets read, like poplib.
    """
    line = file.readline(POP3_MAX_LINE + 1)
    if len(line) > POP3_MAX_LINE:
        # The rest of the line is still unread: the connection is out of step from here on.
        raise poplib.error_proto("line too long")
    if not line:
        raise poplib.error_proto("-ERR EOF")  # poplib's own marker for a closed connection
    octets = len(line)
    # As in poplib: servers may end lines with CRLF, LF or (oddly) start them with CR.
    if line[-2:] == b"\r\n":
        return line[:-2], octets
    if line[:1] == b"\r":
        return line[1:-1], octets
    return line[:-1], octets


class _POP3(poplib.POP3):
    """poplib.POP3 reading response lines of up to POP3_MAX_LINE bytes."""

    def _getline(self) -> tuple[bytes, int]:
        return _read_pop3_line(self.file)


class _POP3_SSL(poplib.POP3_SSL):
    """poplib.POP3_SSL reading response lines of up to POP3_MAX_LINE bytes."""

    def _getline(self) -> tuple[bytes, int]:
        return _read_pop3_line(self.file)
