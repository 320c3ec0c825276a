"""Which addresses settings discovery may connect to (adapters/discovery/addresses.py)."""

from __future__ import annotations

import pytest

from adapters.discovery.addresses import PrivateAddress, allowed, is_public
from adapters.discovery.dns import NoSuchHost

PUBLIC = [
    "8.8.8.8", "1.1.1.1", "142.250.1.1", "2606:4700:4700::1111", "2001:4860:4860::8888",
    "::ffff:8.8.8.8",  # IPv4-mapped form of a public address
    "64:ff9b::808:808",  # NAT64 of a public address
]
NOT_PUBLIC = [
    "127.0.0.1", "127.1.2.3", "0.0.0.0", "10.0.0.1", "172.16.5.4", "172.31.255.255", "192.168.1.1",
    "169.254.169.254",  # cloud metadata
    "169.254.0.1", "100.64.0.1", "100.127.255.254",  # CGNAT
    "192.0.0.8", "192.0.2.10", "198.18.0.1", "198.51.100.7", "203.0.113.9",  # special and documentation
    "224.0.0.1", "239.255.255.250", "240.0.0.1", "255.255.255.255",
    "::", "::1", "fe80::1", "fe80::1%eth0", "fc00::1", "fd00:ec2::254", "fec0::1", "ff02::1", "2001:db8::1",
    "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254",  # IPv4-mapped
    "::127.0.0.1",  # IPv4-compatible
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "2002:7f00:1::1", "2002:a00:1::1",  # 6to4 of 127.0.0.1 / 10.0.0.1
    "not-an-ip", "", "2130706433", "0x7f.0.0.1", "127.1",  # not IP literals: never "public"
]


@pytest.mark.parametrize("ip", PUBLIC)
def test_public(ip: str) -> None:
    assert is_public(ip)


@pytest.mark.parametrize("ip", NOT_PUBLIC)
def test_not_public(ip: str) -> None:
    assert not is_public(ip)


class FakeResolver:
    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table

    def addresses(self, host: str, *, timeout: float | None = None) -> list[str]:
        if host not in self.table:
            raise NoSuchHost(host)
        return self.table[host]


RESOLVER = FakeResolver({
    "public.example": ["8.8.8.8", "2001:4860:4860::8888"],
    "mixed.example": ["8.8.8.8", "10.0.0.1"],
    "metadata.example": ["169.254.169.254"],
    "empty.example": [],
})


def test_allowed_returns_the_addresses_to_connect_to() -> None:
    assert allowed("public.example", RESOLVER, False) == ["8.8.8.8", "2001:4860:4860::8888"]


@pytest.mark.parametrize("host", ["mixed.example", "metadata.example"])
def test_any_private_address_refuses_the_host(host: str) -> None:
    with pytest.raises(PrivateAddress) as refused:
        allowed(host, RESOLVER, False)
    assert refused.value.host == host


def test_private_addresses_when_allowed() -> None:
    assert allowed("mixed.example", RESOLVER, True) == ["8.8.8.8", "10.0.0.1"]


@pytest.mark.parametrize("host", ["nowhere.example", "empty.example"])
def test_no_such_host(host: str) -> None:
    with pytest.raises(NoSuchHost):
        allowed(host, RESOLVER, False)


def test_an_address_test_can_be_substituted() -> None:
    assert allowed("metadata.example", RESOLVER, False, public=lambda ip: ip == "169.254.169.254")
