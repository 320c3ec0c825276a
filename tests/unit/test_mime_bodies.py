"""Bodies in several parts (issue 9): samples in tests/data/mime, written for these tests."""

from __future__ import annotations

from pathlib import Path

from adapters.mime import parse_mail

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "mime"


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def test_several_inline_text_parts_are_the_body_in_order() -> None:
    mail = parse_mail(sample("several-inline-text-parts.eml"))
    assert mail.text == (
        "Please see the delivery note below.\n\n-- \nAnn Example, Köln\n\n"
        "Begin forwarded message: the parcel left on Monday."
    )
    assert mail.html is not None
    assert mail.html.index("delivery note below") < mail.html.index("Köln") < mail.html.index("parcel left")
    assert [(p.filename, p.content_type) for p in mail.parts] == [("logo.png", "image/png"),
                                                                  ("notes.txt", "text/plain")]


def test_an_empty_plain_alternative_is_not_an_attachment() -> None:
    mail = parse_mail(sample("empty-plain-alternative.eml"))
    assert mail.text.strip() == "Only the html has text."
    assert mail.html is not None and "<b>html</b>" in mail.html
    assert [p.filename for p in mail.parts] == ["a.pdf"]


def test_a_text_part_with_a_name_is_an_attachment() -> None:
    raw = (b'From: a@example.com\r\nSubject: x\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n'
           b"--b\r\nContent-Type: text/plain\r\n\r\nbody\r\n"
           b'--b\r\nContent-Type: text/plain; name="log.txt"\r\n\r\nlog line\r\n--b--\r\n')
    mail = parse_mail(raw)
    assert mail.text == "body"
    assert [p.filename for p in mail.parts] == ["log.txt"]


def test_a_single_body_is_unchanged() -> None:
    raw = (b'From: a@example.com\r\nSubject: x\r\nContent-Type: multipart/alternative; boundary="b"\r\n\r\n'
           b"--b\r\nContent-Type: text/plain\r\n\r\nplain\r\n"
           b"--b\r\nContent-Type: text/html\r\n\r\n<p>html</p>\r\n--b--\r\n")
    mail = parse_mail(raw)
    assert (mail.text, mail.parts) == ("plain", [])
    assert mail.html is not None and "html" in mail.html
