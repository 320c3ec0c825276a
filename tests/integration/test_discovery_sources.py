"""Candidate sources for settings discovery (adapters/discovery/sources.py) against a real DNS
server (dnslib, tests/dns_server.py) and a real HTTPS autoconfig server on loopback.

Addresses in 192.0.2.0/24 stand for public servers here (`public=` treats them as public; no
connection is ever made by find_candidates). The autoconfig client is pointed at the loopback
HTTPS server with `port=` and a client SSL context trusting its CA, and admits 127.0.0.1 (only
that address) as if it were public, so that allow_private=False can be exercised on redirects."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from adapters.discovery.addresses import is_public
from adapters.discovery.autoconfig import Autoconfig
from adapters.discovery.dns import NoSuchHost, Resolver, parse_servers
from adapters.discovery.model import Candidate
from adapters.discovery.sources import find_candidates
from domain.values import MailProtocol, TransportSecurity
from tests.discovery_fixture import AutoconfigServer
from tests.dns_server import DnsServer

TLS, STARTTLS = TransportSecurity.TLS, TransportSecurity.STARTTLS
IMAP, POP3 = MailProtocol.IMAP, MailProtocol.POP3
AUTOCONFIG_PATH = "/mail/config-v1.1.xml"
WELL_KNOWN_PATH = "/.well-known/autoconfig/mail/config-v1.1.xml"


def test_net(ip: str) -> bool:
    """192.0.2.0/24 stands in for public addresses in these tests."""
    return ip.startswith("192.0.2.") or is_public(ip)


test_net.__test__ = False  # type: ignore[attr-defined]


def server_or_test_net(ip: str) -> bool:
    """For the autoconfig client: the loopback test server's 127.0.0.1, and test_net."""
    return ip == "127.0.0.1" or test_net(ip)


@pytest.fixture
def dns(dns_server: DnsServer) -> DnsServer:
    dns_server.clear()
    return dns_server


@pytest.fixture
def web(autoconfig_server: AutoconfigServer) -> AutoconfigServer:
    autoconfig_server.reset()
    return autoconfig_server


@pytest.fixture
def resolver(dns: DnsServer) -> Resolver:
    return Resolver(parse_servers(dns.spec))


@pytest.fixture
def autoconfig(resolver: Resolver, web: AutoconfigServer) -> Autoconfig:
    return Autoconfig(resolver, port=web.port, ssl_context=web.client_context(check_hostname=False),
                      public=server_or_test_net)


Find = Callable[..., list[Candidate]]


@pytest.fixture
def find(resolver: Resolver, autoconfig: Autoconfig) -> Find:
    def run(address: str, *, allow_private: bool = False, seconds: float = 8.0,
            public: Callable[[str], bool] = test_net) -> list[Candidate]:
        return find_candidates(address, resolver=resolver, autoconfig=autoconfig, allow_private=allow_private,
                               deadline=time.monotonic() + seconds, public=public)
    return run


def brief(candidates: list[Candidate]) -> list[tuple[object, ...]]:
    return [(c.source, c.protocol, c.host, c.port, c.security, c.refused) for c in candidates]


def config(*servers: tuple[str, str, int, str, str]) -> str:
    parts = []
    for kind, host, port, socket_type, username in servers:
        tag = "outgoingServer" if kind == "smtp" else "incomingServer"
        parts.append(f'<{tag} type="{kind}"><hostname>{host}</hostname><port>{port}</port>'
                     f"<socketType>{socket_type}</socketType><username>{username}</username></{tag}>")
    return f'<clientConfig version="1.1"><emailProvider id="x">{"".join(parts)}</emailProvider></clientConfig>'


# -- SRV ---------------------------------------------------------------------------------------


def test_srv_records_by_priority_then_weight_and_dot_means_not_offered(dns: DnsServer, find: Find) -> None:
    dns.srv("_imaps._tcp.srv.test", "b.srv.test", 993, priority=10, weight=5)
    dns.srv("_imaps._tcp.srv.test", "a.srv.test", 993, priority=10, weight=50)
    dns.srv("_imaps._tcp.srv.test", "c.srv.test", 9993, priority=5, weight=0)
    dns.srv("_imap._tcp.srv.test", "a.srv.test", 143, priority=0, weight=0)
    dns.srv("_pop3s._tcp.srv.test", ".", 0)
    dns.srv("_submissions._tcp.srv.test", ".", 0)
    dns.srv("_submission._tcp.srv.test", "submit.srv.test", 587)
    for host in ("a.srv.test", "b.srv.test", "c.srv.test", "submit.srv.test"):
        dns.a(host, "192.0.2.10")

    found = find("joe@srv.test")
    srv = [c for c in found if c.source == "srv"]
    assert brief(srv) == [
        ("srv", IMAP, "c.srv.test", 9993, TLS, None),
        ("srv", IMAP, "a.srv.test", 993, TLS, None),
        ("srv", IMAP, "b.srv.test", 993, TLS, None),
        ("srv", IMAP, "a.srv.test", 143, STARTTLS, None),
        ("srv", POP3, "_pop3s._tcp.srv.test", 0, TLS, "not-offered"),
        ("srv", None, "_submissions._tcp.srv.test", 0, TLS, "not-offered"),
        ("srv", None, "submit.srv.test", 587, STARTTLS, None),
    ]
    assert srv[0].usernames == ("joe@srv.test", "joe")
    assert {c.source for c in found} == {"srv", "guess"}
    assert found[: len(srv)] == srv  # SRV before guesses
    # The guesses on srv.test resolve to nothing.
    assert {c.refused for c in found if c.source == "guess"} == {"no-such-host"}


def test_srv_pointing_at_private_addresses_is_refused_without_a_connection(
        dns: DnsServer, web: AutoconfigServer, find: Find) -> None:
    dns.srv("_imaps._tcp.priv.test", "loopback.priv.test", web.port)
    dns.srv("_imap._tcp.priv.test", "127.0.0.1", web.port)
    dns.srv("_pop3s._tcp.priv.test", "metadata.priv.test", 995)
    dns.srv("_submissions._tcp.priv.test", "mixed.priv.test", 465)
    dns.srv("_submission._tcp.priv.test", "v6.priv.test", 587)
    dns.a("loopback.priv.test", "127.0.0.1")
    dns.a("metadata.priv.test", "169.254.169.254")
    dns.a("mixed.priv.test", "192.0.2.20", "10.1.2.3")
    dns.aaaa("v6.priv.test", "::ffff:7f00:1")  # ::ffff:127.0.0.1

    found = find("joe@priv.test")
    assert [(c.host, c.refused) for c in found if c.source == "srv"] == [
        ("loopback.priv.test", "private-address"),
        ("127.0.0.1", "private-address"),
        ("metadata.priv.test", "private-address"),
        ("mixed.priv.test", "private-address"),
        ("v6.priv.test", "private-address"),
    ]
    time.sleep(0.2)
    assert web.connections == 0 and web.requests == []

    allowed = find("joe@priv.test", allow_private=True)
    assert [(c.host, c.refused) for c in allowed if c.source == "srv"][:2] == [
        ("loopback.priv.test", None), ("127.0.0.1", None)]


# -- autoconfig --------------------------------------------------------------------------------


def test_autoconfig_is_fetched_parsed_and_ordered_after_the_provider_table(
        dns: DnsServer, web: AutoconfigServer, find: Find) -> None:
    dns.a("autoconfig.ac.test", "127.0.0.1")
    dns.a("imap.ac.test", "192.0.2.30")
    dns.a("smtp.ac.test", "192.0.2.31")
    dns.srv("_imaps._tcp.ac.test", "imap.ac.test", 993)
    web.serve(AUTOCONFIG_PATH, config(
        ("pop3", "imap.ac.test", 995, "SSL", "%EMAILLOCALPART%"),
        ("imap", "imap.ac.test", 143, "STARTTLS", "%EMAILADDRESS%"),
        ("imap", "imap.ac.test", 993, "SSL", "%EMAILADDRESS%"),
        ("imap", "imap.ac.test", 143, "plain", "%EMAILADDRESS%"),
        ("smtp", "smtp.ac.test", 587, "STARTTLS", "%EMAILLOCALPART%"),
    ), host="autoconfig.ac.test")

    found = find("joe@ac.test")
    assert brief(found[:4]) == [
        ("autoconfig", IMAP, "imap.ac.test", 993, TLS, None),
        ("autoconfig", IMAP, "imap.ac.test", 143, STARTTLS, None),
        ("autoconfig", POP3, "imap.ac.test", 995, TLS, None),
        ("autoconfig", None, "smtp.ac.test", 587, STARTTLS, None),
    ]
    assert [c.usernames for c in found[:4]] == [("joe@ac.test",), ("joe@ac.test",), ("joe",), ("joe",)]
    assert all(c.security is not TransportSecurity.NONE for c in found)
    # The SRV record repeats autoconfig's IMAPS server: kept once, as autoconfig's.
    assert not any(c.source == "srv" for c in found)
    assert ("autoconfig.ac.test", f"{AUTOCONFIG_PATH}?emailaddress=joe%40ac.test") in web.requests


def test_the_well_known_url_on_the_domain_itself(dns: DnsServer, web: AutoconfigServer, find: Find) -> None:
    dns.a("wk.test", "127.0.0.1")
    dns.a("mx.wk.test", "192.0.2.40")
    web.serve(WELL_KNOWN_PATH, config(("imap", "mx.%EMAILDOMAIN%", 993, "SSL", "")), host="wk.test")
    found = find("joe@wk.test")
    assert brief(found[:1]) == [("autoconfig", IMAP, "mx.wk.test", 993, TLS, None)]
    assert found[0].usernames == ("joe@wk.test", "joe")  # none given: the defaults


def test_autoconfig_with_full_certificate_verification_on_localhost(
        resolver: Resolver, web: AutoconfigServer) -> None:
    """The test certificate names localhost: checked against the name (sent as SNI) while the
    connection goes to the address that was checked."""
    web.serve(WELL_KNOWN_PATH, config(("imap", "imap.example.com", 993, "SSL", "")), host="localhost")
    verified = Autoconfig(resolver, port=web.port, extra_ca_file=web.ca_file)
    assert [c.host for c in verified.candidates("joe@localhost", allow_private=True)] == ["imap.example.com"]
    # Without the test CA the same server is not trusted: nothing, and no exception.
    assert Autoconfig(resolver, port=web.port).candidates("joe@localhost", allow_private=True) == []
    # And localhost is private.
    assert verified.candidates("joe@localhost", allow_private=False) == []


@pytest.mark.parametrize("target", ["https://trap.redirect.test:{port}/config.xml",
                                    "https://127.0.0.2:{port}/config.xml",
                                    "https://169.254.169.254/latest/meta-data/"])
def test_an_autoconfig_redirect_to_a_private_address_is_refused(
        dns: DnsServer, web: AutoconfigServer, find: Find, target: str) -> None:
    dns.a("autoconfig.redirect.test", "127.0.0.1")
    dns.a("trap.redirect.test", "127.0.0.2")
    web.redirect(AUTOCONFIG_PATH, target.format(port=web.trap_port))
    web.serve("/config.xml", config(("imap", "imap.example.com", 993, "SSL", "")))

    found = find("joe@redirect.test")
    assert not any(c.source == "autoconfig" for c in found)
    assert web.requests == [("autoconfig.redirect.test", f"{AUTOCONFIG_PATH}?emailaddress=joe%40redirect.test")]
    time.sleep(0.2)
    assert web.trap_connections == 0


def test_the_trap_does_notice_a_connection(dns: DnsServer, web: AutoconfigServer, find: Find) -> None:
    """The control for the test above: with private hosts allowed the redirect is followed."""
    dns.a("autoconfig.redirect.test", "127.0.0.1")
    dns.a("trap.redirect.test", "127.0.0.2")
    web.redirect(AUTOCONFIG_PATH, f"https://trap.redirect.test:{web.trap_port}/config.xml")
    find("joe@redirect.test", allow_private=True)
    deadline = time.monotonic() + 2
    while web.trap_connections == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert web.trap_connections == 1


def test_redirects_are_followed_up_to_three(dns: DnsServer, web: AutoconfigServer, autoconfig: Autoconfig) -> None:
    dns.a("autoconfig.hops.test", "127.0.0.1")
    web.redirect(AUTOCONFIG_PATH, "/hop1")
    web.redirect("/hop1", "/hop2")
    web.redirect("/hop2", "/final")
    web.serve("/final", config(("imap", "imap.hops.test", 993, "SSL", "")))
    assert [c.host for c in autoconfig.candidates("joe@hops.test", allow_private=False)] == ["imap.hops.test"]
    web.redirect("/hop2", "/hop3")
    web.redirect("/hop3", "/final")
    assert autoconfig.candidates("joe@hops.test", allow_private=False) == []


@pytest.mark.parametrize("send_length", [True, False])
def test_a_huge_autoconfig_response_gives_nothing(
        dns: DnsServer, web: AutoconfigServer, autoconfig: Autoconfig, send_length: bool) -> None:
    dns.a("autoconfig.big.test", "127.0.0.1")
    server = '<incomingServer type="imap"><hostname>imap.big.test</hostname><port>993</port>' \
             "<socketType>SSL</socketType></incomingServer>"
    body = f'<clientConfig version="1.1"><emailProvider id="x">{server * 2000}</emailProvider></clientConfig>'
    assert len(body) > 64 * 1024
    web.serve(AUTOCONFIG_PATH, body, send_length=send_length)
    assert autoconfig.candidates("joe@big.test", allow_private=False) == []
    web.serve(AUTOCONFIG_PATH, body[: 64 * 1024 - 100].rpartition("<incomingServer")[0] + "</emailProvider>"
              "</clientConfig>", send_length=send_length)
    assert len(autoconfig.candidates("joe@big.test", allow_private=False)) == 1  # repeats: once


def test_malformed_autoconfig_and_errors_give_nothing(dns: DnsServer, web: AutoconfigServer,
                                                      autoconfig: Autoconfig) -> None:
    dns.a("autoconfig.bad.test", "127.0.0.1")
    web.serve(AUTOCONFIG_PATH, '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><clientConfig>&a;</clientConfig>')
    assert autoconfig.candidates("joe@bad.test", allow_private=False) == []
    web.serve(AUTOCONFIG_PATH, "<clientConfig", status=200)
    assert autoconfig.candidates("joe@bad.test", allow_private=False) == []
    web.serve(AUTOCONFIG_PATH, config(("imap", "imap.bad.test", 993, "SSL", "")), status=500)
    assert autoconfig.candidates("joe@bad.test", allow_private=False) == []


# -- MX, guesses, the deadline -------------------------------------------------------------------


def test_provider_matched_by_mx(dns: DnsServer, find: Find) -> None:
    dns.mx("workspace.test", "alt1.aspmx.l.google.com", 5)
    dns.mx("workspace.test", "aspmx.l.google.com", 1)
    for host in ("imap.gmail.com", "pop.gmail.com", "smtp.gmail.com"):
        dns.a(host, "192.0.2.50")
    found = find("joe@workspace.test")
    provider = [c for c in found if c.source == "provider-table"]
    assert brief(provider) == [
        ("provider-table", IMAP, "imap.gmail.com", 993, TLS, None),
        ("provider-table", POP3, "pop.gmail.com", 995, TLS, None),
        ("provider-table", None, "smtp.gmail.com", 465, TLS, None),
        ("provider-table", None, "smtp.gmail.com", 587, STARTTLS, None),
    ]
    assert found[: len(provider)] == provider
    assert provider[0].usernames == ("joe@workspace.test",)
    assert not any(c.source == "mx" for c in found)  # a known provider: no guesses on google.com


def test_the_mx_hosts_domain_is_a_guess_base(dns: DnsServer, find: Find) -> None:
    dns.mx("customer.test", "mx1.hoster.test")
    dns.a("imap.hoster.test", "192.0.2.60")
    dns.a("mail.customer.test", "192.0.2.61")
    found = find("joe@customer.test")
    assert [c.source for c in found] == sorted((c.source for c in found), key=["mx", "guess"].index)
    usable = [(c.source, c.protocol, c.host, c.port, c.security) for c in found if c.refused is None]
    assert usable[:2] == [("mx", IMAP, "imap.hoster.test", 993, TLS), ("mx", IMAP, "imap.hoster.test", 143, STARTTLS)]
    assert ("guess", IMAP, "mail.customer.test", 993, TLS) in usable


def test_an_unknown_domain_gives_only_guesses_that_do_not_exist(
        resolver: Resolver, find: Find, web: AutoconfigServer) -> None:
    found = find("joe@nowhere-at-all.test")
    assert found and {c.source for c in found} == {"guess"}
    assert {c.refused for c in found} == {"no-such-host"}
    for host in {c.host for c in found}:
        with pytest.raises(NoSuchHost):
            resolver.addresses(host)
    incoming = [(c.protocol, c.host, c.port, c.security) for c in found if c.role == "incoming"]
    assert incoming[:4] == [(IMAP, "imap.nowhere-at-all.test", 993, TLS), (IMAP, "mail.nowhere-at-all.test", 993, TLS),
                            (IMAP, "imap.nowhere-at-all.test", 143, STARTTLS),
                            (IMAP, "mail.nowhere-at-all.test", 143, STARTTLS)]
    protocols = [c.protocol for c in found if c.role == "incoming"]
    assert protocols == [IMAP] * protocols.count(IMAP) + [POP3] * protocols.count(POP3)
    assert {c.port for c in found} == {993, 143, 995, 110, 465, 587}
    assert web.requests == []


def test_a_black_hole_dns_answers_within_the_deadline(dns: DnsServer, find: Find, web: AutoconfigServer) -> None:
    dns.black_hole("hole.test")
    started = time.monotonic()
    found = find("joe@hole.test", seconds=4.0)
    elapsed = time.monotonic() - started
    assert elapsed < 4.5
    assert {c.source for c in found} == {"guess"}  # nothing else answered; guesses are not refused
    assert all(c.refused is None for c in found)
    assert any(name.endswith("hole.test") for name, _ in dns.queries)
