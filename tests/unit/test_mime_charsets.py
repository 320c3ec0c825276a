"""Charsets that lie or are missing (issue 9): samples in tests/data/mime, written for these tests
(the bytes made with Python's codecs; the NEC-extension one as Outlook's CP50220 writes it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.charsets import decode_bytes, decode_header_bytes, guess_cjk
from adapters.mime import parse_mail

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "mime"


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


@pytest.mark.parametrize(
    ("name", "display", "subject", "text"),
    [
        ("gbk-undeclared.eml", "王五", "关于发票的问题",
         "您好，我上个月的发票还没有收到，请帮忙查一下。谢谢！\n王五\n"),  # noqa: RUF001
        ("gbk-subject-latin1-part.eml", "Li Lei", "会议纪要 请查收", "Meeting notes attached."),
        ("gb2312-needs-gb18030.eml", "Zhang San", "朱镕基的讲话", "朱镕基和喆的名字不在 GB2312 里。\n"),
        ("sjis-labelled-iso2022jp.eml", "Tanaka", "お問い合わせ", "注文番号１２３について、まだ届いていません。\n"),
        ("iso2022jp-nec-extensions.eml", "髙橋", "手順①と②", "手順は①、②、③の順です。\n㈱テスト\u3000髙橋\n"),
        ("utf7.eml", "René", "Café crème", "Déjà vu: l'été à Paris ☺\n"),
        ("cp1251-undeclared.eml", "Ivan", "order",
         "Здравствуйте! Мой заказ номер 4471 до сих пор не доставлен. Пожалуйста, проверьте.\n"),
    ],
)
def test_what_the_sender_meant(name: str, display: str, subject: str, text: str) -> None:
    mail = parse_mail(sample(name))
    assert (mail.from_name, mail.subject, mail.text) == (display, subject, text)
    for value in (mail.subject, mail.text, mail.from_name or ""):
        assert "\x1b" not in value and "\ufffd" not in value


def test_iso_2022_jp_never_leaves_escape_sequences() -> None:
    nec = b"\x1b$B-!-\"\x1b(B"  # circled 1 and 2: NEC row 13, not in strict ISO-2022-JP
    assert nec.decode("utf-8") != "①②"  # what a UTF-8 fallback "succeeded" with before
    assert decode_bytes(nec, "iso-2022-jp") == "①②"
    assert decode_bytes(nec) == "①②"  # escapes without a label are ISO-2022 too
    assert decode_bytes("テスト".encode("iso2022_jp"), "iso-2022-jp") == "テスト"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("王五的邮件".encode("gbk"), "王五的邮件"),
        ("這是繁體中文".encode("big5"), "這是繁體中文"),
        ("안녕하세요 여러분".encode("euc-kr"), "안녕하세요 여러분"),
        ("こんにちは、世界".encode("cp932"), "こんにちは、世界"),
        ("ｱｲｳ 髙橋さん".encode("cp932"), "ｱｲｳ 髙橋さん"),
    ],
)
def test_undeclared_cjk_by_shape(data: bytes, expected: str) -> None:
    assert decode_bytes(data) == expected
    assert decode_bytes(data, "us-ascii") == expected


@pytest.mark.parametrize(
    "data",
    ["Formação Verão".encode("latin-1"), "Grüße aus Köln".encode("latin-1"), "compañía".encode("cp1252")],
)
def test_western_text_is_not_taken_for_cjk(data: bytes) -> None:
    assert guess_cjk(data) is None
    assert decode_header_bytes(data, "iso-8859-1") == data.decode("cp1252")
    assert decode_bytes(data) == data.decode("cp1252")


def test_a_cjk_hint_is_trusted_for_headers() -> None:
    assert decode_header_bytes("会议纪要".encode("gbk"), "gb2312") == "会议纪要"
    assert decode_header_bytes("Grüße".encode(), "gb2312") == "Grüße"  # UTF-8 first (RFC 6532)


def test_the_same_bytes_always_decode_the_same() -> None:
    data = sample("cp1251-undeclared.eml")
    assert len({parse_mail(data).text for _ in range(3)}) == 1


def test_a_declared_cjk_charset_with_a_few_bad_bytes_is_still_read_in_it() -> None:
    text = decode_bytes("這是繁體中文".encode("big5") + b"\xff\xfe", "big5")
    assert text.startswith("這是繁體中文")
    assert "Â" not in text and "³" not in text  # not cp1252 mojibake
