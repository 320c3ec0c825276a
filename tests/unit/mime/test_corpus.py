"""parse_mail over the shared corpus (tests/data/corpus, see its SOURCES.md and INVENTORY.tsv)."""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime
from pathlib import Path

import pytest

from adapters.mime import ParsedMail, Unparseable, parse_mail
from tests.unit.mime.corpus import CORPUS, corpus_bytes, corpus_files

NO_SENDER = "no sender address in From, Sender, Reply-To or Return-Path"
NO_HEADERS = "no header section: the data does not start with mail headers"
# Every corpus file that is quarantined, and why. Anything else in the corpus must parse.
QUARANTINED = {
    "cpython-email-3.11.7/msg_11.txt": NO_SENDER,
    "cpython-email-3.11.7/msg_18.txt": NO_SENDER,
    "cpython-email-3.11.7/msg_19.txt": NO_HEADERS,  # a digest body without headers
    "cpython-email-3.11.7/msg_37.txt": NO_SENDER,
    "cpython-email-3.11.7/msg_38.txt": NO_SENDER,
    "cpython-email-3.11.7/msg_39.txt": NO_SENDER,
    "cpython-email-3.11.7/msg_40.txt": NO_SENDER,
    "flanker/attached-pdf.eml": NO_SENDER,
    "flanker/bounce/delayed-broken.eml": NO_SENDER,
    "mail-parser/non-rfc822/mail_outlook_1.msg": NO_HEADERS,  # an Outlook .msg (OLE file)
    "mikel-mail/error_emails/bad_encoded_subject.eml": NO_SENDER,
    "mikel-mail/rfc2822/example13.eml": NO_HEADERS,  # obsolete "From  :" syntax
    **{f"tnefparse/{p.name}": NO_HEADERS for p in (CORPUS / "tnefparse").glob("*.tnef")},  # raw TNEF streams
}


def _id(path: Path) -> str:
    return path.relative_to(CORPUS).as_posix()


def parse(relative: str) -> ParsedMail:
    return parse_mail(corpus_bytes(relative))


@pytest.mark.parametrize("path", corpus_files(), ids=_id)
def test_every_corpus_file_parses_or_is_quarantined_with_a_reason(path: Path) -> None:
    try:
        mail = parse_mail(path.read_bytes())
    except Unparseable as exc:
        assert exc.reason.strip()
        assert len(exc.reason) < 300
        return
    assert "@" in mail.from_address
    assert mail.from_address == mail.from_address.lower()
    assert isinstance(mail.subject, str)
    assert "\r" not in mail.subject
    assert "\n" not in mail.subject
    assert isinstance(mail.text, str)
    assert "\r" not in mail.text
    for text in (mail.text, mail.subject, mail.html or "", *mail.headers.values()):
        assert "\x00" not in text
        text.encode("utf-8")  # no lone surrogates: storable anywhere
    if mail.html is not None:
        lowered = mail.html.lower()
        assert "<script" not in lowered
        assert "onerror=" not in lowered
        assert "javascript:" not in lowered
    assert mail.date is None or mail.date.tzinfo is not None
    assert len(mail.headers) <= 200
    assert all(k == k.lower() and len(v) <= 2000 for k, v in mail.headers.items())
    for part in mail.parts:
        assert part.size == len(part.data)
        assert part.sha256 == hashlib.sha256(part.data).hexdigest()
        assert not part.content_type.startswith("multipart/")


def test_the_quarantined_corpus_files_and_their_reasons() -> None:
    found = {}
    for path in corpus_files():
        try:
            parse_mail(path.read_bytes())
        except Unparseable as exc:
            found[_id(path)] = exc.reason
    assert found == QUARANTINED


def test_the_corpus_copy_is_complete() -> None:
    listed = [line.split("\t")[0] for line in (CORPUS / "INVENTORY.tsv").read_text().splitlines()[2:]]
    assert sorted(listed) == [_id(p) for p in corpus_files()]
    for line in (CORPUS / "INVENTORY.tsv").read_text().splitlines()[2:]:
        name, size = line.split("\t")[:2]
        assert (CORPUS / name).stat().st_size == int(size), name


# --- encoded words and charsets -------------------------------------------------------------


@pytest.mark.parametrize(
    ("relative", "subject"),
    [
        ("mail-parser/mail_test_12", "代开各地增值税发票"),  # GB2312, B
        ("mail-parser/mail_test_5", "Je prépare mon été zéro complexe !"),  # ISO-8859-1, Q
        ("mail-parser/mail_test_6", "Быстрее вкладывайте в золото!"),  # UTF-8, B, folded
        ("mikel-mail/multi_charset/japanese_iso_2022.eml", "まみむめも"),
        ("mikel-mail/plain_emails/raw_email_with_partially_quoted_subject.eml", 'Re: Test: "漢字" mid "漢字" tail'),
        ("flanker/bilingual-simple.eml", "Simple text. How are you? Как ты поживаешь?"),
        ("flanker/long-header.eml", "Die heiße Zypernsonne quälte Max und Victoria ja böse auf dem Weg bis zur Küste"),
    ],
)
def test_encoded_word_subjects_are_decoded(relative: str, subject: str) -> None:
    assert parse(relative).subject.startswith(subject)


def test_gb2312_words_are_read_as_gb18030_so_no_character_is_lost() -> None:
    subject = parse("mail-parser/mail_test_9").subject
    assert subject.startswith("我把镜头拉近些，你们看看这个是什么")  # noqa: RUF001
    assert subject.endswith("这种场合自然少不了内射")
    assert "\ufffd" not in subject


def test_raw_utf8_headers() -> None:
    mail = parse("mikel-mail/rfc6532/utf8_headers.eml")
    assert (mail.from_address, mail.from_name, mail.to, mail.subject) == (
        "jdöe@mächine.example",
        "Jöhn Doe",
        ["märy@exämple.net"],
        "Säying Hello",
    )


def test_raw_8bit_subject_and_display_name() -> None:
    mail = parse("mikel-mail/error_emails/invalid_subject_characters.eml")
    assert mail.subject == "Formação FrenetikPolis: Mega Campanha Final Verão | Cursos de Setembro"
    assert mail.from_name == "Formação Frenetikpolis"


@pytest.mark.parametrize(
    ("relative", "text"),
    [
        ("mikel-mail/multi_charset/japanese_shift_jis.eml", "あいうえお\n\nこのメールはテスト用のメールです。"),
        ("mikel-mail/multi_charset/ks_c_5601-1987.eml", "스티해"),
    ],
)
def test_legacy_asian_charsets(relative: str, text: str) -> None:
    assert parse(relative).text.startswith(text)


def test_a_body_labelled_latin1_but_written_in_utf8_is_read_as_utf8() -> None:
    mail = parse("mikel-mail/error_emails/content_transfer_encoding_7-bit.eml")  # charset="iso-8859-1"
    assert mail.text.startswith("DISCOVERÆ CARD")
    assert "Ã" not in mail.text
    assert mail.html is not None and "DISCOVERÆ CARD" in mail.html


def test_one_bad_byte_in_a_utf8_body_does_not_garble_the_rest() -> None:
    mail = parse("mail-parser/mail_test_6")  # 0xD1 0x66 in the middle of the UTF-8 html
    assert mail.text.startswith("Профиль")
    assert "Ð" not in mail.text


# --- structure ----------------------------------------------------------------------------------


@pytest.mark.parametrize("relative", ["mail-parser/mail_test_12", "mail-parser/mail_test_14", "flanker/multipart.eml"])
def test_no_message_id(relative: str) -> None:
    assert parse(relative).message_id is None


def test_message_id_and_date() -> None:
    mail = parse("mail-parser/mail_test_8")
    assert mail.message_id == "3615343813390903615122237013831979@lyeo00hp.moneytrack.top"
    assert mail.date == datetime.fromisoformat("2017-03-07T14:29:24-08:00")


def test_multipart_alternative_gives_text_and_sanitised_html() -> None:
    mail = parse("mail-parser/mail_test_8")
    assert mail.text.startswith('"The Perfect Filler Between Real World Flying"\nImagine "Real Life" Flying')
    assert mail.html is not None
    assert '<strong>"The Perfect Filler Between Real World Flying" </strong>' in mail.html
    assert 'src="http' not in mail.html
    assert "style=" not in mail.html
    assert mail.parts == []


def test_multipart_related_inline_images_are_parts_with_content_ids() -> None:
    mail = parse("mail-parser/mail_test_6")
    assert mail.html is not None
    assert [p.content_type for p in mail.parts] == ["image/png"] * 4
    assert all(p.inline and p.content_id for p in mail.parts)
    assert all(p.data.startswith(b"\x89PNG") for p in mail.parts)
    assert all(f'src="cid:{p.content_id}"' in mail.html for p in mail.parts)


@pytest.mark.parametrize(
    ("relative", "filename", "content_type", "size", "sha256"),
    [
        (
            "flanker/bz2-attachment.eml",
            "foo.txt.bz2",
            "application/octet-stream",
            44,
            "9f8dd0e08942d473209dd20d7a5b3e2fd131a34267b9f3f4771ed81c8ff5ee8c",
        ),
        (
            "cpython-email-3.11.7/msg_07.txt",
            "dingusfish.gif",
            "image/gif",
            3512,
            "354288075c6cd6c6a99180ef60b99f599b4e3d6c28bd67c29adc736079e52a84",
        ),
        (
            "mikel-mail/attachment_emails/attachment_pdf.eml",
            "broken.pdf",
            "application/pdf",
            1026,
            "c7d1b9b20df8a2bf2f1e0d00d84bcb56d05e56a044be7f3616f6e99f4a18bd0d",
        ),
    ],
)
def test_attachments(relative: str, filename: str, content_type: str, size: int, sha256: str) -> None:
    mail = parse(relative)
    assert len(mail.parts) == 1
    part = mail.parts[0]
    assert (part.filename, part.content_type, part.size, part.sha256) == (filename, content_type, size, sha256)
    assert (part.inline, part.content_id) == (False, None)
    assert hashlib.sha256(part.data).hexdigest() == sha256
    assert mail.text  # the body is not an attachment


@pytest.mark.parametrize(
    ("relative", "filename"),
    [
        ("mikel-mail/attachment_emails/attachment_nonascii_filename.eml", "ciële.txt"),  # RFC 2231
        ("mikel-mail/multi_charset/japanese_attachment.eml", "てすと.txt"),
        ("mikel-mail/attachment_emails/attachment_with_base64_encoded_name.eml", "This is a test.pdf"),  # name==?..?=
        ("mikel-mail/attachment_emails/attachment_with_unquoted_name.eml", "This is a test.txt"),
        ("mikel-mail/attachment_emails/attachment_with_quoted_filename.eml", "Eelanalüüsi päring.jpg"),
    ],
)
def test_encoded_and_sloppy_filenames(relative: str, filename: str) -> None:
    assert [p.filename for p in parse(relative).parts] == [filename]


def test_message_rfc822_attachment() -> None:
    mail = parse("mikel-mail/attachment_emails/attachment_message_rfc822.eml")
    [part] = mail.parts
    assert (part.filename, part.content_type) == ("ForwardedMessage.eml", "message/rfc822")
    inner = parse_mail(part.data)
    assert inner.from_address and inner.subject


def test_outlook_express_unquoted_boundary_is_repaired() -> None:
    mail = parse("mikel-mail/mime_emails/raw_email_with_illegal_boundary.eml")  # boundary=----=_NextPart_000_...
    assert mail.text.strip()
    assert mail.html is not None
    assert mail.parts == []


def test_the_nul_byte_file() -> None:
    raw = corpus_bytes("mail-parser/mail_malformed_3")
    assert b"\x00" in raw
    for variant in (raw, raw.replace(b"\x00", b"\x80")):  # Dovecot serves NUL as 0x80
        mail = parse_mail(variant)
        assert mail.subject == "Ahorre Dinero en su Recibo de Luz"
        assert mail.text.startswith("Problemas para visualizar | Ver on-line")
        assert mail.html is not None and "\x00" not in mail.html


@pytest.mark.parametrize(
    "relative",
    [
        "flanker/bounce/mailbox-full.eml",
        "flanker/bounce/office365.eml",
        "flanker/bounce/delayed.eml",
        "mikel-mail/multipart_report_emails/report_530.eml",
        "mail-parser/mail_malformed_2",
    ],
)
def test_delivery_status_reports_are_bounces(relative: str) -> None:
    mail = parse(relative)
    assert mail.is_bounce
    assert "message/delivery-status" in [p.content_type for p in mail.parts]


@pytest.mark.parametrize(
    "relative",
    ["flanker/complaints/aol.eml", "flanker/disposition-notification.eml", "mikel-mail/plain_emails/basic_email.eml"],
)
def test_other_reports_and_plain_mail_are_not_bounces(relative: str) -> None:
    assert not parse(relative).is_bounce


@pytest.mark.parametrize("name", ["one-file.tnef", "two-files.tnef", "garbage-at-end.tnef"])
def test_tnef_winmail_dat_is_just_an_attachment(name: str) -> None:
    tnef = corpus_bytes(f"tnefparse/{name}")
    encoded = base64.encodebytes(tnef)
    raw = (
        b"From: Outlook User <user@example.com>\r\nTo: support@example.com\r\nSubject: winmail\r\n"
        b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b1"\r\n\r\n'
        b"--b1\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nSee attached.\r\n"
        b'--b1\r\nContent-Type: application/ms-tnef; name="winmail.dat"\r\n'
        b'Content-Disposition: attachment; filename="winmail.dat"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
        + encoded.replace(b"\n", b"\r\n")
        + b"--b1--\r\n"
    )
    mail = parse_mail(raw)
    assert mail.text == "See attached."
    [part] = mail.parts
    assert (part.filename, part.content_type, part.data) == ("winmail.dat", "application/ms-tnef", tnef)
