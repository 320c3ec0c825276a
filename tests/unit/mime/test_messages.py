"""parse_mail on small hand-built messages: one rule each."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta, timezone

import pytest

from adapters.mime import Unparseable, decode_bytes, parse_mail

HEAD = b"From: Ann Example <Ann@Example.COM>\r\nTo: support@example.com\r\nSubject: Hello\r\n"


def mail(extra_headers: bytes = b"", body: bytes = b"Hi there.\r\n", head: bytes = HEAD) -> bytes:
    return head + extra_headers + b"\r\n" + body


def multipart(*parts: bytes, subtype: bytes = b"mixed") -> bytes:
    body = b"".join(b"--BND\r\n" + p + b"\r\n" for p in parts) + b"--BND--\r\n"
    return mail(b"MIME-Version: 1.0\r\nContent-Type: multipart/" + subtype + b'; boundary="BND"\r\n', body)


def test_a_plain_message() -> None:
    parsed = parse_mail(mail(b"Message-ID: <abc@example.com>\r\nCc: Bob <bob@example.com>\r\n"))
    assert (parsed.from_address, parsed.from_name) == ("ann@example.com", "Ann Example")
    assert (parsed.to, parsed.cc, parsed.subject, parsed.text) == (
        ["support@example.com"],
        ["bob@example.com"],
        "Hello",
        "Hi there.\n",
    )
    assert (parsed.message_id, parsed.html, parsed.parts, parsed.date) == ("abc@example.com", None, [], None)
    assert (parsed.auto_submitted, parsed.precedence, parsed.is_autoreply, parsed.is_bounce) == (
        None,
        None,
        False,
        False,
    )
    assert parsed.headers["message-id"] == "<abc@example.com>"


# --- loop and noise markers ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (b"Auto-Submitted: auto-replied\r\n", "auto-replied"),
        (b"Auto-Submitted: Auto-Generated\r\n", "auto-generated"),
        (b"Auto-Submitted: no\r\n", None),
        (b"", None),
    ],
)
def test_auto_submitted(header: bytes, expected: str | None) -> None:
    assert parse_mail(mail(header)).auto_submitted == expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (b"Precedence: bulk\r\n", "bulk"),
        (b"Precedence: Junk\r\n", "junk"),
        (b"Precedence: list\r\n", "list"),
        (b"Precedence: first-class\r\n", None),
    ],
)
def test_precedence(header: bytes, expected: str | None) -> None:
    assert parse_mail(mail(header)).precedence == expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (b"X-Autoreply: yes\r\n", True),
        (b"X-Autorespond: Out of office\r\n", True),
        (b"X-Auto-Response-Suppress: All\r\n", True),
        (b"X-Auto-Response-Suppress: DR, OOF, AutoReply\r\n", True),
        (b"X-Auto-Response-Suppress: DR, RN\r\n", False),
        (b"X-Autoreply: no\r\n", False),
        (b"", False),
    ],
)
def test_autoreply_headers(header: bytes, expected: bool) -> None:
    assert parse_mail(mail(header)).is_autoreply is expected


def test_delivery_status_report_is_a_bounce() -> None:
    raw = mail(
        b'MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type="delivery-status"; boundary="R"\r\n',
        b"--R\r\nContent-Type: text/plain\r\n\r\nDelivery failed.\r\n"
        b"--R\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.com\r\n\r\n"
        b"Final-Recipient: rfc822; gone@example.com\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        b"--R--\r\n",
    )
    parsed = parse_mail(raw)
    assert parsed.is_bounce
    assert parsed.text == "Delivery failed."
    [status] = parsed.parts
    assert status.content_type == "message/delivery-status"
    assert b"Status: 5.1.1" in status.data


# --- sender -------------------------------------------------------------------------------------


def test_no_from_but_sender() -> None:
    parsed = parse_mail(b"Sender: Desk <desk@example.org>\r\nSubject: x\r\n\r\nbody\r\n")
    assert (parsed.from_address, parsed.from_name) == ("desk@example.org", "Desk")


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (b"From: not an address\r\nReply-To: r@example.org\r\n", "r@example.org"),
        (b"Return-Path: <bounce@example.org>\r\n", "bounce@example.org"),
        (b"From: undisclosed-recipients:;\r\nSender: s@example.org\r\n", "s@example.org"),
    ],
)
def test_sender_fallbacks(headers: bytes, expected: str) -> None:
    assert parse_mail(headers + b"Subject: x\r\n\r\nbody\r\n").from_address == expected


@pytest.mark.parametrize(
    "raw",
    [
        b"Subject: nobody sent this\r\nTo: a@example.com\r\n\r\nbody\r\n",
        b"From: <>\r\nSubject: not a bounce\r\n\r\nbody\r\n",
    ],
)
def test_no_sender_anywhere_is_unparseable(raw: bytes) -> None:
    with pytest.raises(Unparseable) as caught:
        parse_mail(raw)
    assert caught.value.reason == "no sender address in From, Sender, Reply-To or Return-Path"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "the message is empty"),
        (b" \r\n\r\n", "the message is empty"),
        (
            b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\x00\x00binary",
            "no header section: the data does not start with mail headers",
        ),
        (b"just some text\nwithout headers\n", "no header section: the data does not start with mail headers"),
    ],
)
def test_not_a_mail_is_unparseable(raw: bytes, reason: str) -> None:
    with pytest.raises(Unparseable) as caught:
        parse_mail(raw)
    assert caught.value.reason == reason


# --- addresses, ids, dates, headers --------------------------------------------------------------


def test_to_and_cc_are_lower_cased_deduplicated_and_skip_junk() -> None:
    parsed = parse_mail(
        b"From: a@example.com\r\nTo: B <B@Example.com>, b@example.com, garbage, , c@example.com\r\n"
        b"Cc: Team: d@example.com, e@example.com;, <>\r\n\r\nx\r\n"
    )
    assert parsed.to == ["b@example.com", "c@example.com"]
    assert parsed.cc == ["d@example.com", "e@example.com"]


def test_reply_to() -> None:
    assert parse_mail(mail(b"Reply-To: Help <HELP@example.com>\r\n")).reply_to == "help@example.com"
    assert parse_mail(mail()).reply_to is None


def test_references_and_in_reply_to_in_order() -> None:
    parsed = parse_mail(
        mail(
            b"Message-ID:  < spaced@example.com >\r\n"
            b"In-Reply-To: <third@example.com> (Ann's message of Monday)\r\n"
            b"References: <first@example.com>\r\n <second@example.com>\t<third@example.com>\r\n"
        )
    )
    assert parsed.message_id == "spaced@example.com"
    assert parsed.in_reply_to == ["third@example.com"]
    assert parsed.references == ["first@example.com", "second@example.com", "third@example.com"]


@pytest.mark.parametrize("header", [b"", b"Message-ID:\r\n", b"Message-ID: <>\r\n", b"Message-ID:   \r\n"])
def test_missing_or_empty_message_id(header: bytes) -> None:
    assert parse_mail(mail(header)).message_id is None


def test_message_id_without_brackets() -> None:
    assert parse_mail(mail(b"Message-ID: bare@example.com\r\n")).message_id == "bare@example.com"


def test_folded_headers() -> None:
    parsed = parse_mail(
        b"From: Ann\r\n <ann@example.com>\r\nTo: a@example.com,\r\n\tb@example.com\r\n"
        b"Subject: a subject that is\r\n  folded over\r\n\tthree lines\r\n\r\nbody\r\n"
    )
    assert parsed.subject == "a subject that is folded over three lines"
    assert parsed.to == ["a@example.com", "b@example.com"]
    assert parsed.from_address == "ann@example.com"
    assert "\n" not in parsed.headers["subject"]


def test_encoded_word_subject_with_unknown_charset_does_not_raise() -> None:
    parsed = parse_mail(mail(b"Subject: =?x-no-such-charset?Q?abc?= and =?utf-8?B?w6k=?=\r\n", head=b"From: a@b.c\r\n"))
    assert parsed.subject.endswith("and é")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (b"Date: Tue, 07 May 2013 23:11:57\r\n", datetime(2013, 5, 7, 23, 11, 57, tzinfo=UTC)),
        (b"Date: Tue, 07 May 2013 23:11:57 -0000\r\n", datetime(2013, 5, 7, 23, 11, 57, tzinfo=UTC)),
        (
            b"Date: Tue, 07 May 2013 23:11:57 +0200\r\n",
            datetime(2013, 5, 7, 23, 11, 57, tzinfo=timezone(timedelta(hours=2))),
        ),
        (b"Date: not a date\r\n", None),
        (b"Date: \r\n", None),
        (b"", None),
    ],
)
def test_dates(header: bytes, expected: datetime | None) -> None:
    date = parse_mail(mail(header)).date
    assert date == expected
    assert date is None or date.tzinfo is not None


def test_a_date_without_zone_is_utc() -> None:
    date = parse_mail(mail(b"Date: 7 May 2013 23:11\r\n")).date
    assert date is not None
    assert (date.utcoffset(), date.hour, date.minute) == (timedelta(0), 23, 11)


def test_headers_dict() -> None:
    many = b"".join(b"X-Extra-%d: value %d\r\n" % (i, i) for i in range(300))
    parsed = parse_mail(
        mail(
            b"X-Long: "
            + b"y" * 5000
            + b"\r\nX-Twice: first\r\nX-TWICE: second\r\nX-Word: =?utf-8?Q?caf=C3=A9?=\r\n"
            + many
        )
    )
    assert len(parsed.headers) == 200
    assert parsed.headers["from"] == "Ann Example <Ann@Example.COM>"
    assert parsed.headers["x-long"] == "y" * 2000
    assert parsed.headers["x-twice"] == "first"
    assert parsed.headers["x-word"] == "café"


def test_8bit_header_bytes_do_not_crash() -> None:
    parsed = parse_mail(b"From: J\xf6rg <jorg@example.com>\r\nSubject: Gr\xfc\xdfe \xff\x00!\r\n\r\nbody\r\n")
    assert parsed.from_name == "Jörg"
    assert parsed.subject == "Grüße ÿ!"


# --- bodies -------------------------------------------------------------------------------------


def test_html_only_mail_gets_text_from_the_html() -> None:
    html = b"<html><head><style>p {color: red}</style></head><body><p>Hello&nbsp;<b>Ann</b> &amp; co,</p>"
    html += b"<p>line one<br>line two</p><ul><li>one</li><li>two</li></ul><script>alert(1)</script></body></html>"
    parsed = parse_mail(mail(b"Content-Type: text/html; charset=utf-8\r\n", html))
    assert parsed.text == "Hello\xa0Ann & co,\n\nline one\nline two\n\n- one\n- two"
    assert parsed.html is not None
    assert "<script" not in parsed.html
    assert "<b>Ann</b>" in parsed.html


def test_alternative_picks_text_and_sanitised_html() -> None:
    parsed = parse_mail(
        multipart(
            b"Content-Type: text/plain; charset=utf-8\r\n\r\nPlain version",
            b'Content-Type: text/html; charset=utf-8\r\n\r\n<p onclick="steal()">HTML <i>version</i></p>',
            subtype=b"alternative",
        )
    )
    assert parsed.text == "Plain version"
    assert parsed.html == "<p>HTML <i>version</i></p>"
    assert parsed.parts == []


def test_remote_images_blocked_inline_images_kept() -> None:
    html = (
        b'<p>Logo: <img src="http://tracker.example/pixel.gif" alt="logo">'
        b'<img src="https://cdn.example/a.png"><img src="//cdn.example/b.png">'
        b'<img src="cid:img1@example.com" alt="inline" onerror="alert(1)"></p>'
        b'<a href="javascript:alert(1)" onclick="x()">bad</a> <a href="https://example.com/">good</a>'
    )
    png = b"\x89PNG\r\n\x1a\nfake"
    parsed = parse_mail(
        multipart(
            b"Content-Type: text/html; charset=utf-8\r\n\r\n" + html,
            b"Content-Type: image/png\r\nContent-ID: <img1@example.com>\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            + b"iVBORw0KGgpmYWtl",
            subtype=b"related",
        )
    )
    assert parsed.html is not None
    assert "tracker.example" not in parsed.html
    assert "cdn.example" not in parsed.html
    assert '<img alt="logo">' in parsed.html
    assert '<img src="cid:img1@example.com" alt="inline">' in parsed.html
    assert "onclick" not in parsed.html
    assert "onerror" not in parsed.html
    assert "javascript:" not in parsed.html
    assert '<a href="https://example.com/" rel="noopener noreferrer">good</a>' in parsed.html
    [image] = parsed.parts
    assert (image.content_type, image.content_id, image.inline, image.data) == (
        "image/png",
        "img1@example.com",
        True,
        png,
    )


def test_mislabelled_and_unknown_charsets() -> None:
    latin1_as_utf8 = parse_mail(mail(b"Content-Type: text/plain; charset=utf-8\r\n", b"caf\xe9 cr\xe8me"))
    assert latin1_as_utf8.text == "café crème"
    unknown = parse_mail(mail(b"Content-Type: text/plain; charset=x-no-such-charset\r\n", b"na\xc3\xafve"))
    assert unknown.text == "naïve"
    utf8_as_latin1 = parse_mail(mail(b"Content-Type: text/plain; charset=iso-8859-1\r\n", b"na\xc3\xafve"))
    assert utf8_as_latin1.text == "naïve"
    real_latin1 = parse_mail(mail(b"Content-Type: text/plain; charset=iso-8859-1\r\n", b"na\xefve \x80"))
    assert real_latin1.text == "naïve €"


@pytest.mark.parametrize(
    ("data", "charsets", "expected"),
    [
        (b"caf\xc3\xa9", ("utf-8",), "café"),
        (b"caf\xe9", ("utf-8",), "café"),
        (b"caf\xc3\xa9 et caf\xe9", ("utf-8",), "café et café"),  # mixed: each bad byte as cp1252
        (b"\xc4\xe3\xba\xc3", ("gb2312",), "你好"),
        (b"abc", ("base64",), "abc"),  # not a text codec
        (b"\x81\x8d", (None, ""), "\ufffd\ufffd"),
        (b"a\x00b", ("ascii",), "ab"),
    ],
)
def test_decode_bytes_never_raises(data: bytes, charsets: tuple[str | None, ...], expected: str) -> None:
    assert decode_bytes(data, *charsets) == expected


# --- parts --------------------------------------------------------------------------------------


def test_attachment_fields() -> None:
    payload = bytes(range(256)) * 4
    parsed = parse_mail(
        multipart(
            b"Content-Type: text/plain\r\n\r\nSee attached",
            b'Content-Type: application/octet-stream; name="ignored.bin"\r\n'
            b'Content-Disposition: attachment; filename="../../etc/report.bin"\r\n'
            b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.encodebytes(payload),
            b"Content-Type: message/rfc822\r\n\r\nFrom: inner@example.com\r\nSubject: inner\r\n\r\ninner body\r\n",
        )
    )
    assert parsed.text == "See attached"
    attachment, forwarded = parsed.parts
    assert (attachment.filename, attachment.content_type, attachment.size) == (
        "report.bin",
        "application/octet-stream",
        1024,
    )
    assert (attachment.data, attachment.sha256) == (payload, hashlib.sha256(payload).hexdigest())
    assert (attachment.inline, attachment.content_id) == (False, None)
    assert forwarded.content_type == "message/rfc822"
    assert parse_mail(forwarded.data).subject == "inner"


def test_an_oversize_part_is_kept_without_data() -> None:
    parsed = parse_mail(
        multipart(
            b"Content-Type: text/plain\r\n\r\nBig one attached",
            b'Content-Type: application/pdf\r\nContent-Disposition: attachment; filename="big.pdf"\r\n\r\n'
            + b"x" * 5000,
            b'Content-Type: text/csv\r\nContent-Disposition: attachment; filename="small.csv"\r\n\r\na,b',
        ),
        max_part_bytes=1000,
    )
    big, small = parsed.parts
    assert (big.filename, big.size, big.data, big.sha256) == ("big.pdf", 5000, b"", "")
    assert (small.filename, small.size, small.data) == ("small.csv", 3, b"a,b")
    assert small.sha256 == hashlib.sha256(b"a,b").hexdigest()


def test_too_many_parts_is_unparseable() -> None:
    images = [b"Content-Type: image/png\r\n\r\npart %d" % i for i in range(11)]
    raw = multipart(b"Content-Type: text/plain\r\n\r\nbody", *images)
    assert len(parse_mail(raw, max_parts=12).parts) == 11  # the text/plain is the body
    with pytest.raises(Unparseable) as caught:
        parse_mail(raw, max_parts=11)
    assert caught.value.reason == "more than 11 MIME parts"


def test_unquoted_outlook_express_boundary() -> None:
    raw = mail(
        b"MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=----=_NextPart_000_0001_01C81419\r\n",
        b"------=_NextPart_000_0001_01C81419\r\nContent-Type: text/plain\r\n\r\nthe text\r\n"
        b"------=_NextPart_000_0001_01C81419\r\nContent-Type: text/html\r\n\r\n<p>the html</p>\r\n"
        b"------=_NextPart_000_0001_01C81419--\r\n",
    )
    parsed = parse_mail(raw)
    assert (parsed.text, parsed.html, parsed.parts) == ("the text", "<p>the html</p>", [])


def test_multipart_without_boundary_becomes_text() -> None:
    parsed = parse_mail(mail(b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed\r\n", b"just text\r\n"))
    assert (parsed.text, parsed.parts) == ("just text\n", [])


def nested(depth: int) -> bytes:
    body = b"innermost"
    for i in range(depth):
        body = (
            b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (i, i) + body + b"\r\n--b%d--\r\n" % i
        )
    return b"From: a@example.com\r\n" + body


def test_deep_nesting() -> None:
    assert parse_mail(nested(50)).text == "innermost"
    with pytest.raises(Unparseable) as caught:
        parse_mail(nested(1500), max_parts=10_000)
    assert caught.value.reason == "MIME parts are nested too deeply"


def test_a_huge_subject_is_cut_before_decoding_not_parsed_for_seconds() -> None:
    word = b" =?utf-8?q?Die_hei=C3=9Fe_Zypernsonne?=\r\n"
    parsed = parse_mail(b"From: a@example.com\r\nSubject:" + word * 20_000 + b"\r\nx")  # 800 KB
    assert parsed.subject.startswith("Die heiße Zypernsonne")
    assert len(parsed.subject) < 40_000
