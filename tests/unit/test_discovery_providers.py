"""The built-in provider table (adapters/discovery/providers.json): by domain and by MX host."""

from __future__ import annotations

import pytest

from adapters.discovery import providers
from adapters.discovery.model import Candidate
from domain.values import MailProtocol, TransportSecurity

TLS, STARTTLS = TransportSecurity.TLS, TransportSecurity.STARTTLS
IMAP, POP3 = MailProtocol.IMAP, MailProtocol.POP3


def servers(candidates: list[Candidate]) -> list[tuple[str, MailProtocol | None, str, int, TransportSecurity]]:
    return [(c.role, c.protocol, c.host, c.port, c.security) for c in candidates]


def first_imap(candidates: list[Candidate]) -> tuple[str, int, TransportSecurity]:
    imap = next(c for c in candidates if c.protocol is IMAP)
    return imap.host, imap.port, imap.security


def smtp(candidates: list[Candidate]) -> list[tuple[str, int, TransportSecurity]]:
    return [(c.host, c.port, c.security) for c in candidates if c.role == "outgoing"]


def test_gmail_by_domain() -> None:
    found = providers.by_domain("gmail.com", address="joe@gmail.com")
    assert servers(found) == [
        ("incoming", IMAP, "imap.gmail.com", 993, TLS),
        ("incoming", POP3, "pop.gmail.com", 995, TLS),
        ("outgoing", None, "smtp.gmail.com", 465, TLS),
        ("outgoing", None, "smtp.gmail.com", 587, STARTTLS),
    ]
    assert all(c.source == "provider-table" and c.refused is None for c in found)
    assert found[0].usernames == ("joe@gmail.com",)


def test_google_workspace_by_mx() -> None:
    assert providers.by_domain("example-company.com") == []
    found = providers.by_mx(["aspmx.l.google.com", "alt1.aspmx.l.google.com"], address="joe@example-company.com")
    assert first_imap(found) == ("imap.gmail.com", 993, TLS)
    assert found[0].usernames == ("joe@example-company.com",)
    assert providers.by_mx(["smtp.google.com"])[0].host == "imap.gmail.com"  # Workspace's newer single MX


@pytest.mark.parametrize("domain", ["outlook.com", "hotmail.com", "live.com", "OUTLOOK.COM."])
def test_outlook_by_domain(domain: str) -> None:
    found = providers.by_domain(domain, address=f"joe@{domain}")
    assert first_imap(found) == ("outlook.office365.com", 993, TLS)
    assert ("outlook.office365.com", 995, TLS) in [(c.host, c.port, c.security) for c in found if c.protocol is POP3]
    assert smtp(found) == [("smtp-mail.outlook.com", 587, STARTTLS)]


def test_microsoft_365_by_mx() -> None:
    found = providers.by_mx(["contoso-com.mail.protection.outlook.com"], address="joe@contoso.com")
    assert first_imap(found) == ("outlook.office365.com", 993, TLS)
    assert smtp(found) == [("smtp.office365.com", 587, STARTTLS)]
    assert providers.match_mx(["hotmail-com.olc.protection.outlook.com"]).id == "outlook"  # type: ignore[union-attr]


@pytest.mark.parametrize(("domain", "imap", "outgoing"), [
    ("yahoo.com", ("imap.mail.yahoo.com", 993, TLS), ("smtp.mail.yahoo.com", 465, TLS)),
    ("aol.com", ("imap.aol.com", 993, TLS), ("smtp.aol.com", 465, TLS)),
    ("icloud.com", ("imap.mail.me.com", 993, TLS), ("smtp.mail.me.com", 587, STARTTLS)),
    ("me.com", ("imap.mail.me.com", 993, TLS), ("smtp.mail.me.com", 587, STARTTLS)),
    ("qq.com", ("imap.qq.com", 993, TLS), ("smtp.qq.com", 465, TLS)),
    ("163.com", ("imap.163.com", 993, TLS), ("smtp.163.com", 465, TLS)),
    ("126.com", ("imap.126.com", 993, TLS), ("smtp.126.com", 465, TLS)),
    ("yandex.ru", ("imap.yandex.com", 993, TLS), ("smtp.yandex.com", 465, TLS)),
    ("zoho.com", ("imap.zoho.com", 993, TLS), ("smtp.zoho.com", 465, TLS)),
    ("fastmail.com", ("imap.fastmail.com", 993, TLS), ("smtp.fastmail.com", 465, TLS)),
    ("gmx.de", ("imap.gmx.net", 993, TLS), ("mail.gmx.net", 465, TLS)),
    ("mail.ru", ("imap.mail.ru", 993, TLS), ("smtp.mail.ru", 465, TLS)),
    ("proton.me", ("127.0.0.1", 1143, STARTTLS), ("127.0.0.1", 1025, STARTTLS)),
])
def test_providers_by_domain(domain: str, imap: tuple[str, int, TransportSecurity],
                             outgoing: tuple[str, int, TransportSecurity]) -> None:
    found = providers.by_domain(domain, address=f"joe@{domain}")
    assert first_imap(found) == imap
    assert smtp(found)[0] == outgoing


def test_icloud_tries_the_local_part_first() -> None:
    assert providers.by_domain("icloud.com", address="joe@icloud.com")[0].usernames == ("joe", "joe@icloud.com")


@pytest.mark.parametrize(("mx", "provider"), [
    ("mx-aol.mail.gm0.yahoodns.net", "aol"),  # the longer suffix wins over Yahoo's yahoodns.net
    ("mta5.am0.yahoodns.net", "yahoo"),
    ("mx01.mail.icloud.com", "icloud"),
    ("mxbiz1.qq.com", "exmail-qq"),
    ("mx1.qq.com", "qq"),
    ("mx.yandex.net", "yandex"),
    ("mx.zoho.com", "zoho-org"),
    ("in1-smtp.messagingengine.com", "fastmail"),
    ("mx00.gmx.net", "gmx"),
    ("mxs.mail.ru", "mailru"),
    ("mail.protonmail.ch", "proton-bridge"),
])
def test_providers_by_mx(mx: str, provider: str) -> None:
    match = providers.match_mx([mx])
    assert match is not None and match.id == provider


def test_mx_suffixes_match_whole_labels_only() -> None:
    assert providers.match_mx(["mx.notgoogle.com", "evilgoogle.com", "google.com.evil.test"]) is None
    assert providers.by_mx([]) == []


def test_the_first_matching_mx_host_decides() -> None:
    match = providers.match_mx(["mx.example.test", "aspmx.l.google.com", "mx.yandex.net"])
    assert match is not None and match.id == "gmail"


def test_the_table_never_proposes_plaintext_and_every_entry_is_complete() -> None:
    for provider in providers.table():
        assert provider.incoming and provider.outgoing, provider.id
        assert all(s.security is not TransportSecurity.NONE for s in (*provider.incoming, *provider.outgoing))
        assert all(0 < s.port < 65536 for s in (*provider.incoming, *provider.outgoing))
        assert set(provider.usernames) <= {"address", "localpart"}
    domains = [d for p in providers.table() for d in p.domains]
    assert len(domains) == len(set(domains)), "a domain belongs to one provider"


def test_without_an_address_candidates_have_no_usernames() -> None:
    assert providers.by_domain("gmail.com")[0].usernames == ()
