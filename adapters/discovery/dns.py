"""DNS for settings discovery: SRV, MX and address lookups through dnspython, with short timeouts.

The name servers are `MAILROOM_DNS_SERVERS` (`settings.dns_servers`: comma-separated HOST or
HOST:PORT, a bare IPv6 address has no port) when set, else the system's (/etc/resolv.conf).
Address lookups fall back to the system resolver (`socket.getaddrinfo`, so /etc/hosts) when the
DNS servers know nothing of a name, so `localhost` and hosts-file names resolve.

Errors: `NoSuchHost` (NXDOMAIN: the name does not exist), `DnsTimeout` (no answer in time),
`DnsError` (their base: SERVFAIL, no usable server, malformed answers...).
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from typing import Any

import dns.exception
import dns.name
import dns.rdatatype
import dns.resolver

DNS_TIMEOUT = 3.0  # seconds for one lookup (all servers and retries together)
# The system resolver is asked only after the DNS servers said the name does not exist, for names
# from the hosts file (which answer at once): it gets little time, it is only going to ask DNS again.
FALLBACK_TIMEOUT = 1.0


class DnsError(Exception):
    """A lookup failed (the name's existence is unknown)."""


class NoSuchHost(DnsError):
    """The name does not exist (NXDOMAIN), or has no address at all."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no such host: {name}")
        self.name = name


class DnsTimeout(DnsError, TimeoutError):
    """No answer in time."""


def parse_servers(spec: str | None) -> list[tuple[str, int]]:
    """`MAILROOM_DNS_SERVERS` as (IP, port) pairs; a HOST that is not an IP address is resolved
    once with the system resolver. Empty or None: []."""
    servers: list[tuple[str, int]] = []
    for item in (spec or "").split(","):
        item = item.strip()
        if not item:
            continue
        port = 53
        if item.startswith("[") and "]" in item:  # [v6]:port
            host, _, rest = item[1:].partition("]")
            if rest.startswith(":") and rest[1:].isdigit():
                port = int(rest[1:])
        elif item.count(":") == 1:
            host, _, port_text = item.partition(":")
            port = int(port_text)
        else:
            host = item
        try:
            ipaddress.ip_address(host)
            servers.append((host, port))
        except ValueError:
            for info in socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM):
                servers.append((str(info[4][0]), port))
    return servers


class Resolver:
    """Lookups with a per-call timeout (`timeout=` caps it further, e.g. to what is left of a
    deadline). `servers`: (IP, port) pairs; None: the system's name servers."""

    def __init__(self, servers: list[tuple[str, int]] | None = None, *, timeout: float = DNS_TIMEOUT) -> None:
        self.timeout = timeout
        self.servers = list(servers or [])
        if self.servers:
            resolver = dns.resolver.Resolver(configure=False)
            resolver.nameservers = [ip for ip, _ in self.servers]
            resolver.nameserver_ports = {ip: port for ip, port in self.servers}
        else:
            try:
                resolver = dns.resolver.Resolver()
            except dns.resolver.NoResolverConfiguration:
                resolver = dns.resolver.Resolver(configure=False)
                resolver.nameservers = ["127.0.0.1"]
        resolver.timeout = min(timeout, 2.0)  # per server try; `lifetime` bounds the whole lookup
        resolver.lifetime = timeout
        resolver.retry_servfail = False
        self._resolver = resolver

    @classmethod
    def from_settings(cls, settings: Any, *, timeout: float = DNS_TIMEOUT) -> Resolver:
        """From `settings.dns_servers` (adapters.settings.Settings)."""
        return cls(parse_servers(getattr(settings, "dns_servers", None)) or None, timeout=timeout)

    # -- lookups ---------------------------------------------------------------------------

    def srv(self, name: str, *, timeout: float | None = None) -> list[tuple[int, int, int, str]]:
        """(priority, weight, port, target) for `name` (e.g. "_imaps._tcp.example.com"), by priority,
        then weight (heaviest first). The target has no trailing dot; "." (not offered) stays ".".
        No records: []."""
        answer = self._query(name, "SRV", timeout)
        records = []
        for rr in answer:
            target = rr.target.to_text(omit_final_dot=True) if rr.target != dns.name.root else "."
            records.append((int(rr.priority), int(rr.weight), int(rr.port), target or "."))
        records.sort(key=lambda r: (r[0], -r[1], r[3], r[2]))
        return records

    def mx(self, domain: str, *, timeout: float | None = None) -> list[str]:
        """MX hosts of `domain` by preference (lowest first), without trailing dots; a null MX
        ("." — RFC 7505) is left out. No records: []."""
        answer = self._query(domain, "MX", timeout)
        hosts = sorted(
            (int(rr.preference), rr.exchange.to_text(omit_final_dot=True).lower()) for rr in answer)
        return [host for _, host in hosts if host and host != "."]

    def addresses(self, host: str, *, timeout: float | None = None) -> list[str]:
        """IPv4 then IPv6 addresses of `host` (an IP literal is returned as is). NoSuchHost when
        neither the DNS servers nor the system resolver know the name."""
        host = host.strip().rstrip(".")
        literal = _ip_literal(host)
        if literal is not None:
            return [literal]
        if not host:
            raise NoSuchHost(host)
        limit = self._limit(timeout)
        stop = time.monotonic() + limit
        found: list[str] = []
        missing = 0
        errors: list[DnsError] = []
        for rdtype in ("A", "AAAA"):
            try:
                answer = self._query(host, rdtype, max(0.05, stop - time.monotonic()))
            except NoSuchHost:
                missing += 1
                break  # NXDOMAIN holds for every type
            except DnsError as exc:
                errors.append(exc)
                continue
            if not answer:
                missing += 1
            found.extend(rr.address for rr in answer)
        if found:
            return list(dict.fromkeys(found))
        if errors and not missing:
            raise errors[0]
        # The DNS servers know nothing of it: the system resolver (hosts file) may.
        system = _getaddrinfo(host, max(0.05, min(FALLBACK_TIMEOUT, stop - time.monotonic())))
        if system:
            return system
        if errors:
            raise errors[0]
        raise NoSuchHost(host)

    # -- internals ---------------------------------------------------------------------------

    def _limit(self, timeout: float | None) -> float:
        return self.timeout if timeout is None else max(0.05, min(timeout, self.timeout))

    def _query(self, name: str, rdtype: str, timeout: float | None) -> list[Any]:
        try:
            answer = self._resolver.resolve(
                name, rdtype, search=False, lifetime=self._limit(timeout), raise_on_no_answer=False)
        except dns.resolver.NXDOMAIN as exc:
            raise NoSuchHost(name) from exc
        except dns.exception.Timeout as exc:
            raise DnsTimeout(f"no DNS answer for {name} {rdtype} in time") from exc
        except (dns.resolver.NoNameservers, dns.resolver.NoAnswer) as exc:
            raise DnsError(f"DNS lookup of {name} {rdtype} failed") from exc
        except (dns.exception.DNSException, ValueError, OSError) as exc:
            raise DnsError(f"DNS lookup of {name} {rdtype} failed: {exc.__class__.__name__}") from exc
        if answer.rrset is None:
            return []
        return [rr for rr in answer.rrset if rr.rdtype == dns.rdatatype.from_text(rdtype)]


def _ip_literal(host: str) -> str | None:
    text = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def _getaddrinfo(host: str, timeout: float) -> list[str]:
    """socket.getaddrinfo in a daemon thread, given up after `timeout` (it has no timeout of its
    own); nothing found or no answer in time: []."""
    result: list[str] = []

    def lookup() -> None:
        try:
            infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
        except (OSError, UnicodeError):
            return
        v4 = [str(i[4][0]) for i in infos if i[0] == socket.AF_INET]
        v6 = [str(i[4][0]).split("%")[0] for i in infos if i[0] == socket.AF_INET6]
        result.extend(dict.fromkeys(v4 + v6))

    thread = threading.Thread(target=lookup, name="mailroom-getaddrinfo", daemon=True)
    thread.start()
    thread.join(timeout)
    return list(result) if not thread.is_alive() else []
