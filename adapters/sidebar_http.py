"""Live records of HTTP sidebar sources (DESIGN 7): the filled URL fetched with a time limit, a size
cap, verified TLS, public addresses only (unless MAILROOM_ALLOW_PRIVATE_HOSTS=1) and at most three
redirects, each checked the same way. Answers, errors included, are kept `ttl` seconds, and
concurrent fetches of one URL (with the same auth header) share one request.

The host is resolved and checked first, and the request goes to the checked address itself (the
name travels in the Host header and, for https, as the TLS server name that the certificate must
match), so a name that resolves to something else a moment later (DNS rebinding) changes nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from adapters.discovery.addresses import is_public
from adapters.mailserver import tls_context
from adapters.sidebar.records import FetchedRecord, SourceError, parse_records
from adapters.sidebar.template import PLACEHOLDERS, check_template, fill_template

__all__ = ["PLACEHOLDERS", "FetchedRecord", "SidebarFetcher", "SourceError", "check_template", "fill_template"]

log = logging.getLogger("mailroom.sidebar")

Auth = tuple[str, str] | None
Outcome = tuple[FetchedRecord, ...] | str  # the records, or why there are none
MAX_REDIRECTS = 3
MAX_CACHED = 10_000
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


def system_resolve(host: str) -> list[str]:
    """The addresses of `host`, from the system resolver (blocking: called in a worker thread)."""
    return list(dict.fromkeys(str(info[4][0]) for info in socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)))


@dataclass
class _LoopState:
    """What belongs to one event loop: its HTTP clients and its requests in flight."""

    clients: dict[str, httpx.AsyncClient] = field(default_factory=dict)
    inflight: dict[str, asyncio.Task[Outcome]] = field(default_factory=dict)


class SidebarFetcher:
    def __init__(self, *, allow_private: bool, extra_ca_file: str | None = None, timeout: float = 3.0,
                 ttl: float = 30.0, max_bytes: int = 1_000_000,
                 resolve: Callable[[str], list[str]] | None = None) -> None:
        self.allow_private = allow_private
        self.timeout = timeout
        self.ttl = ttl
        self.max_bytes = max_bytes
        self.requests_made = 0  # HTTP requests sent (each redirect hop counts)
        self._resolve = resolve or system_resolve
        self._tls = tls_context(extra_ca_file)
        self._lock = threading.Lock()  # the cache, the counter and the per-loop table: loops run in several threads
        self._cache: dict[str, tuple[float, Outcome]] = {}
        self._loops: dict[asyncio.AbstractEventLoop, _LoopState] = {}

    async def fetch(self, url: str, auth_header: Auth = None) -> list[FetchedRecord]:
        """The records at `url`; raises SourceError with a short message for anything that fails."""
        outcome = await self._outcome(url, auth_header)
        if isinstance(outcome, str):
            raise SourceError(outcome)
        return list(outcome)

    async def fetch_all(self, requests: list[tuple[str, Auth]]) -> list[list[FetchedRecord] | SourceError]:
        """Every (url, auth header) fetched concurrently; the answers in the same order."""
        outcomes = await asyncio.gather(*(self._outcome(url, auth) for url, auth in requests))
        return [SourceError(o) if isinstance(o, str) else list(o) for o in outcomes]

    async def aclose(self) -> None:
        """Closes the HTTP clients of the running loop (those of closed loops are dropped as found)."""
        with self._lock:
            state = self._loops.pop(asyncio.get_running_loop(), None)
        for client in state.clients.values() if state else ():
            await client.aclose()

    async def _outcome(self, url: str, auth: Auth) -> Outcome:
        key = hashlib.sha256("\0".join([url, *(auth or ())]).encode("utf-8", "surrogatepass")).hexdigest()
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        state = self._state()
        task = state.inflight.get(key)
        if task is None:  # no await since the cache was read: the first caller starts it, the others join
            task = asyncio.get_running_loop().create_task(self._fetch_and_keep(key, url, auth, state))
            state.inflight[key] = task
        return await asyncio.shield(task)  # a caller that gives up does not cancel the others' request

    def _state(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        with self._lock:
            for closed in [other for other in self._loops if other.is_closed()]:
                del self._loops[closed]
            return self._loops.setdefault(loop, _LoopState())

    async def _fetch_and_keep(self, key: str, url: str, auth: Auth, state: _LoopState) -> Outcome:
        try:
            outcome = await self._fetch_once(url, auth, state)
            with self._lock:
                self._cache[key] = (time.monotonic() + self.ttl, outcome)
                if len(self._cache) > MAX_CACHED:
                    now = time.monotonic()
                    for old in [k for k, (expiry, _) in self._cache.items() if expiry <= now]:
                        del self._cache[old]
                    while len(self._cache) > MAX_CACHED:
                        del self._cache[next(iter(self._cache))]
            return outcome
        finally:
            state.inflight.pop(key, None)

    async def _fetch_once(self, url: str, auth: Auth, state: _LoopState) -> Outcome:
        host = "the source"
        try:
            host = httpx.URL(url).host or host
            async with asyncio.timeout(self.timeout):
                return tuple(await self._follow(url, auth, state))
        except SourceError as error:
            message = error.message
        except (TimeoutError, httpx.TimeoutException):
            message = f"{host} did not answer within {self.timeout:g} s"
        except httpx.InvalidURL:
            message = "not a valid URL"
        except httpx.HTTPError as error:
            message = _network_message(host, error)
        except Exception as error:  # never out of the fetcher: the section shows it instead
            log.warning("sidebar fetch from %s failed: %s", host, type(error).__name__)
            message = f"fetching from {host} failed"
        log.info("sidebar source at %s: %s", host, message)  # the host only: the URL holds customer data
        return message

    async def _follow(self, url: str, auth: Auth, state: _LoopState) -> list[FetchedRecord]:
        first = httpx.URL(url)
        current = first
        for _ in range(MAX_REDIRECTS + 1):
            if current.scheme not in ("http", "https") or not current.host:
                raise SourceError("only http:// and https:// URLs can be fetched")
            ip = await self._checked_address(current.host)
            same_origin = (current.scheme, current.host, current.port) == (first.scheme, first.host, first.port)
            status, location, body = await self._get(state, current, ip, auth if same_origin else None)
            if status in _REDIRECT_STATUSES:
                if not location:
                    raise SourceError(f"{current.host} answered HTTP {status} without a Location")
                current = current.join(location).copy_with(fragment=None)
                continue
            if not 200 <= status < 300:
                raise SourceError(f"{current.host} answered HTTP {status}")
            return parse_records(body)
        raise SourceError(f"more than {MAX_REDIRECTS} redirects")

    async def _checked_address(self, host: str) -> str:
        try:
            addresses = [str(ipaddress.ip_address(host))]
        except ValueError:
            try:
                addresses = await asyncio.to_thread(self._resolve, host)
            except OSError:
                addresses = []
        if not addresses:
            raise SourceError(f"{host}: no such host")
        if not self.allow_private and not all(is_public(address) for address in addresses):
            raise SourceError(f"refused: {host} is not a public address")
        return addresses[0]

    async def _get(self, state: _LoopState, url: httpx.URL, ip: str, auth: Auth) -> tuple[int, str | None, bytes]:
        """One GET of `url` sent to `ip`: the status, the Location of a redirect, the body of a 2xx."""
        name = url.raw_host.decode("ascii")
        name = f"[{name}]" if ":" in name else name  # an IPv6 literal, as the Host header writes it
        port = url.port or (443 if url.scheme == "https" else 80)
        literal = ":" in ip
        target = f"{url.scheme}://{f'[{ip}]' if literal else ip}:{port}{url.raw_path.decode('ascii')}"
        headers = {"Host": name if url.port is None else f"{name}:{port}", "Accept": "application/json"}
        if auth is not None:
            headers[auth[0]] = auth[1]
        pinned_name = url.scheme == "https" and name.strip("[]") != ip
        client = self._client(state, name if url.scheme == "https" else "")
        with self._lock:
            self.requests_made += 1
        extensions = {"sni_hostname": name} if pinned_name else {}
        async with client.stream("GET", target, headers=headers, extensions=extensions) as response:
            if response.status_code in _REDIRECT_STATUSES:
                return response.status_code, response.headers.get("location"), b""
            if not 200 <= response.status_code < 300:
                return response.status_code, None, b""
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > self.max_bytes:
                raise SourceError(f"the answer is larger than {self.max_bytes:,} bytes")
            body = bytearray()
            async for chunk in response.aiter_bytes():  # decoded bytes: a compressed bomb is cut off too
                body += chunk
                if len(body) > self.max_bytes:
                    raise SourceError(f"the answer is larger than {self.max_bytes:,} bytes")
            return response.status_code, None, bytes(body)

    def _client(self, state: _LoopState, tls_name: str) -> httpx.AsyncClient:
        # One client per TLS server name: a pooled connection is found by (scheme, IP, port) alone,
        # so a connection whose certificate was checked for one name must not carry another's requests.
        client = state.clients.get(tls_name)
        if client is None:
            client = state.clients[tls_name] = httpx.AsyncClient(
                verify=self._tls, trust_env=False, follow_redirects=False, timeout=self.timeout,
                limits=httpx.Limits(max_connections=50, max_keepalive_connections=10))
        return client


def _network_message(host: str, error: httpx.HTTPError) -> str:
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"{host}: TLS certificate not accepted ({cause.verify_message})"
        if isinstance(cause, ssl.SSLError):
            return f"{host}: TLS handshake failed"
        cause = cause.__cause__ or cause.__context__
    if isinstance(error, httpx.ConnectError):
        return f"could not connect to {host}"
    return f"{host}: the connection failed ({type(error).__name__})"
