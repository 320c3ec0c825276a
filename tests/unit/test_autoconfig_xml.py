"""Autoconfig config-v1.1 parsing (adapters/discovery/autoconfig.parse): hardened, never plaintext."""

from __future__ import annotations

import pytest

from adapters.discovery.autoconfig import parse
from domain.values import MailProtocol, TransportSecurity

TLS, STARTTLS = TransportSecurity.TLS, TransportSecurity.STARTTLS
IMAP, POP3 = MailProtocol.IMAP, MailProtocol.POP3
ADDRESS = "joe.bloggs@example.com"


def config(*servers: str) -> str:
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<clientConfig version="1.1">\n'
            '<emailProvider id="example.com"><domain>example.com</domain>'
            f'<displayName>Example</displayName>{"".join(servers)}</emailProvider></clientConfig>')


def server(kind: str, host: str, port: object, socket_type: str, username: str = "%EMAILADDRESS%",
           auth: str = "<authentication>password-cleartext</authentication>", tag: str = "") -> str:
    tag = tag or ("outgoingServer" if kind == "smtp" else "incomingServer")
    return (f'<{tag} type="{kind}"><hostname>{host}</hostname><port>{port}</port>'
            f'<socketType>{socket_type}</socketType><username>{username}</username>{auth}</{tag}>')


def test_a_full_config() -> None:
    found = parse(config(
        server("imap", "imap.example.com", 993, "SSL"),
        server("imap", "imap.example.com", 143, "STARTTLS"),
        server("pop3", "pop.example.com", 995, "SSL", "%EMAILLOCALPART%"),
        server("smtp", "smtp.example.com", 465, "SSL"),
        server("smtp", "smtp.example.com", 587, "STARTTLS"),
    ), ADDRESS)
    assert [(c.source, c.role, c.protocol, c.host, c.port, c.security, c.usernames) for c in found] == [
        ("autoconfig", "incoming", IMAP, "imap.example.com", 993, TLS, (ADDRESS,)),
        ("autoconfig", "incoming", IMAP, "imap.example.com", 143, STARTTLS, (ADDRESS,)),
        ("autoconfig", "incoming", POP3, "pop.example.com", 995, TLS, ("joe.bloggs",)),
        ("autoconfig", "outgoing", None, "smtp.example.com", 465, TLS, (ADDRESS,)),
        ("autoconfig", "outgoing", None, "smtp.example.com", 587, STARTTLS, (ADDRESS,)),
    ]


def test_placeholders_in_host_and_username() -> None:
    found = parse(config(server("imap", "mail.%EMAILDOMAIN%", 993, "SSL", "%EMAILLOCALPART%+support"),
                         server("smtp", "smtp.%EMAILDOMAIN%", 587, "STARTTLS", "mbox-%EMAILDOMAIN%")), ADDRESS)
    assert [(c.host, c.usernames) for c in found] == [
        ("mail.example.com", ("joe.bloggs+support",)), ("smtp.example.com", ("mbox-example.com",))]


def test_no_username_leaves_it_to_the_defaults() -> None:
    found = parse(config(server("imap", "imap.example.com", 993, "SSL", username="")), ADDRESS)
    assert found[0].usernames == ()


@pytest.mark.parametrize("socket_type", ["plain", "PLAIN", "none", ""])
def test_plaintext_is_dropped(socket_type: str) -> None:
    found = parse(config(server("imap", "imap.example.com", 143, socket_type),
                         server("smtp", "smtp.example.com", 25, socket_type),
                         server("imap", "imap.example.com", 993, "SSL")), ADDRESS)
    assert [(c.port, c.security) for c in found] == [(993, TLS)]


@pytest.mark.parametrize("bad", [
    server("imap", "imap.example.com", 0, "SSL"),
    server("imap", "imap.example.com", 70000, "SSL"),
    server("imap", "imap.example.com", "nine", "SSL"),
    server("imap", "imap example.com", 993, "SSL"),
    server("imap", "imap.example.com/evil", 993, "SSL"),
    server("imap", "", 993, "SSL"),
    server("exchange", "ews.example.com", 443, "SSL"),
    server("smtp", "smtp.example.com", 465, "SSL", tag="incomingServer"),
    server("imap", "imap.example.com", 993, "SSL", auth="<authentication>OAuth2</authentication>"),
])
def test_unusable_servers_are_left_out(bad: str) -> None:
    assert parse(config(bad), ADDRESS) == []


def test_oauth_alongside_a_password_method_is_kept() -> None:
    auth = "<authentication>OAuth2</authentication><authentication>password-cleartext</authentication>"
    assert len(parse(config(server("imap", "imap.example.com", 993, "SSL", auth=auth)), ADDRESS)) == 1


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<clientConfig version="1.1"><emailProvider id="x"><incomingServer type="imap"><hostname>imap.example.com</hostname>
<port>993</port><socketType>SSL</socketType><username>&lol9;</username></incomingServer></emailProvider></clientConfig>"""

EXTERNAL_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE c [<!ENTITY host SYSTEM "file:///etc/hostname">]>
<clientConfig version="1.1"><emailProvider id="x"><incomingServer type="imap"><hostname>&host;</hostname>
<port>993</port><socketType>SSL</socketType></incomingServer></emailProvider></clientConfig>"""


@pytest.mark.parametrize("document", [
    BILLION_LAUGHS,
    EXTERNAL_ENTITY,
    '<?xml version="1.0"?><!DOCTYPE clientConfig><clientConfig version="1.1"/>',  # any DTD
    "<clientConfig><emailProvider>",  # truncated
    "not xml at all",
    "",
    b"\xff\xfe\x00garbage",
    "<html><body>Not found</body></html>",  # well-formed, but not a clientConfig
])
def test_hostile_or_malformed_documents_give_nothing(document: str | bytes) -> None:
    assert parse(document, ADDRESS) == []


def test_bytes_with_an_encoding_declaration() -> None:
    document = config(server("imap", "imap.example.com", 993, "SSL")).encode("utf-8")
    assert [c.host for c in parse(document, ADDRESS)] == ["imap.example.com"]
