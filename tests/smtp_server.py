"""A real SMTP server for tests: aiosmtpd on loopback, in a background thread.

`SmtpSink(mode, user, password)` listens on a free 127.0.0.1 port in one of three modes:
"STARTTLS" (offers and requires STARTTLS; AUTH only after it), "TLS" (implicit TLS from the
first byte) or "NONE" (plaintext, AUTH allowed without TLS). Its certificate is signed by a
throw-away CA (`ca_file`, for clients). It accepts AUTH PLAIN/LOGIN for the one user it is
given, records every message it accepts (`messages`, `wait_for`), and lets a test make it
misbehave: `stop()`/`start()` on the same port, `respond_with()` for DATA ends,
`reject_rcpt()`, `hold_data_end()`/`delay_data_end()` to freeze it after the final dot.
It is a TCP server, so worker processes started by a test can use it too (`host`, `port`).
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import ssl
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session, TLSSetupException

from domain.values import ServerSettings, TransportSecurity
from tests.dovecot import HOST, _free_ports, _write_tls

Mode = Literal["STARTTLS", "TLS", "NONE"]


class _NoLoginDataWarning(logging.Filter):
    # aiosmtpd 1.4.6 logs "Session.login_data is deprecated" for every successful AUTH,
    # from its own code: nothing a caller can change.
    def filter(self, record: logging.LogRecord) -> bool:
        return "login_data is deprecated" not in record.getMessage()


logging.getLogger("mail.log").addFilter(_NoLoginDataWarning())
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Received:
    """One accepted message. `data` is what the client sent after DATA, un-dot-stuffed,
    with its CRLF line ends, without the terminating dot."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    authenticated_as: str | None


class SmtpSink:
    """One aiosmtpd server on loopback; see the module docstring. Thread-safe."""

    host = HOST

    def __init__(
        self, mode: Mode = "STARTTLS", user: str = "mailroom@example.test", password: str = "smtp-secret"
    ) -> None:
        if mode not in ("STARTTLS", "TLS", "NONE"):
            raise ValueError(f"unknown mode {mode!r}")
        self.mode: Mode = mode
        self.user = user
        self.password = password
        self.dir = Path(tempfile.mkdtemp(prefix="mailroom-smtp-"))
        _write_tls(self.dir)
        self.ca_file = str(self.dir / "ca.pem")
        self._server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._server_tls.load_cert_chain(self.dir / "cert.pem", self.dir / "key.pem")
        (self.port,) = _free_ports(1)
        self._lock = threading.Condition()
        self._messages: list[Received] = []
        self._responses: deque[str] = deque()
        self._data_refusals: deque[str] = deque()
        self._rejected: dict[str, str] = {}
        self._release: threading.Event | None = None
        self._hold_timeout = 0.0
        self._deliver_before_hold = True
        self._delay = 0.0
        self.offer_auth = True  # False: EHLO does not advertise AUTH (clients must send without)
        self._connections = 0
        self._data_commands = 0
        self._data_ends = 0
        self._open: set[_Smtp] = set()
        self._serial = 0
        self._controller: Controller | None = None
        self.start()

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Listen again (same port). A no-op if already running."""
        if self._controller is not None:
            return
        kwargs: dict[str, Any] = {
            "server_hostname": "sink.mailroom.test",
            "authenticator": self._authenticate,
            "auth_require_tls": self.mode == "STARTTLS",
        }
        if self.mode == "STARTTLS":
            kwargs.update(tls_context=self._server_tls, require_starttls=True)
        elif self.mode == "TLS":
            # aiosmtpd does not know the connection is TLS (it only knows STARTTLS), so AUTH
            # must be allowed "without TLS" or it would never be offered.
            kwargs["ssl_context"] = self._server_tls
        controller = _Controller(self, _Handler(self), hostname=self.host, port=self.port, **kwargs)
        with self._lock:
            before = self._connections
        controller.start()
        with self._lock:
            self._connections = before  # the controller's own start-up probe is not a client
        self._controller = controller

    def stop(self) -> None:
        """Stop listening (new connections are refused) and drop every open connection."""
        controller, self._controller = self._controller, None
        if controller is None:
            return
        asyncio.run_coroutine_threadsafe(self._abort_all(), controller.loop).result(5)
        controller.stop()

    @property
    def running(self) -> bool:
        return self._controller is not None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def reset(self) -> None:
        """Running again, with no recorded messages, no injected behaviour, counters at 0."""
        with self._lock:
            self._messages.clear()
            self._responses.clear()
            self._data_refusals.clear()
            self._rejected.clear()
            self._release, self._delay, self._deliver_before_hold = None, 0.0, True
            self.offer_auth = True
            self._connections = self._data_commands = self._data_ends = 0
        self.start()

    def settings(self, username: str | None = None) -> ServerSettings:
        """How a client reaches this sink (user name defaults to the sink's user)."""
        security = TransportSecurity(self.mode)
        return ServerSettings(self.host, self.port, security, self.user if username is None else username)

    # -- what arrived ----------------------------------------------------------------------

    @property
    def messages(self) -> list[Received]:
        with self._lock:
            return list(self._messages)

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Received]:
        """Waits until at least `count` messages were accepted; returns them all (raises on timeout)."""
        with self._lock:
            if not self._lock.wait_for(lambda: len(self._messages) >= count, timeout):
                raise TimeoutError(f"{len(self._messages)} of {count} messages arrived within {timeout} s")
            return list(self._messages)

    @property
    def connections(self) -> int:
        """Client connections accepted since the last reset (STARTTLS does not count twice)."""
        with self._lock:
            return self._connections

    @property
    def open_connections(self) -> int:
        with self._lock:
            return len(self._open)

    @property
    def data_commands(self) -> int:
        """DATA commands answered with 354 since the last reset."""
        with self._lock:
            return self._data_commands

    @property
    def data_ends(self) -> int:
        """Final dots received since the last reset, whatever the answer (or none)."""
        with self._lock:
            return self._data_ends

    def wait_for_data_ends(self, count: int, timeout: float = 5.0) -> None:
        """Waits until at least `count` final dots have arrived (e.g. before a kill -9 test
        kills the client while `hold_data_end` keeps the server from answering)."""
        self._wait(lambda: self._data_ends >= count, f"{count} data ends", timeout)

    def wait_for_open_connections(self, count: int, timeout: float = 5.0) -> None:
        """Waits until exactly `count` client connections are open (0: all clients gone)."""
        self._wait(lambda: len(self._open) == count, f"{count} open connections", timeout)

    def _wait(self, condition: Callable[[], bool], what: str, timeout: float) -> None:
        with self._lock:
            if not self._lock.wait_for(condition, timeout):
                raise TimeoutError(f"no {what} within {timeout} s")

    # -- misbehaviour ----------------------------------------------------------------------

    def respond_with(self, code_and_text: str, times: int = 1) -> None:
        """The next `times` DATA ends are answered with this (e.g. "451 4.3.0 try later")
        instead of being accepted; nothing is recorded for them."""
        with self._lock:
            self._responses.extend([code_and_text] * times)

    def refuse_data_command(self, code_and_text: str, times: int = 1) -> None:
        """The next `times` DATA commands (not their ends) are answered with this instead of 354."""
        with self._lock:
            self._data_refusals.extend([code_and_text] * times)

    def reject_rcpt(self, address: str, code_and_text: str = "550 5.1.1 no such user") -> None:
        """RCPT TO this address is answered with `code_and_text` until the next reset."""
        with self._lock:
            self._rejected[address.lower()] = code_and_text

    def hold_data_end(
        self, release: threading.Event | None, *, timeout: float = 60.0, deliver_before_hold: bool = True
    ) -> None:
        """After each final dot, wait until `release` is set (at most `timeout`) before answering.

        With `deliver_before_hold` the message is recorded as soon as the dot arrives (like an
        MTA that has queued it and then dies or stalls before saying so); otherwise only once
        the hold ends with the client still connected. `None` ends holding.
        """
        with self._lock:
            self._release, self._hold_timeout = release, timeout
            self._deliver_before_hold = deliver_before_hold

    def delay_data_end(self, seconds: float) -> None:
        """Answer every final dot only after `seconds` (0: at once); the message is recorded first."""
        with self._lock:
            self._delay = seconds

    # -- server side -----------------------------------------------------------------------

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        # aiosmtpd keeps session.auth_data only if it is handed back here.
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == self.user.encode()
            and auth_data.password == self.password.encode()
        )
        return AuthResult(success=ok, auth_data=auth_data if ok else None, handled=False)

    async def _abort_all(self) -> None:
        with self._lock:
            connections = list(self._open)
        for connection in connections:
            connection.abort()
        await asyncio.sleep(0.01)  # let the transports close their sockets

    def _on_connect(self, connection: _Smtp, opened: bool) -> None:
        with self._lock:
            if opened:
                self._connections += 1
                self._open.add(connection)
            else:
                self._open.discard(connection)
            self._lock.notify_all()

    async def _data_end(self, session: Session, envelope: Envelope) -> str:
        with self._lock:
            self._data_ends += 1
            self._lock.notify_all()
            injected = self._responses.popleft() if self._responses else None
            release, hold_timeout, early = self._release, self._hold_timeout, self._deliver_before_hold
            delay = self._delay
            self._serial += 1
            reply = f"250 2.0.0 Ok: queued as SINK{self._serial}"
        if injected is not None:
            return injected
        if release is None or early:
            self._record(session, envelope)
        if release is not None:
            deadline = time.monotonic() + hold_timeout
            while not release.is_set() and time.monotonic() < deadline:
                await asyncio.sleep(0.01)  # cancelled if the client goes away
            if not early:
                self._record(session, envelope)
        if delay > 0:
            await asyncio.sleep(delay)
        return reply

    def _record(self, session: Session, envelope: Envelope) -> None:
        auth = session.auth_data if session.authenticated else None
        user = auth.login.decode("utf-8", "replace") if isinstance(auth, LoginPassword) else None
        content = envelope.original_content or b""
        received = Received(envelope.mail_from or "", list(envelope.rcpt_tos), bytes(content), user)
        with self._lock:
            self._messages.append(received)
            self._lock.notify_all()


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self._sink = sink

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:
        # With this (5-argument) hook, aiosmtpd leaves recording the client's name to it.
        session.host_name = hostname
        if self._sink.offer_auth:
            return responses
        return [line for line in responses if not line[4:].upper().startswith("AUTH")]

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        with self._sink._lock:
            refusal = self._sink._rejected.get(address.lower())
        if refusal is not None:
            return refusal
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        return await self._sink._data_end(session, envelope)

    async def handle_exception(self, error: Exception) -> str:
        # A client that refuses our certificate is what some tests are about: no traceback.
        if isinstance(error, TLSSetupException):
            _log.info("TLS handshake failed: %s", error.__cause__)
        else:
            _log.exception("SMTP sink: session error")
        return f"451 4.3.0 sink error: {type(error).__name__}"


class _Smtp(SMTP):
    """Tells the sink about connections; the raw transport is kept to abort it on stop()."""

    def __init__(self, sink: SmtpSink, handler: _Handler, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._sink = sink
        self._raw: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        first = self._raw is None  # after STARTTLS, this is called again with the TLS transport
        if first:
            self._raw = transport
        super().connection_made(transport)
        if first:
            self._sink._on_connect(self, True)

    def connection_lost(self, error: Exception | None) -> None:
        self._sink._on_connect(self, False)
        super().connection_lost(error)

    async def smtp_DATA(self, arg: str) -> None:
        with self._sink._lock:
            refusal = self._sink._data_refusals.popleft() if self._sink._data_refusals else None
            if refusal is None and self.envelope is not None and self.envelope.rcpt_tos and not arg:
                self._sink._data_commands += 1
        if refusal is not None:
            await self.push(refusal)
            return
        await super().smtp_DATA(arg)

    def abort(self) -> None:
        if isinstance(self._raw, asyncio.Transport):
            self._raw.abort()


class _Controller(Controller):
    def __init__(self, sink: SmtpSink, handler: _Handler, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._sink = sink

    def factory(self) -> SMTP:
        return _Smtp(self._sink, self.handler, **self.SMTP_kwargs)
