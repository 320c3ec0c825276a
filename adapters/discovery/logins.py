"""One real login to one candidate server at one already checked IP address (settings discovery).

`login_imap`, `login_pop3` and `login_smtp` connect to `dialer` (which opens the TCP socket to the
checked address itself: no second name lookup between the address check and the connect), verify
the certificate against the candidate's HOST NAME, log in (SMTP: EHLO, STARTTLS or implicit TLS,
AUTH; no mail is sent) and leave again. Each raises `AttemptFailed(outcome, detail)` for anything
that goes wrong; `outcome_of` turns any other exception into an outcome. The password is written
only to a TLS-protected socket and never into a detail.

The small subclasses of imaplib/poplib/smtplib below only replace how the socket is created.
"""

from __future__ import annotations

import base64
import contextlib
import imaplib
import poplib
import smtplib
import socket
import ssl
import threading

from adapters.discovery.model import Candidate, Outcome
from adapters.mailserver import LoginFailed, _classify, _rejected, _server_text
from domain.values import TransportSecurity

_MAX_TEXT = 160


class AttemptFailed(Exception):
    """The attempt ended with `outcome` (never "ok"); `detail` is short and holds no password."""

    def __init__(self, outcome: Outcome, detail: str) -> None:
        super().__init__(outcome, detail)
        self.outcome: Outcome = outcome
        self.detail = detail


class Cancelled(Exception):
    """The probe as a whole has ended (deadline passed, or the answer is already known)."""


class Dialer:
    """Opens TCP connections to one checked address for one attempt, and can abort them all from
    another thread (`abort`): a blocked connect, TLS handshake or read then ends at once."""

    def __init__(self, address: str, port: int) -> None:
        self.address = address
        self.port = port
        self._lock = threading.Lock()
        self._aborted = False
        # Duplicates of the raw sockets: shutdown() on a duplicate ends the connection even after
        # the original was wrapped in TLS (which detaches it) or closed by the library.
        self._handles: list[socket.socket] = []
        self._owned: list[socket.socket] = []

    def dial(self, timeout: float | None) -> socket.socket:
        family = socket.AF_INET6 if ":" in self.address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        with self._lock:
            if self._aborted:
                sock.close()
                raise Cancelled()
            self._handles.append(sock.dup())
            self._owned.append(sock)
        sock.settimeout(timeout)
        sock.connect((self.address, self.port))
        return sock

    def own(self, sock: socket.socket) -> socket.socket:
        """Closed by `close` in any case (e.g. a TLS socket a library failed to close)."""
        with self._lock:
            self._owned.append(sock)
        return sock

    def abort(self) -> None:
        with self._lock:
            self._aborted = True
            for handle in self._handles:
                with contextlib.suppress(OSError):
                    handle.shutdown(socket.SHUT_RDWR)

    @property
    def aborted(self) -> bool:
        with self._lock:
            return self._aborted

    def close(self) -> None:
        with self._lock:
            for sock in [*self._owned, *self._handles]:
                with contextlib.suppress(OSError):
                    sock.close()
            self._owned.clear()
            self._handles.clear()


class _IMAP4(imaplib.IMAP4):
    def __init__(self, dialer: Dialer, host: str, port: int, timeout: float) -> None:
        self._dialer = dialer
        super().__init__(host, port, timeout)

    def _create_socket(self, timeout: float | None = None) -> socket.socket:
        return self._dialer.dial(timeout)


class _IMAP4_SSL(imaplib.IMAP4_SSL):
    def __init__(self, dialer: Dialer, host: str, port: int, context: ssl.SSLContext, timeout: float) -> None:
        self._dialer = dialer
        self._context = context
        super().__init__(host, port, ssl_context=context, timeout=timeout)

    def _create_socket(self, timeout: float | None = None) -> socket.socket:
        raw = self._dialer.dial(timeout)
        return self._dialer.own(self._context.wrap_socket(raw, server_hostname=self.host))


class _POP3(poplib.POP3):
    def __init__(self, dialer: Dialer, host: str, port: int, timeout: float) -> None:
        self._dialer = dialer
        super().__init__(host, port, timeout)

    def _create_socket(self, timeout: float | None) -> socket.socket:
        return self._dialer.dial(timeout)


class _POP3_SSL(poplib.POP3_SSL):
    def __init__(self, dialer: Dialer, host: str, port: int, context: ssl.SSLContext, timeout: float) -> None:
        self._dialer = dialer
        self._context = context
        super().__init__(host, port, timeout=timeout, context=context)

    def _create_socket(self, timeout: float | None) -> socket.socket:
        raw = self._dialer.dial(timeout)
        return self._dialer.own(self._context.wrap_socket(raw, server_hostname=self.host))


class _SMTP(smtplib.SMTP):
    _host: str

    def __init__(self, dialer: Dialer, context: ssl.SSLContext | None, timeout: float) -> None:
        self._dialer = dialer
        self._implicit_tls = context
        # A local_hostname is given so that smtplib does not look up our own FQDN (slow DNS);
        # the real EHLO name is set once connected.
        super().__init__(local_hostname="localhost", timeout=timeout)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        # starttls() verifies the certificate against _host, which connect() does not set.
        self._host = host
        raw = self._dialer.dial(timeout)
        if self._implicit_tls is None:
            return raw
        return self._dialer.own(self._implicit_tls.wrap_socket(raw, server_hostname=host))


def login_imap(
    candidate: Candidate, dialer: Dialer, username: str, password: str, context: ssl.SSLContext, timeout: float
) -> None:
    conn: imaplib.IMAP4
    if candidate.security is TransportSecurity.TLS:
        conn = _IMAP4_SSL(dialer, candidate.host, candidate.port, context, timeout)
    else:
        conn = _IMAP4(dialer, candidate.host, candidate.port, timeout)
    try:
        if candidate.security is TransportSecurity.STARTTLS:
            if "STARTTLS" not in conn.capabilities:
                raise AttemptFailed("protocol-error", "the server does not offer STARTTLS")
            conn.starttls(context)
        try:
            if username.isascii() and password.isascii() and "LOGINDISABLED" not in conn.capabilities:
                conn.login(username, password)
            else:
                # LOGIN carries ASCII only; AUTHENTICATE PLAIN sends UTF-8 (RFC 4616).
                token = f"\0{username}\0{password}".encode()
                conn.authenticate("PLAIN", lambda _challenge: token)
        except imaplib.IMAP4.abort:
            raise
        except imaplib.IMAP4.error as exc:
            raise _refused(exc, password) from None
        # Only after an answered login: a LOGOUT after a timeout would wait out another one.
        with contextlib.suppress(Exception):
            conn.logout()
    finally:
        with contextlib.suppress(Exception):
            conn.shutdown()


def login_pop3(
    candidate: Candidate, dialer: Dialer, username: str, password: str, context: ssl.SSLContext, timeout: float
) -> None:
    conn: poplib.POP3
    if candidate.security is TransportSecurity.TLS:
        conn = _POP3_SSL(dialer, candidate.host, candidate.port, context, timeout)
    else:
        conn = _POP3(dialer, candidate.host, candidate.port, timeout)
    try:
        if candidate.security is TransportSecurity.STARTTLS:
            try:
                conn.stls(context)
            except poplib.error_proto as exc:
                raise AttemptFailed("protocol-error", f"STLS refused: {_server_text(exc, password)}") from None
        try:
            conn.user(username)
            conn.pass_(password)
        except poplib.error_proto as exc:
            if exc.args and exc.args[0] in (b"-ERR EOF", "-ERR EOF"):
                raise AttemptFailed("protocol-error", "the server closed the connection") from None
            raise _refused(exc, password) from None
        with contextlib.suppress(Exception):
            conn.quit()
    finally:
        with contextlib.suppress(Exception):
            conn.close()


def login_smtp(
    candidate: Candidate, dialer: Dialer, username: str, password: str, context: ssl.SSLContext, timeout: float
) -> None:
    """EHLO, STARTTLS (or implicit TLS), AUTH; QUIT without sending anything."""
    implicit = candidate.security is TransportSecurity.TLS
    smtp = _SMTP(dialer, context if implicit else None, timeout)
    try:
        code, text = smtp.connect(candidate.host, candidate.port)
        if code != 220:
            raise AttemptFailed("protocol-error", f"greeting: {_reply(code, text, password)}")
        smtp.local_hostname = _ehlo_name(smtp.sock)
        _ehlo(smtp, password)
        if candidate.security is TransportSecurity.STARTTLS:
            if not smtp.has_extn("starttls"):
                raise AttemptFailed("protocol-error", "the server does not offer STARTTLS")
            smtp.starttls(context=context)
            _ehlo(smtp, password)
        if not smtp.has_extn("auth"):
            raise AttemptFailed("auth-failed", "the server offers no AUTH")
        _smtp_auth(smtp, smtp.esmtp_features["auth"].upper().split(), username, password)
        with contextlib.suppress(Exception):
            smtp.quit()
    finally:
        with contextlib.suppress(Exception):
            smtp.close()


def _ehlo(smtp: smtplib.SMTP, password: str) -> None:
    code, text = smtp.ehlo()
    if code != 250:
        raise AttemptFailed("protocol-error", f"EHLO refused: {_reply(code, text, password)}")


def _smtp_auth(smtp: smtplib.SMTP, mechanisms: list[str], username: str, password: str) -> None:
    # Written here rather than smtplib.login: that encodes credentials as ASCII only and would
    # try every mechanism again after a refusal.
    if "PLAIN" in mechanisms:
        code, text = smtp.docmd("AUTH", "PLAIN " + _b64(f"\0{username}\0{password}"))
    elif "LOGIN" in mechanisms:
        code, text = smtp.docmd("AUTH", "LOGIN")
        if code == 334:
            code, text = smtp.docmd(_b64(username))
        if code == 334:
            code, text = smtp.docmd(_b64(password))
    else:
        raise AttemptFailed("protocol-error", f"no AUTH mechanism usable (offered: {' '.join(mechanisms)[:80]})")
    if code == 235:
        return
    outcome: Outcome = "auth-failed" if code == 535 else "protocol-error"
    raise AttemptFailed(outcome, f"AUTH refused: {_reply(code, text, password)}")


def outcome_of(exc: BaseException, password: str) -> tuple[Outcome, str]:
    """How an attempt that raised `exc` ended, with a short reason that holds no password."""
    if isinstance(exc, AttemptFailed):
        return exc.outcome, exc.detail
    if isinstance(exc, Cancelled):
        return "skipped", "the probe had already ended"
    if isinstance(exc, socket.gaierror):
        return "no-such-host", "the host name could not be resolved"
    if isinstance(exc, (imaplib.IMAP4.abort, smtplib.SMTPServerDisconnected)) and isinstance(
        exc.__context__, OSError
    ):
        # The libraries wrap socket errors (a timeout, a TLS alert) into their own exception.
        exc = exc.__context__
    if isinstance(exc, UnicodeError):
        return "protocol-error", "the user name or password cannot be encoded for this server"
    if isinstance(exc, smtplib.SMTPResponseException):
        return "protocol-error", f"unexpected reply: {_reply(exc.smtp_code, exc.smtp_error, password)}"
    if isinstance(exc, smtplib.SMTPException):
        return "protocol-error", f"SMTP: {_clip(str(exc), password)}"
    if not isinstance(exc, Exception):
        return "protocol-error", f"unexpected failure: {type(exc).__name__}"
    failed = _classify(exc, password)
    return _OUTCOMES[failed.code], failed.message


_OUTCOMES: dict[str, Outcome] = {
    "AUTH_FAILED": "auth-failed",
    "UNREACHABLE": "unreachable",
    "TLS_FAILED": "tls-failed",
    "TIMEOUT": "timeout",
    "PROTOCOL_ERROR": "protocol-error",
}


def _refused(exc: Exception, password: str) -> AttemptFailed:
    failed: LoginFailed = _rejected(exc, password)
    return AttemptFailed(_OUTCOMES[failed.code], failed.message)


def _ehlo_name(sock: socket.socket | None) -> str:
    """Our address as an RFC 5321 address literal: no lookup of our own name needed."""
    address = sock.getsockname()[0] if sock is not None else "127.0.0.1"
    return f"[IPv6:{address}]" if ":" in address else f"[{address}]"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode("ascii")


def _reply(code: int, text: bytes | str, password: str) -> str:
    words = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    return _clip(f"{code} {' '.join(words.split())}", password)


def _clip(text: str, password: str) -> str:
    if password:
        text = text.replace(password, "***")
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 3] + "..."
