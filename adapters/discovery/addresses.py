"""Which addresses settings discovery may connect to (and send a password to).

Only public unicast addresses, unless MAILROOM_ALLOW_PRIVATE_HOSTS=1: a domain whose SRV records,
autoconfig or redirects point at 127.0.0.1, 10.x, 169.254.169.254 (cloud metadata) and the like
must not make mailroom connect there. Connect to the addresses `allowed` returns, not to the host
name again (a second lookup could answer differently).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Protocol

from adapters.discovery.dns import NoSuchHost

__all__ = ["AddressResolver", "NoSuchHost", "PrivateAddress", "allowed", "is_public"]

_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_EXTRA_V4 = tuple(ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "198.18.0.0/15", "198.51.100.0/24",
    "203.0.113.0/24", "240.0.0.0/4", "255.255.255.255/32"))
_EXTRA_V6 = tuple(ipaddress.ip_network(n) for n in (
    "::/128", "::1/128", "::ffff:0:0/96", "::/96", "100::/64", "2001:db8::/32", "2001:10::/28", "2001:20::/28",
    "fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8", "3fff::/20", "5f00::/16"))


def is_public(ip: str) -> bool:
    """A globally routable unicast address. False for loopback, private (RFC 1918, ULA),
    link-local (169.254/16 with the metadata service, fe80::/10), CGNAT 100.64/10, multicast,
    reserved, unspecified, documentation ranges, and IPv6 forms embedding a non-public IPv4
    address (IPv4-mapped/-compatible, NAT64, 6to4, Teredo). Not an IP address: False."""
    try:
        address = ipaddress.ip_address(ip.strip().strip("[]").split("%")[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_v4(address)
        if embedded is not None:
            return _public_v4(embedded)
        return _public_v6(address)
    return _public_v4(address)


def _public_v4(address: ipaddress.IPv4Address) -> bool:
    return not (
        address.is_private or address.is_loopback or address.is_link_local or address.is_multicast
        or address.is_reserved or address.is_unspecified or address in _CGNAT
        or any(address in network for network in _EXTRA_V4)
        or not address.is_global)


def _public_v6(address: ipaddress.IPv6Address) -> bool:
    return not (
        address.is_private or address.is_loopback or address.is_link_local or address.is_multicast
        or address.is_reserved or address.is_unspecified or address.is_site_local
        or any(address in network for network in _EXTRA_V6)
        or not address.is_global)


def _embedded_v4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]  # the client's address; the server part is public anyway
    if any(address in network for network in _NAT64):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if int(address) >> 32 == 0 and int(address) > 1:  # IPv4-compatible ::a.b.c.d (deprecated)
        return ipaddress.IPv4Address(int(address))
    return None


class PrivateAddress(Exception):
    """The host resolves to an address discovery may not connect to."""

    def __init__(self, host: str, addresses: list[str]) -> None:
        super().__init__(f"{host} resolves to a non-public address")
        self.host = host
        self.addresses = addresses


class AddressResolver(Protocol):
    """Anything with dns.Resolver.addresses."""

    def addresses(self, host: str, *, timeout: float | None = None) -> list[str]: ...


def allowed(
    host: str,
    resolver: AddressResolver,
    allow_private: bool,
    *,
    timeout: float | None = None,
    public: Callable[[str], bool] = is_public,
) -> list[str]:
    """The addresses of `host` to connect to. PrivateAddress when any of them is not public and
    private hosts are not allowed (the whole host is refused: a mix is no better than the worst of
    it); NoSuchHost (or another DnsError) from the lookup. `public` is the test for one address
    (tests substitute one that admits their loopback server)."""
    addresses = resolver.addresses(host, timeout=timeout)
    if not addresses:
        raise NoSuchHost(host)
    if not allow_private and not all(public(a) for a in addresses):
        raise PrivateAddress(host, [a for a in addresses if not public(a)])
    return addresses
