"""Verify candidate servers by a real login, all in parallel, with an answer by a deadline.

`verify_candidates` resolves each candidate's host, keeps only public addresses (unless private
ones are allowed), connects to the checked address itself and logs in with each user name
variant in turn (the next one only after "auth-failed"): IMAP LOGIN / AUTHENTICATE PLAIN, POP3
USER/PASS, SMTP EHLO + STARTTLS or implicit TLS + AUTH (no mail is sent). Certificates are
verified against the host NAME. The password goes only over TLS: a plaintext candidate is
reported "protocol-error" without connecting.

Timing: every network step of an attempt (connect, TLS handshake, each read) is bounded by
`attempt_timeout`, cut down to what is left before `deadline`. The caller gets its answer as
soon as it is settled (for each role, the best candidate that can still win has answered) or
when `deadline` passes, whichever is first; attempts still running are then aborted (their
sockets shut down) and reported "timeout" (started) or "skipped" (not needed, or never started).
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Protocol

from adapters.discovery.addresses import PrivateAddress, allowed
from adapters.discovery.dns import DnsError, NoSuchHost
from adapters.discovery.logins import AttemptFailed, Cancelled, Dialer, login_imap, login_pop3, login_smtp, outcome_of
from adapters.discovery.model import AttemptReport, Candidate, Outcome, ProbeResult, Verified
from adapters.mailserver import tls_context
from domain.values import MailProtocol, TransportSecurity

_log = logging.getLogger(__name__)

MAX_PARALLEL = 16

__all__ = ["AddressResolver", "NoSuchHost", "PrivateAddress", "Resolve", "verify_candidates"]

# A host name's addresses (IPv4/IPv6 text); may raise NoSuchHost (or DnsError, socket.gaierror).
Resolve = Callable[[str], list[str]]


class AddressResolver(Protocol):
    """adapters.discovery.dns.Resolver: its lookups can be bounded by the attempt's timeout."""

    def addresses(self, host: str, *, timeout: float | None = None) -> list[str]: ...

_Login = Callable[[Candidate, Dialer, str, str, ssl.SSLContext, float], None]
_Result = tuple[Outcome, str, str | None]  # outcome, detail, the user name that worked


def verify_candidates(
    candidates: list[Candidate],
    password: str,
    *,
    resolve: Resolve | AddressResolver,
    allow_private: bool,
    extra_ca_file: str | None,
    attempt_timeout: float = 8.0,
    deadline: float,
) -> ProbeResult:
    """Try the candidates (see the module docstring); `deadline` is a `time.monotonic()` value.

    `resolve` is a `dns.Resolver` (or anything with its `addresses(host, *, timeout)`: the lookup
    is then bounded like every other step) or a plain function host -> addresses. Which addresses
    may be used is `addresses.allowed` (a host with any non-public address is refused unless
    `allow_private`).

    Incoming: the first candidate in list order that logged in, IMAP before POP3. Outgoing: the
    first SMTP candidate whose AUTH was accepted. `attempts` has one report per candidate, in
    list order. A broken `extra_ca_file` raises (our configuration error, not a probe result).
    """
    if not attempt_timeout > 0:
        raise ValueError(f"attempt_timeout must be positive, got {attempt_timeout!r}")
    resolver = resolve if hasattr(resolve, "addresses") else _FunctionResolver(resolve)
    probe = _Probe(candidates, password, resolver, allow_private, tls_context(extra_ca_file), attempt_timeout,
                   deadline)
    return probe.run()


class _Probe:
    def __init__(self, candidates: list[Candidate], password: str, resolver: AddressResolver, allow_private: bool,
                 context: ssl.SSLContext, attempt_timeout: float, deadline: float) -> None:
        self._candidates = list(candidates)
        self._password = password
        self._resolver = resolver
        self._allow_private = allow_private
        self._context = context
        self._attempt_timeout = attempt_timeout
        self._deadline = deadline
        self._lock = threading.Lock()
        self._over = False
        self._started: set[int] = set()
        self._dialers: set[Dialer] = set()
        indexed = list(enumerate(self._candidates))
        # Priority orders: whoever answered "ok" first in these wins the role.
        self._incoming = [i for i, c in indexed if c.role == "incoming" and c.protocol is MailProtocol.IMAP] + [
            i for i, c in indexed if c.role == "incoming" and c.protocol is MailProtocol.POP3]
        self._outgoing = [i for i, c in indexed if c.role == "outgoing"]

    # -- the caller's thread ---------------------------------------------------------------

    def run(self) -> ProbeResult:
        results: dict[int, _Result] = {}
        pending: dict[Future[_Result], int] = {}
        pool = ThreadPoolExecutor(max_workers=MAX_PARALLEL, thread_name_prefix="discovery-probe")
        try:
            for index, candidate in enumerate(self._candidates):
                ruled_out = self._ruled_out(candidate)
                if ruled_out is not None:
                    results[index] = ruled_out
                else:
                    pending[pool.submit(self._attempt, index)] = index
            while pending and not self._settled(results):
                remaining = self._deadline - time.monotonic()
                if remaining <= 0:
                    break
                done, _ = wait(pending, timeout=remaining, return_when=FIRST_COMPLETED)
                for future in done:
                    results[pending.pop(future)] = future.result()
            for future in [f for f in pending if f.done() and not f.cancelled()]:
                results[pending.pop(future)] = future.result()
            deadline_passed = time.monotonic() >= self._deadline
        finally:
            self._end()
            pool.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            started = set(self._started)
        for index in pending.values():
            if not deadline_passed:
                results[index] = ("skipped", "not needed: a candidate before it already worked", None)
            elif index in started:
                results[index] = ("timeout", "no answer before the overall deadline", None)
            else:
                results[index] = ("skipped", "not tried: the overall deadline passed", None)
        return self._result(results)

    def _ruled_out(self, candidate: Candidate) -> _Result | None:
        if candidate.refused is not None:
            return candidate.refused, "ruled out by the source", None
        if candidate.security is TransportSecurity.NONE:
            return "protocol-error", "plaintext refused: the password is only sent over TLS", None
        if candidate.role == "incoming" and candidate.protocol is None:
            return "protocol-error", "no protocol given for an incoming server", None
        if not candidate.usernames:
            return "skipped", "no user name to try", None
        return None

    def _settled(self, results: dict[int, _Result]) -> bool:
        """Whether no pending attempt can change the answer for either role any more."""
        for order in (self._incoming, self._outgoing):
            for index in order:
                if index not in results:
                    return False
                if results[index][0] == "ok":
                    break
        return True

    def _result(self, results: dict[int, _Result]) -> ProbeResult:
        probe = ProbeResult()
        for index, candidate in enumerate(self._candidates):
            outcome, detail, _ = results[index]
            detail = detail.replace(self._password, "***") if self._password else detail
            probe.attempts.append(AttemptReport(candidate.source, candidate.role, candidate.protocol, candidate.host,
                                                candidate.port, candidate.security, outcome, detail))
            _log.info("discovery probe: %s %s %s:%d %s -> %s (%s)", candidate.role,
                      candidate.protocol.value if candidate.protocol else "SMTP", candidate.host, candidate.port,
                      candidate.security.value, outcome, detail)
        probe.incoming = self._winner(self._incoming, results)
        probe.outgoing = self._winner(self._outgoing, results)
        return probe

    def _winner(self, order: list[int], results: dict[int, _Result]) -> Verified | None:
        for index in order:
            outcome, _, username = results[index]
            if outcome == "ok" and username is not None:
                return Verified(self._candidates[index], username)
        return None

    def _end(self) -> None:
        with self._lock:
            self._over = True
            dialers = list(self._dialers)
        for dialer in dialers:
            dialer.abort()

    # -- worker threads --------------------------------------------------------------------

    def _attempt(self, index: int) -> _Result:
        try:
            return self._try(index)
        except Exception as exc:  # a bug of ours must not lose the other candidates' answers
            # Only the type: an exception's text could quote what was being sent.
            _log.error("discovery probe: attempt failed unexpectedly: %s", type(exc).__name__)
            return (*outcome_of(exc, self._password), None)

    def _try(self, index: int) -> _Result:
        with self._lock:
            if self._over:
                return "skipped", "the probe had already ended", None
            self._started.add(index)
        candidate = self._candidates[index]
        try:
            addresses = self._addresses(candidate.host)
        except Exception as exc:
            return (*_resolve_failure(exc), None)
        refused: list[str] = []
        last = ""
        for username in candidate.usernames:
            outcome, detail = self._login(candidate, addresses, username)
            if outcome == "ok":
                done = "logged in" if candidate.role == "incoming" else "AUTH accepted"
                return "ok", f"{done} as {username}", username
            if outcome != "auth-failed":
                return outcome, detail, None
            refused.append(username)
            last = detail
        return "auth-failed", f"refused for {', '.join(refused)} ({last})", None

    def _addresses(self, host: str) -> list[str]:
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise AttemptFailed("timeout", "no answer before the overall deadline")
        timeout = min(self._attempt_timeout, remaining)
        return allowed(host, self._resolver, self._allow_private, timeout=timeout)

    def _login(self, candidate: Candidate, addresses: list[str], username: str) -> tuple[Outcome, str]:
        if any(ch in text for text in (username, self._password) for ch in "\r\n\0"):
            # No server can hold such credentials, and sent as they are they would break the command.
            return "auth-failed", "the user name or password contains a line break or NUL character"
        login = _login_function(candidate)
        outcome: Outcome = "unreachable"
        detail = "no address to connect to"
        for address in addresses:
            remaining = self._deadline - time.monotonic()
            if remaining <= 0:
                return "timeout", "no answer before the overall deadline"
            dialer = Dialer(address, candidate.port)
            with self._lock:
                if self._over:
                    return "skipped", "the probe had already ended"
                self._dialers.add(dialer)
            try:
                login(candidate, dialer, username, self._password, self._context,
                      min(self._attempt_timeout, remaining))
                return "ok", ""
            except (Exception, Cancelled) as exc:
                outcome, detail = outcome_of(exc, self._password)
            finally:
                with self._lock:
                    self._dialers.discard(dialer)
                dialer.close()
            if outcome != "unreachable":
                break  # only a refused connect is worth trying the host's next address for
        return outcome, detail


def _login_function(candidate: Candidate) -> _Login:
    if candidate.role == "outgoing":
        return login_smtp
    return login_imap if candidate.protocol is MailProtocol.IMAP else login_pop3


def _resolve_failure(exc: Exception) -> tuple[Outcome, str]:
    if isinstance(exc, PrivateAddress):
        return "private-address", "the host resolves to a non-public address"
    if isinstance(exc, (NoSuchHost, socket.gaierror)):
        return "no-such-host", "the host name does not exist"
    if isinstance(exc, TimeoutError):  # dns.DnsTimeout included
        return "timeout", "the host name lookup timed out"
    if isinstance(exc, AttemptFailed):
        return exc.outcome, exc.detail
    if isinstance(exc, DnsError):
        return "no-such-host", "the host name lookup failed"
    return "no-such-host", f"the host name lookup failed ({type(exc).__name__})"


class _FunctionResolver:
    """A plain host -> addresses function as an AddressResolver (IP literals are returned as is)."""

    def __init__(self, resolve: Resolve) -> None:
        self._resolve = resolve

    def addresses(self, host: str, *, timeout: float | None = None) -> list[str]:
        try:
            return [str(ipaddress.ip_address(host.strip("[]")))]
        except ValueError:
            return list(self._resolve(host))
