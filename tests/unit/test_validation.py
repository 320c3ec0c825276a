"""Pure input checks: what the admin may type, and where each complaint lands."""

from __future__ import annotations

import pytest

from domain.commands.mailboxes import check_subject_template
from domain.errors import Collector, Problem, Rejected, invalid, not_found
from domain.mailbox import SUBJECT_PLACEHOLDERS
from domain.validation import (
    check_domain,
    check_email,
    check_name,
    check_server,
    is_email,
    normalise_email,
)
from domain.values import ServerSettings, TransportSecurity

FIELD = ("input", "x")


def problems_of(check, *args) -> list[Problem]:
    errors = Collector()
    check(errors, *args)
    return errors.problems


# --- emails -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "email",
    [
        "user@example.com",
        "first.last+tag@sub.example.co.uk",
        "USER@EXAMPLE.COM",
        "o'brien@example.ie",
        "x@a-b.example",
        "support@xn--bcher-kva.example",
        "  padded@example.com  ",
    ],
)
def test_email_accepted(email: str) -> None:
    assert problems_of(check_email, FIELD, email) == []


@pytest.mark.parametrize(
    "email",
    [
        "",
        "   ",
        "plainaddress",
        "@example.com",
        "user@",
        "user@localhost",
        "user@@example.com",
        "user name@example.com",
        "user@exa mple.com",
        "<user@example.com>",
        '"user"@example.com',
        "user@-example.com",
        "user@example-.com",
        "user@example..com",
        "user@.example.com",
        "user@example.com\r\nBcc: victim@example.org",
        "user@example.com\nBcc: victim@example.org",
        "u@" + "a" * 250 + ".com",
    ],
)
def test_email_rejected(email: str) -> None:
    problems = problems_of(check_email, FIELD, email)
    assert [(p.field, p.code) for p in problems] == [(FIELD, "INVALID")]
    assert "not an email address" in problems[0].message


def test_email_length_limit_is_254() -> None:
    assert len("u@" + "a" * 248 + ".com") == 254
    assert is_email("u@" + "a" * 248 + ".com") is True
    assert is_email("u@" + "a" * 249 + ".com") is False  # 255 characters


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("Support@Example.COM", "support@example.com"),
        ("  bob@example.com\n", "bob@example.com"),
        ("already@canonical.org", "already@canonical.org"),
    ],
)
def test_normalise_email_is_trimmed_lower_case(given: str, canonical: str) -> None:
    assert normalise_email(given) == canonical
    assert normalise_email(canonical) == canonical


# --- names ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Support", "x", "x" * 200, "Ünïcødé Team", "  padded  "])
def test_name_accepted(name: str) -> None:
    assert problems_of(check_name, FIELD, name) == []


LINE_BREAKS = "must not contain line breaks (CR, LF, U+2028, U+2029, U+0085 or others)"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "must not be empty"),
        ("   ", "must not be empty"),
        ("\n", "must not be empty"),
        ("x" * 201, "must be at most 200 characters"),
        ("line\rbreak", LINE_BREAKS),
        ("line\nbreak", LINE_BREAKS),
        ("nul\x00byte", LINE_BREAKS),
        ("line\u2028separator", LINE_BREAKS),
        ("paragraph\u2029separator", LINE_BREAKS),
        ("next\x85line", LINE_BREAKS),
        ("vertical\x0btab", LINE_BREAKS),
    ],
)
def test_name_rejected(name: str, message: str) -> None:
    assert problems_of(check_name, FIELD, name) == [Problem(FIELD, message, "INVALID")]


def test_name_limit_is_configurable() -> None:
    assert problems_of(check_name, FIELD, "x" * 10, 10) == []
    assert problems_of(check_name, FIELD, "x" * 11, 10) == [
        Problem(FIELD, "must be at most 10 characters")
    ]


# --- domains ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "domain", ["example.com", "Example.COM", "sub.example.co.uk", " example.com ", "a-b.example", "x1.io"]
)
def test_domain_accepted(domain: str) -> None:
    assert problems_of(check_domain, FIELD, domain) == []


@pytest.mark.parametrize(
    "domain",
    [
        "",
        "localhost",
        "example",
        "-example.com",
        "example-.com",
        "exa_mple.com",
        "example..com",
        ".example.com",
        "*.example.com",
        "http://example.com",
        "example.com/",
        "user@example.com",
        "exa mple.com",
    ],
)
def test_domain_rejected(domain: str) -> None:
    problems = problems_of(check_domain, FIELD, domain)
    assert [(p.field, p.code) for p in problems] == [(FIELD, "INVALID")]
    assert "is not a domain name" in problems[0].message


# --- server settings --------------------------------------------------------------------


def server(
    host: str = "imap.example.com",
    port: int = 993,
    username: str = "support@example.com",
    security: TransportSecurity = TransportSecurity.TLS,
) -> ServerSettings:
    return ServerSettings(host=host, port=port, security=security, username=username)


@pytest.mark.parametrize(
    "settings",
    [
        server(),
        server(port=1),
        server(port=65535),
        server(host="192.0.2.10"),
        server(host="[2001:db8::1]"),
        server(host="mail-1.example.com", security=TransportSecurity.STARTTLS, port=143),
        server(username="plain-user"),
    ],
)
def test_server_accepted(settings: ServerSettings) -> None:
    assert problems_of(check_server, ("input", "incoming"), settings) == []


@pytest.mark.parametrize(
    ("settings", "bad_field"),
    [
        (server(port=0), "port"),
        (server(port=65536), "port"),
        (server(port=-1), "port"),
        (server(host=""), "host"),
        (server(host="   "), "host"),
        (server(host="bad host"), "host"),
        (server(host="-imap.example.com"), "host"),
        (server(host="imap.example.com/path"), "host"),
        (server(username=""), "username"),
        (server(username="   "), "username"),
        (server(username="user\nname"), "username"),
        (server(username="user\r\nA1 LOGOUT"), "username"),
        (server(username="user\x00"), "username"),
    ],
)
def test_server_rejected_at_its_field(settings: ServerSettings, bad_field: str) -> None:
    problems = problems_of(check_server, ("input", "incoming"), settings)
    assert [p.field for p in problems] == [("input", "incoming", bad_field)]
    assert problems[0].code == "INVALID"


def test_server_reports_every_problem_at_once() -> None:
    problems = problems_of(check_server, ("input", "outgoing"), server(host="", port=0, username=""))
    assert [p.field for p in problems] == [
        ("input", "outgoing", "host"),
        ("input", "outgoing", "port"),
        ("input", "outgoing", "username"),
    ]
    assert "port 0 is out of range 1-65535" in problems[1].message


# --- reply subject templates -------------------------------------------------------------

ACCEPTED_TEMPLATES = [
    "Re: {subject}",
    "[{mailbox}] {subject} ({conversation_ref})",
    "{{literal braces}} {subject}",
    "No placeholders at all",
    "{subject!s}",
    "{subject:.78}",
]


@pytest.mark.parametrize("template", ACCEPTED_TEMPLATES)
def test_subject_template_accepted_and_renders(template: str) -> None:
    assert problems_of(check_subject_template, FIELD, template) == []
    # What is accepted now must fill in later, when replies are sent.
    template.format(**{name: "Some text" for name in SUBJECT_PLACEHOLDERS})


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("", "must not be empty"),
        ("   ", "must not be empty"),
        ("Re: {subject}\n", "must not contain line breaks"),
        ("Re: {subject}\r\nBcc: x@example.com", "must not contain line breaks"),
        ("Re: {subject", "unbalanced braces"),
        ("Re: subject}", "unbalanced braces"),
        ("Re: {sender}", "unknown placeholder {sender}"),
        ("Re: {}", "unknown placeholder {}"),
        ("Re: {0}", "unknown placeholder {0}"),
        ("Re: {Subject}", "unknown placeholder {Subject}"),
        ("Re: {subject.upper}", "unknown placeholder {subject.upper}"),
        ("Re: {subject[0]}", "unknown placeholder {subject[0]}"),
        # Placeholders hidden in a format spec, bad conversions and bad specs would
        # only fail when a reply is sent: refuse them when the template is set.
        ("Re: {subject:{sender}}", "cannot be filled in"),
        ("Re: {subject!x}", "cannot be filled in"),
        ("Re: {subject:d}", "cannot be filled in"),
    ],
)
def test_subject_template_rejected(template: str, message: str) -> None:
    problems = problems_of(check_subject_template, ("input", "subjectTemplate"), template)
    assert len(problems) == 1
    assert problems[0].field == ("input", "subjectTemplate")
    assert problems[0].code == "INVALID"
    assert message in problems[0].message


def test_unknown_placeholder_message_lists_the_allowed_ones() -> None:
    [problem] = problems_of(check_subject_template, FIELD, "{who}")
    for name in SUBJECT_PLACEHOLDERS:
        assert "{" + name + "}" in problem.message


# --- errors -----------------------------------------------------------------------------


def test_collector_raises_nothing_when_clean_and_everything_when_not() -> None:
    errors = Collector()
    errors.raise_if_any()  # nothing collected, nothing raised
    errors.add(("input", "a"), "first")
    errors.add(("input", "b"), "second", "DUPLICATE")
    with pytest.raises(Rejected) as raised:
        errors.raise_if_any()
    assert raised.value.problems == [
        Problem(("input", "a"), "first", "INVALID"),
        Problem(("input", "b"), "second", "DUPLICATE"),
    ]
    assert str(raised.value) == "first; second"


def test_error_helpers_carry_field_and_code() -> None:
    assert invalid(("id",), "bad").problems == [Problem(("id",), "bad", "INVALID")]
    assert invalid(None, "taken", "DUPLICATE").problems == [Problem(None, "taken", "DUPLICATE")]
    assert not_found(("input", "id"), "mailbox").problems == [
        Problem(("input", "id"), "mailbox not found", "NOT_FOUND")
    ]
