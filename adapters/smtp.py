"""Hand one reply to its mailbox's SMTP server in two steps: all of the message, then the final dot.

Between the two, `handing_over()` lets the outbox record the hand-over; if it raises, the
connection is dropped without the dot and the server discards the transaction. Every failure
of the exchange is a `DeliveryFailed` (temporary or permanent) whose reason never holds the password.
"""

from __future__ import annotations

import contextlib
import functools
import re
import smtplib
import socket
import ssl
from collections.abc import Callable

from domain.values import ServerSettings, TransportSecurity

_MAX_REASON = 500
_LINE_END = re.compile(rb"\r\n|\r|\n")
_LINE_START_DOT = re.compile(rb"^\.", re.MULTILINE)


class DeliveryFailed(Exception):
    """The server did not take the message. `permanent`: retrying the same will not help."""

    def __init__(self, reason: str, permanent: bool) -> None:
        super().__init__(reason, permanent)
        self.reason = reason
        self.permanent = permanent

    def __str__(self) -> str:
        return f"{'permanent' if self.permanent else 'temporary'}: {self.reason}"


def deliver(
    server: ServerSettings,
    password: str,
    sender: str,
    recipients: list[str],
    data: bytes,
    *,
    extra_ca_file: str | None = None,
    timeout: float = 30.0,
    handing_over: Callable[[], None] = lambda: None,
    local_hostname: str | None = None,
) -> str:
    """Sends `data` (a complete RFC 5322 message, CRLF line ends) over SMTP; returns the
    server's final reply (e.g. "250 2.0.0 Ok: queued as X"). `timeout` bounds the connect and
    each read. A broken `extra_ca_file` raises its OSError/SSLError (our configuration error).
    """
    where = f"{server.host}:{server.port}"
    context = None if server.security is TransportSecurity.NONE else tls_context(extra_ca_file)
    smtp: smtplib.SMTP | None = None
    phase = "talk"  # "data": the server reads message data; "dot": the final dot is sent
    handover_error: BaseException | None = None
    try:
        if server.security is TransportSecurity.TLS:
            smtp = smtplib.SMTP_SSL(server.host, server.port, local_hostname, timeout=timeout, context=context)
        else:
            smtp = smtplib.SMTP(server.host, server.port, local_hostname, timeout=timeout)
        # The message and its final dot are two writes: without NODELAY, Nagle's algorithm and the
        # server's delayed ACK hold each delivery up by 40-200 ms.
        if smtp.sock is not None:
            smtp.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        smtp.ehlo_or_helo_if_needed()
        if server.security is TransportSecurity.STARTTLS:
            if not smtp.has_extn("starttls"):
                raise DeliveryFailed(f"{where} does not offer STARTTLS, which this mailbox requires", False)
            smtp.starttls(context=context)
            smtp.ehlo_or_helo_if_needed()
        if server.username and smtp.has_extn("auth"):
            smtp.login(server.username, password)
        options = ["BODY=8BITMIME"] if smtp.has_extn("8bitmime") and not data.isascii() else []
        if not all(address.isascii() for address in [sender, *recipients]):
            options.append("SMTPUTF8")  # smtplib raises SMTPNotSupportedError if not offered
        _expect(smtp.mail(sender, options), 250)
        refused: list[tuple[int, bytes]] = []
        for recipient in recipients:
            code, text = smtp.rcpt(recipient)
            if code not in (250, 251):
                refused.append((code, text))
        if len(refused) == len(recipients):
            reason = "; ".join(_reply(code, text) for code, text in refused) or "no recipients"
            raise DeliveryFailed(reason, all(500 <= code < 600 for code, _ in refused))
        smtp.putcmd("data")
        _expect(smtp.getreply(), 354)
        phase = "data"
        smtp.send(_stuffed(data))
        try:
            handing_over()
        except BaseException as error:
            handover_error = error
            smtp.close()  # at once, without the final dot: the server drops the transaction
            raise
        phase = "dot"
        smtp.send(b".\r\n")
        code, text = smtp.getreply()
        phase = "talk"
        _expect((code, text), 250)
        return _reply(code, text)
    except BaseException as error:
        failure = None if error is handover_error else _classify(error, where, timeout, phase)
        if failure is None:
            raise
        raise DeliveryFailed(_clean(failure.reason, password), failure.permanent) from None
    finally:
        if smtp is not None:
            if phase == "talk" and handover_error is None:
                with contextlib.suppress(smtplib.SMTPException, OSError):
                    smtp.quit()
            smtp.close()


@functools.lru_cache(maxsize=8)
def tls_context(extra_ca_file: str | None) -> ssl.SSLContext:
    """One verifying context per CA file: building one loads the system's CA bundle (~25 ms of CPU
    holding the GIL), too much for every delivery."""
    context = ssl.create_default_context()
    if extra_ca_file is not None:
        context.load_verify_locations(cafile=extra_ca_file)
    return context


def _classify(error: BaseException, where: str, timeout: float, phase: str) -> DeliveryFailed | None:
    """The DeliveryFailed that `error` means, or None for errors that are not about delivery."""
    if isinstance(error, DeliveryFailed):
        return error
    if isinstance(error, smtplib.SMTPResponseException):  # refused AUTH, banner, STARTTLS, ...
        return DeliveryFailed(_reply(error.smtp_code, error.smtp_error), 500 <= error.smtp_code < 600)
    if isinstance(error, smtplib.SMTPServerDisconnected):
        when = {"data": " during the message data", "dot": " after the final dot (the message may have arrived)"}
        return DeliveryFailed(f"connection to {where} lost{when.get(phase, '')}: {error}", False)
    if isinstance(error, smtplib.SMTPException):  # not supported: SMTPUTF8, no usable AUTH mechanism
        return DeliveryFailed(f"{where}: {error}", True)
    if isinstance(error, ssl.SSLError):  # before OSError: it is one
        return DeliveryFailed(f"TLS with {where} failed: {error}", False)
    if isinstance(error, ConnectionRefusedError):
        return DeliveryFailed(f"connection refused by {where}", False)
    if isinstance(error, TimeoutError):
        return DeliveryFailed(f"no answer from {where} within {timeout:g} s", False)
    if isinstance(error, OSError):
        return DeliveryFailed(f"cannot talk to {where}: {error.strerror or error}", False)
    if isinstance(error, UnicodeEncodeError):
        # e.g. a non-ASCII password: smtplib sends AUTH data as ASCII only
        return DeliveryFailed(f"cannot send a non-ASCII user name, password or address to {where}", True)
    return None


def _stuffed(data: bytes) -> bytes:
    """CRLF line ends, a final CRLF, lines starting with "." doubled; no terminating dot."""
    data = _LINE_END.sub(b"\r\n", data)
    if data and not data.endswith(b"\r\n"):
        data += b"\r\n"
    return _LINE_START_DOT.sub(b"..", data)


def _expect(reply: tuple[int, bytes], wanted: int) -> None:
    code, text = reply
    if code != wanted:
        raise DeliveryFailed(_reply(code, text), 500 <= code < 600)


def _reply(code: int, text: bytes | str) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return " ".join(f"{code} {text}".split())


def _clean(reason: str, password: str) -> str:
    if password:
        reason = reason.replace(password, "***")
    return reason if len(reason) <= _MAX_REASON else reason[: _MAX_REASON - 3] + "..."
