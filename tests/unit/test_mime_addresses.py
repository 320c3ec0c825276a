"""Display names and senders (issue 9): samples in tests/data/mime, written for these tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.mime import parse_mail

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "mime"


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


@pytest.mark.parametrize(
    ("name", "address", "display"),
    [
        ("comment-name.eml", "marc@example.com", "Marc Smith"),
        ("adjacent-encoded-words.eml", "hans@example.de", "Hans BÄKOSchönland"),
        ("trailing-dot-domain.eml", "marc@example.com", "Marc Smith"),
        ("bounce-mailer-daemon.eml", "mailer-daemon@mx1.example.net", "Mail Delivery System"),
        ("quoted-local-part.eml", '"millions lottery spain transfer"@example.com', None),
        ("two-from-headers.eml", "anna@example.se", "Anna Berg"),
    ],
)
def test_sender_and_display_name(name: str, address: str, display: str | None) -> None:
    mail = parse_mail(sample(name))
    assert (mail.from_address, mail.from_name) == (address, display)


@pytest.mark.parametrize(
    ("value", "address", "display"),
    [
        (b"marc@example.com (Marc Smith)", "marc@example.com", "Marc Smith"),
        (b"(Marc Smith) marc@example.com", "marc@example.com", "Marc Smith"),
        (b"<marc@example.com> (=?utf-8?q?Marc_M=C3=BCller?=)", "marc@example.com", "Marc Müller"),
        (b"Marc Smith <marc@example.com> (work)", "marc@example.com", "Marc Smith"),  # the phrase wins
        (b"=?utf-8?q?Hans_B=C3=84KO?= =?utf-8?q?Sch=C3=B6nland?= <h@example.de>", "h@example.de",
         "Hans BÄKOSchönland"),
        (b"=?utf-8?b?SGFucw==?=\r\n =?utf-8?b?IE3DvGxsZXI=?= <h@example.de>", "h@example.de", "Hans Müller"),
        (b"=?utf-8?q?Hans?= Meier <h@example.de>", "h@example.de", "Hans Meier"),  # a word between: kept
        (b"Marc <marc@example.com.>", "marc@example.com", "Marc"),
        (b"marc@example.com.", "marc@example.com", None),
    ],
)
def test_display_name_forms(value: bytes, address: str, display: str | None) -> None:
    mail = parse_mail(b"From: " + value + b"\r\nSubject: x\r\n\r\nbody\r\n")
    assert (mail.from_address, mail.from_name) == (address, display)


def test_the_first_usable_from_wins_over_reply_to() -> None:
    mail = parse_mail(sample("two-from-headers.eml"))
    assert mail.from_address == "anna@example.se"
    assert mail.reply_to == "replies@lists.example.se"


def test_a_bounce_from_mailer_daemon_is_taken_in_as_a_bounce() -> None:
    mail = parse_mail(sample("bounce-mailer-daemon.eml"))
    assert mail.is_bounce
    assert mail.text.startswith("This is the mail system at host mx1.example.net.")
    assert mail.auto_submitted == "auto-replied"


def test_a_bounce_without_message_id_gets_an_invalid_domain() -> None:
    raw = b"From: MAILER DAEMON <>\r\nReturn-Path: <>\r\nSubject: bounce\r\n\r\nbody\r\n"
    mail = parse_mail(raw)
    assert (mail.from_address, mail.from_name) == ("mailer-daemon@invalid", "MAILER DAEMON")


def test_a_quoted_local_part_with_a_stray_bracket_is_taken_in() -> None:
    mail = parse_mail(sample("quoted-local-part.eml"))
    assert mail.subject == "YOU HAVE WON 1,000,000 EUR"
    assert mail.text.startswith("Dear winner")
