"""Broken header blocks read as mail clients read them (issue 9): samples in tests/data/mime."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.headerblock import repair_header_block
from adapters.mime import Unparseable, parse_mail

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "mime"


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def test_an_unindented_continuation_keeps_the_multipart_together() -> None:
    mail = parse_mail(sample("unindented-continuation.eml"))
    assert mail.text == "The invoice is attached."
    assert [(p.filename, p.content_type) for p in mail.parts] == [("invoice.pdf", "application/pdf")]
    assert mail.headers["x-mailer"] == "Old Mailer 1.0"


def test_an_unindented_parameter_no_longer_turns_the_body_into_base64() -> None:
    mail = parse_mail(sample("unindented-base64.eml"))
    assert mail.text == "Grüße aus Köln, die Rechnung kommt morgen."


def test_a_junk_line_in_the_middle_of_the_headers() -> None:
    mail = parse_mail(sample("junk-line-in-headers.eml"))
    assert (mail.from_address, mail.subject, mail.text) == ("ann@example.com", "a junk line between headers",
                                                           "The body.\n")
    assert mail.message_id == "junk-middle@example.com"


def test_a_junk_first_line() -> None:
    mail = parse_mail(sample("junk-first-line.eml"))
    assert (mail.from_address, mail.subject, mail.text) == ("ann@example.com", "a junk first line", "The body.\n")


@pytest.mark.parametrize(
    "raw",
    [
        b"From: a@example.com\r\nSubject: x\r\n\r\nbody\r\n",
        b"From a@example.com Mon Jan  1 00:00:00 2024\nFrom: a@example.com\n\nbody\n",  # mbox From_ line
        b"From: a@example.com\r\nSubject: x\r\nthe body starts here, no blank line\r\n\r\nmore\r\n",
        b"just some text\r\nmore text\r\n",
        b"",
    ],
)
def test_what_is_not_obviously_broken_is_left_as_it_is(raw: bytes) -> None:
    assert repair_header_block(raw) == raw


def test_repairs() -> None:
    assert repair_header_block(b"junk\nFrom: a@b.c\n\nbody\n") == b"From: a@b.c\n\nbody\n"
    assert repair_header_block(b"A: 1\nbad line\nB: 2\n\nbody\n") == b"A: 1\n bad line\nB: 2\n\nbody\n"
    assert repair_header_block(b"Content-Type: multipart/mixed;\nboundary=x\n\nbody\n") == (
        b"Content-Type: multipart/mixed;\n boundary=x\n\nbody\n")


def test_a_body_without_a_blank_line_is_still_the_body() -> None:
    mail = parse_mail(b"From: a@example.com\r\nSubject: x\r\nHello there\r\nNo header here\r\n")
    assert mail.subject == "x"
    assert mail.text.startswith("Hello there")


def test_no_headers_at_all_is_still_quarantined() -> None:
    with pytest.raises(Unparseable):
        parse_mail(b"just some text\r\nmore text\r\n")


def test_obsolete_whitespace_before_the_colon() -> None:
    mail = parse_mail(b"Subject  : hi there\r\nFrom : Ann <ann@example.com>\r\n\r\nbody\r\n")
    assert (mail.from_address, mail.from_name, mail.subject) == ("ann@example.com", "Ann", "hi there")


def test_utf8_labelled_iso_2022_jp_is_utf8() -> None:
    head = b"From: a@example.jp\r\nSubject: x\r\nContent-Type: text/plain; charset=iso-2022-jp\r\n\r\n"
    raw = head + "お問い合わせ".encode()
    assert parse_mail(raw).text == "お問い合わせ"


_LINES = st.sampled_from([b"From: a@example.com", b"Subject: x", b" folded", b"junk line", b"boundary=x",
                          b"Content-Type: multipart/mixed;", b"From a@b Mon", b"", b"X-A : 1", b"\xff\xfe bytes"])


@settings(max_examples=300, deadline=None)
@given(st.lists(_LINES, max_size=8), st.sampled_from([b"\n", b"\r\n"]))
def test_repair_is_idempotent_and_parsing_never_crashes(lines: list[bytes], end: bytes) -> None:
    raw = end.join(lines) + end + end + b"body" + end
    once = repair_header_block(raw)
    assert repair_header_block(once) == once
    assert once.endswith(b"body" + end)
    try:
        parse_mail(raw)
    except Unparseable as exc:
        assert exc.reason
