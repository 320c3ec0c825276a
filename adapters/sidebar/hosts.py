"""Which addresses an HTTP sidebar source may reach: public ones only, unless
MAILROOM_ALLOW_PRIVATE_HOSTS=1. (A small check of our own: adapters/discovery/addresses.py did not
exist yet when this was written.)"""

from __future__ import annotations

import ipaddress

_CGNAT = ipaddress.IPv4Network("100.64.0.0/10")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def is_public(ip: str) -> bool:
    """True for a globally routable unicast address. False for loopback, private, link-local
    (which holds the 169.254.169.254 metadata service), CGNAT, unspecified, multicast, reserved,
    documentation ranges, and IPv6 forms that carry one of those in an IPv4 address inside
    (IPv4-mapped, NAT64, 6to4, Teredo). Not an address at all: False."""
    try:
        address = ipaddress.ip_address(ip.split("%", 1)[0])  # a scope id (fe80::1%eth0) is link-local anyway
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is None and address.teredo is not None:
            embedded = address.teredo[1]
        if embedded is not None and not is_public(str(embedded)):
            return False
        if address.ipv4_mapped is not None:
            return True  # the mapped IPv4 address was public; ::ffff:0:0/96 itself is "reserved"
    if isinstance(address, ipaddress.IPv4Address) and address in _CGNAT:
        return False
    return address.is_global and not (
        address.is_loopback or address.is_private or address.is_link_local or address.is_multicast
        or address.is_reserved or address.is_unspecified
    )
