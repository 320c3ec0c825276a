"""Where settings discovery finds candidate servers, in this order: the provider table (by the
address's domain, then by its MX hosts), autoconfig XML, RFC 6186 SRV records, guesses on the
MX host's domain (source "mx") and guesses on the address's domain (source "guess").

The lookups run in parallel threads within the caller's deadline; what has not answered by then
is left out. Every candidate host is then resolved (also in parallel): one that does not exist
comes back with refused="no-such-host", one with a non-public address (unless private hosts are
allowed) with refused="private-address", an SRV record whose target is "." with
refused="not-offered", so that all of them are reported without a connection being made.
"""

from __future__ import annotations

import concurrent.futures
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Protocol

from adapters.discovery import providers
from adapters.discovery.addresses import PrivateAddress, allowed, is_public
from adapters.discovery.dns import DNS_TIMEOUT, DnsError, NoSuchHost
from adapters.discovery.model import Candidate, Outcome, Role, Source
from domain.values import MailProtocol, TransportSecurity

log = logging.getLogger(__name__)

TLS, STARTTLS = TransportSecurity.TLS, TransportSecurity.STARTTLS
IMAP, POP3 = MailProtocol.IMAP, MailProtocol.POP3
SOURCE_ORDER: tuple[Source, ...] = ("provider-table", "autoconfig", "srv", "mx", "guess")

# RFC 6186 (and RFC 8314 for submissions): service label -> (role, protocol, security).
# _imap and _pop3 may be plaintext or STARTTLS: only STARTTLS is ever tried.
SRV_SERVICES: tuple[tuple[str, Role, MailProtocol | None, TransportSecurity], ...] = (
    ("_imaps._tcp", "incoming", IMAP, TLS),
    ("_imap._tcp", "incoming", IMAP, STARTTLS),
    ("_pop3s._tcp", "incoming", POP3, TLS),
    ("_pop3._tcp", "incoming", POP3, STARTTLS),
    ("_submissions._tcp", "outgoing", None, TLS),
    ("_submission._tcp", "outgoing", None, STARTTLS),
)

# Guesses, per base domain: (prefix, role, protocol, port, security); plaintext never.
GUESSES: tuple[tuple[str, Role, MailProtocol | None, int, TransportSecurity], ...] = (
    ("imap", "incoming", IMAP, 993, TLS),
    ("mail", "incoming", IMAP, 993, TLS),
    ("imap", "incoming", IMAP, 143, STARTTLS),
    ("mail", "incoming", IMAP, 143, STARTTLS),
    ("pop", "incoming", POP3, 995, TLS),
    ("pop3", "incoming", POP3, 995, TLS),
    ("mail", "incoming", POP3, 995, TLS),
    ("pop", "incoming", POP3, 110, STARTTLS),
    ("pop3", "incoming", POP3, 110, STARTTLS),
    ("mail", "incoming", POP3, 110, STARTTLS),
    ("smtp", "outgoing", None, 465, TLS),
    ("mail", "outgoing", None, 465, TLS),
    ("smtp", "outgoing", None, 587, STARTTLS),
    ("mail", "outgoing", None, 587, STARTTLS),
)


class DiscoveryResolver(Protocol):
    def srv(self, name: str, *, timeout: float | None = None) -> list[tuple[int, int, int, str]]: ...
    def mx(self, domain: str, *, timeout: float | None = None) -> list[str]: ...
    def addresses(self, host: str, *, timeout: float | None = None) -> list[str]: ...


class AutoconfigSource(Protocol):
    def candidates(self, address: str, *, allow_private: bool | None = None,
                   deadline: float | None = None) -> list[Candidate]: ...


def find_candidates(
    address: str,
    *,
    resolver: DiscoveryResolver,
    autoconfig: AutoconfigSource | None,
    allow_private: bool,
    deadline: float,
    public: Callable[[str], bool] = is_public,
) -> list[Candidate]:
    """Candidates for `address` in source order (provider-table, autoconfig, srv, mx, guess),
    within each source incoming before outgoing, IMAP before POP3, implicit TLS before STARTTLS;
    de-duplicated by (role, protocol, host, port, security), the first kept; usernames default to
    (address, local part). Returns by `deadline` (time.monotonic()) whatever the network does."""
    address = address.strip()
    local, _, domain = address.rpartition("@")
    try:  # an internationalised domain as DNS knows it (A-labels)
        domain = domain.strip().lower().rstrip(".").encode("idna").decode("ascii")
    except UnicodeError:
        return []
    defaults = tuple(dict.fromkeys(u for u in (address, local) if u))
    if not domain:
        return []
    start = time.monotonic()
    # Leave part of the time for resolving the candidates' hosts.
    reserve = min(DNS_TIMEOUT, max(0.0, deadline - start) * 0.3)
    lookups_end = deadline - reserve

    found: dict[Source, list[Candidate]] = {source: [] for source in SOURCE_ORDER}
    found["provider-table"].extend(providers.by_domain(domain, address=address))

    pool = concurrent.futures.ThreadPoolExecutor(max_workers=48, thread_name_prefix="mailroom-discovery")
    try:
        mx_future = pool.submit(_quiet, resolver.mx, domain, timeout=_left(lookups_end))
        srv_futures = [pool.submit(_quiet, resolver.srv, f"{label}.{domain}", timeout=_left(lookups_end))
                       for label, *_ in SRV_SERVICES]
        autoconfig_future = (pool.submit(_quiet, autoconfig.candidates, address, allow_private=allow_private,
                                         deadline=lookups_end) if autoconfig is not None else None)
        futures: list[concurrent.futures.Future[Any]] = [mx_future, *srv_futures]
        if autoconfig_future is not None:
            futures.append(autoconfig_future)
        concurrent.futures.wait(futures, timeout=_left(lookups_end))

        mx_hosts: list[str] = _result(mx_future) or []
        if mx_hosts:
            found["provider-table"].extend(providers.by_mx(mx_hosts, address=address))
            if providers.match_mx(mx_hosts) is None:
                base = _parent(mx_hosts[0])
                if base and base != domain:
                    found["mx"].extend(_guesses(base, "mx"))
        if autoconfig_future is not None:
            found["autoconfig"].extend(_result(autoconfig_future) or [])
        for (label, role, protocol, security), future in zip(SRV_SERVICES, srv_futures, strict=True):
            for _priority, _weight, port, target in _result(future) or []:
                if target == ".":
                    found["srv"].append(Candidate("srv", role, protocol, f"{label}.{domain}", port, security,
                                                  refused="not-offered"))
                elif 0 < port < 65536:
                    found["srv"].append(Candidate("srv", role, protocol, target.lower(), port, security))
        found["guess"].extend(_guesses(domain, "guess"))

        candidates = _ordered(found, defaults)
        return _check_hosts(candidates, resolver, allow_private, deadline, public, pool)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _left(end: float) -> float:
    return max(0.05, end - time.monotonic())


def _quiet(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """The call's result, or None when it failed (a source that fails offers nothing)."""
    try:
        return function(*args, **kwargs)
    except NoSuchHost:
        return None
    except DnsError as exc:
        log.info("discovery lookup failed: %s", exc)
        return None
    except Exception:
        log.warning("discovery lookup failed", exc_info=True)
        return None


def _result(future: concurrent.futures.Future[Any]) -> Any:
    return future.result() if future.done() and not future.cancelled() else None


def _parent(host: str) -> str:
    """mx1.mail.example.net -> mail.example.net: the MX host without its first label ('' when
    that leaves a single label)."""
    parent = host.lower().rstrip(".").partition(".")[2]
    return parent if "." in parent else ""


def _guesses(base: str, source: Source) -> list[Candidate]:
    return [Candidate(source, role, protocol, f"{prefix}.{base}", port, security)
            for prefix, role, protocol, port, security in GUESSES]


def _rank(candidate: Candidate) -> tuple[int, int, int]:
    return (0 if candidate.role == "incoming" else 1,
            0 if candidate.protocol in (IMAP, None) else 1,
            0 if candidate.security is TLS else 1)


def _ordered(found: dict[Source, list[Candidate]], defaults: tuple[str, ...]) -> list[Candidate]:
    seen: set[tuple[object, ...]] = set()
    ordered: list[Candidate] = []
    for source in SOURCE_ORDER:
        for candidate in sorted(found[source], key=_rank):  # stable: each source's own order within a rank
            key = (candidate.role, candidate.protocol, candidate.host, candidate.port, candidate.security)
            if key in seen:
                continue
            seen.add(key)
            ordered.append(candidate if candidate.usernames else replace(candidate, usernames=defaults))
    return ordered


def _check_hosts(candidates: list[Candidate], resolver: DiscoveryResolver, allow_private: bool, deadline: float,
                 public: Callable[[str], bool], pool: concurrent.futures.ThreadPoolExecutor) -> list[Candidate]:
    """Resolve every host once, in parallel; mark the ones that do not exist or are not allowed.
    A host whose lookup fails otherwise or does not finish in time is left for the prober."""
    hosts = list(dict.fromkeys(c.host for c in candidates if c.refused is None))
    timeout = min(DNS_TIMEOUT, _left(deadline))
    futures = {host: pool.submit(_verdict, host, resolver, allow_private, timeout, public) for host in hosts}
    concurrent.futures.wait(futures.values(), timeout=_left(deadline))
    verdicts: dict[str, Outcome | None] = {host: _result(future) for host, future in futures.items()}
    return [replace(c, refused=verdicts[c.host]) if c.refused is None and verdicts.get(c.host) else c
            for c in candidates]


def _verdict(host: str, resolver: DiscoveryResolver, allow_private: bool, timeout: float,
             public: Callable[[str], bool]) -> Outcome | None:
    try:
        allowed(host, resolver, allow_private, timeout=timeout, public=public)
    except PrivateAddress:
        return "private-address"
    except NoSuchHost:
        return "no-such-host"
    except Exception:
        return None
    return None
