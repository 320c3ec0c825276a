"""Delivery reports (RFC 3464 DSNs and plain mailer-daemon bounces) and auto-replies: ParsedMail.bounce
and is_autoreply over samples shaped like real ones (tests/data/mime/bounces), and the edge cases."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from adapters.inbound import prepare
from adapters.mime import ParsedMail, parse_mail
from domain.mail import BounceReport

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "mime" / "bounces"


def sample(name: str) -> ParsedMail:
    return parse_mail((SAMPLES / name).read_bytes())


# --- the samples ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "original_ids", "reason", "failed"),
    [
        (
            "postfix-dsn-rfc822.eml",
            ("20261130.abc123.k7q2m9xa@support.example.com",),
            "550 5.1.1 <jane.doe@customer.example>: Recipient address rejected: User unknown in virtual mailbox table",
            True,
        ),
        (
            "postfix-dsn-headers.eml",  # the returned headers' Message-ID is folded onto the next line
            ("20261130.def456.p4m8n2qa@support.example.com",),
            "552 5.2.2 <bob@full.example>: Recipient address rejected: Mailbox full",
            True,
        ),
        (
            "exim-plain.eml",  # only the quoted Message-ID line, not In-Reply-To, References or <addresses>
            ("20261130.aa11bb.k7q2m9xb@support.example.com",),
            "550 5.1.1 <m.mustermann@gone.example>: Recipient address rejected: User unknown",
            True,
        ),
        (
            "qmail-failure-notice.eml",  # no SMTP reply: the lines after qmail's greeting and apology
            ("20261130.cc22dd.h3j7k9lm@support.example.com",),
            "<kim@oldhost.example>: Sorry, no mailbox here by that name. (#5.1.1)",
            True,
        ),
        (
            "gmail-dsn.eml",  # the multi-line 550-5.1.1 reply as one, its code once
            ("20261130.ee33ff.q2w3e4r5@support.example.com",),
            "550 5.1.1 The email account that you tried to reach does not exist. Please try double-checking the "
            "recipient's email address for typos or unnecessary spaces. For more information, go to "
            "https://support.google.com/mail/?p=NoSuchUser a640c23a62f3a-a9e5f1b2c3dsi123456ab.12 - gsmtp",
            True,
        ),
        (
            "exchange-ndr-de.eml",  # the returned message's id, then the report's In-Reply-To and References
            ("20261130.1a2b3c.t6y7u8i9@support.example.com", "cab-kunde-77@kunde.example"),
            "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient einkauf@kunde.example not found by SMTP "
            "address lookup",
            True,
        ),
        (
            "delay-dsn.eml",  # Action: delayed: a warning, not a failure; the "X-Postfix;" type dropped
            ("20261130.77aa88.z9x8c7v6@support.example.com",),
            "connect to mx.slow.example[192.0.2.77]:25: Connection timed out",
            False,
        ),
        (
            "garbled-dsn.eml",  # a delivery-status part that is neither base64 nor a report: the text's reason
            ("20261130.99bb00.r4t5y6u7@support.example.com",),
            "<sam@broken.example>: host mx2.broken.example[192.0.2.99] said: 554 5.7.1 <sam@broken.example>: "
            "Relay access denied (in reply to RCPT TO command)",
            True,
        ),
    ],
)
def test_delivery_reports(name: str, original_ids: tuple[str, ...], reason: str, failed: bool) -> None:
    mail = sample(name)
    assert mail.is_bounce
    assert not mail.is_autoreply
    assert mail.bounce == BounceReport(original_ids=original_ids, reason=reason, failed=failed)


@pytest.mark.parametrize(
    "name", ["autoreply-auto-submitted.eml", "autoreply-x-autoreply.eml", "autoreply-subject.eml"]
)
def test_auto_replies_are_no_bounces(name: str) -> None:
    mail = sample(name)
    assert mail.is_autoreply
    assert (mail.is_bounce, mail.bounce) == (False, None)


def test_a_vacation_reply_with_a_null_return_path_is_no_bounce() -> None:
    mail = sample("autoreply-auto-submitted.eml")  # Sieve vacation sends with the null sender too
    assert mail.auto_submitted == "auto-replied (vacation)"
    assert mail.bounce is None


@pytest.mark.parametrize("name", ["customer-delivery-failed.eml", "customer-postmaster.eml"])
def test_customers_writing_about_delivery_are_neither(name: str) -> None:
    mail = sample(name)
    assert (mail.is_bounce, mail.bounce, mail.is_autoreply) == (False, None, False)


def test_the_existing_mailer_daemon_sample_reports_status_and_action() -> None:
    mail = parse_mail((SAMPLES.parent / "bounce-mailer-daemon.eml").read_bytes())
    assert mail.bounce == BounceReport(original_ids=(), reason="5.1.1 failed: nobody@example.org", failed=True)


def test_prepare_carries_the_report_on_the_arrival() -> None:
    raw = (SAMPLES / "postfix-dsn-rfc822.eml").read_bytes()
    plain = (SAMPLES / "customer-postmaster.eml").read_bytes()
    batch = [("imap:INBOX:1:1", raw), ("imap:INBOX:1:2", plain)]
    [bounced, ordinary], _ = prepare(batch, "support@support.example.com")
    assert bounced.bounce is not None
    assert bounced.bounce.original_ids == ("20261130.abc123.k7q2m9xa@support.example.com",)
    assert bounced.mail is not None and "bounce" in bounced.mail.markers
    assert ordinary.bounce is None


# --- DSN details ------------------------------------------------------------------------------------


def report(status: bytes, *, extra_parts: bytes = b"", headers: bytes = b"", encoding: bytes = b"") -> bytes:
    return (
        b"From: MAILER-DAEMON@mx.example.net (Mail Delivery System)\r\nTo: support@support.example.com\r\n"
        b"Subject: Undelivered Mail Returned to Sender\r\n" + headers + b"MIME-Version: 1.0\r\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="R"\r\n\r\n'
        b"--R\r\nContent-Type: text/plain\r\n\r\nThe mail system\r\n\r\n"
        b"--R\r\nContent-Type: message/delivery-status\r\n" + encoding + b"\r\n" + status + b"\r\n"
        + extra_parts + b"--R--\r\n"
    )


PER_MESSAGE = b"Reporting-MTA: dns; mx.example.net\r\n\r\n"


def test_the_first_failed_recipient_gives_the_reason_and_any_failure_fails() -> None:
    status = PER_MESSAGE + (
        b"Final-Recipient: rfc822; slow@example.org\r\nAction: delayed\r\nStatus: 4.4.1\r\n"
        b"Diagnostic-Code: smtp; 421 4.4.1 try later\r\n\r\n"
        b"Final-Recipient: rfc822; gone@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        b"Diagnostic-Code: smtp; 550 5.1.1 gone\r\n"
    )
    assert parse_mail(report(status)).bounce == BounceReport(original_ids=(), reason="550 5.1.1 gone", failed=True)


@pytest.mark.parametrize("action", [b"delayed", b"delivered", b"relayed", b"expanded", b"Delayed (retrying)"])
def test_delay_and_success_notices_are_not_failures(action: bytes) -> None:
    status = PER_MESSAGE + b"Final-Recipient: rfc822; a@example.org\r\nAction: " + action + b"\r\nStatus: 2.0.0\r\n"
    bounce = parse_mail(report(status)).bounce
    assert bounce is not None and not bounce.failed
    assert bounce.reason == f"2.0.0 {action.decode().lower()}: a@example.org"


def test_a_base64_delivery_status_part_is_decoded() -> None:
    block = b"Final-Recipient: rfc822; a@example.org\r\nAction: failed\r\nDiagnostic-Code: smtp; 550 no such user\r\n"
    status = base64.encodebytes(PER_MESSAGE + block)
    bounce = parse_mail(report(status, encoding=b"Content-Transfer-Encoding: base64\r\n")).bounce
    assert bounce is not None and bounce.reason == "550 no such user"


def test_a_report_without_blank_lines_between_blocks_still_reads() -> None:
    status = b"Reporting-MTA: dns; mx.example.net\r\nFinal-Recipient: rfc822; a@example.org\r\nAction: failed\r\n"
    bounce = parse_mail(report(status)).bounce
    assert bounce == BounceReport(original_ids=(), reason="failed: a@example.org", failed=True)


def test_ids_are_normalised_and_deduplicated_in_order() -> None:
    returned = (
        b"--R\r\nContent-Type: message/rfc822\r\n\r\nFrom: a@support.example.com\r\n"
        b"Message-ID: < 20261130.X.ABC@Support.Example.Com >\r\n\r\nbody\r\n"
    )
    headers = (
        b"In-Reply-To: <20261130.x.abc@support.example.com>\r\n"
        b"References: <first@example.org> <20261130.X.ABC@support.example.com>\r\n"
    )
    status = PER_MESSAGE + b"Final-Recipient: rfc822; a@example.org\r\nAction: failed\r\n"
    bounce = parse_mail(report(status, extra_parts=returned, headers=headers)).bounce
    assert bounce is not None
    assert bounce.original_ids == ("20261130.x.abc@support.example.com", "first@example.org")


@pytest.mark.parametrize(
    "returned",
    [
        b"--R\r\nContent-Type: message/rfc822\r\n\r\nthis is not a message at all\r\n",
        b"--R\r\nContent-Type: message/rfc822\r\n\r\n",
        b"--R\r\nContent-Type: text/rfc822-headers\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!\r\n",
        b"--R\r\nContent-Type: message/rfc822\r\n\r\nMessage-ID: no brackets here\r\n",
    ],
)
def test_broken_returned_parts_give_no_ids_and_no_error(returned: bytes) -> None:
    status = PER_MESSAGE + b"Final-Recipient: rfc822; a@example.org\r\nAction: failed\r\nStatus: 5.0.0\r\n"
    bounce = parse_mail(report(status, extra_parts=returned)).bounce
    assert bounce is not None and bounce.failed
    assert all("@" in i for i in bounce.original_ids)


def test_the_reason_is_cut_to_500_characters() -> None:
    diagnostic = b"Diagnostic-Code: smtp; 550 " + b"very long " * 200 + b"\r\n"
    status = PER_MESSAGE + b"Final-Recipient: rfc822; a@example.org\r\nAction: failed\r\n" + diagnostic
    bounce = parse_mail(report(status)).bounce
    assert bounce is not None and len(bounce.reason) == 500 and bounce.reason.startswith("550 very long")


# --- plain bounces --------------------------------------------------------------------------------


def plain(headers: bytes, body: bytes = b"Sorry.\r\n") -> bytes:
    return headers + b"To: support@support.example.com\r\n\r\n" + body


@pytest.mark.parametrize(
    "headers",
    [
        b"From: MAILER-DAEMON@mx.example.net\r\nSubject: failure notice\r\n",
        b"From: Mail Delivery System <Mailer-Daemon@mx.example.net>\r\n"
        b"Subject: Mail delivery failed: returning message to sender\r\n",
        b"From: postmaster@corp.example\r\nSubject: Undeliverable: Re: your ticket\r\n",
        b"From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>\r\n"
        b"Subject: Delivery Status Notification (Failure)\r\n",
        b"Return-Path: <>\r\nFrom: Mail System <noreply@mx.example.net>\r\nSubject: Returned mail: User unknown\r\n",
        b"From: MAILER-DAEMON@mx.example.net\r\nX-Failed-Recipients: a@example.org\r\nSubject: Problem\r\n",
        b"From: postmaster@firma.example\r\nSubject: Unzustellbar: Ihre Anfrage\r\n",
        b"From: MAILER-DAEMON (Mail Delivery System)\r\nReturn-Path: <>\r\n"
        b"Message-ID: <1@mx.example.net>\r\nSubject: Undelivered Mail Returned to Sender\r\n",
    ],
)
def test_plain_bounces(headers: bytes) -> None:
    mail = parse_mail(plain(headers, b"<a@example.org>: host mx said: 550 5.1.1 User unknown\r\n"))
    assert mail.is_bounce and not mail.is_autoreply
    assert mail.bounce == BounceReport(
        original_ids=(), reason="<a@example.org>: host mx said: 550 5.1.1 User unknown", failed=True
    )


@pytest.mark.parametrize(
    "headers",
    [
        b"From: Ann <ann@example.org>\r\nSubject: Undeliverable: my parcel\r\n",  # a customer's words
        b"From: Ann <ann@example.org>\r\nReturn-Path: <ann@example.org>\r\nSubject: failure notice\r\n",
        b"From: postmaster@shop.example\r\nSubject: Re: Mail delivery failed: returning message to sender\r\n",
        b"From: postmaster@shop.example\r\nSubject: Question about delivery\r\n",
        b"Return-Path: <>\r\nFrom: Ann <ann@example.org>\r\nSubject: Hello\r\n",  # a null path alone
    ],
)
def test_not_plain_bounces(headers: bytes) -> None:
    mail = parse_mail(plain(headers))
    assert (mail.is_bounce, mail.bounce) == (False, None)


def test_a_plain_delay_warning_is_not_a_failure() -> None:
    raw = plain(b"From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>\r\n"
                b"Subject: Delivery Status Notification (Delay)\r\n", b"Delivery incomplete\r\n")
    assert parse_mail(raw).bounce == BounceReport(original_ids=(), reason="Delivery incomplete", failed=False)


def test_a_plain_bounce_without_text_gives_its_subject() -> None:
    raw = plain(b"From: MAILER-DAEMON@mx.example.net\r\nSubject: failure notice\r\n", b"\r\n")
    assert parse_mail(raw).bounce == BounceReport(original_ids=(), reason="failure notice", failed=True)


def test_quoted_message_id_lines_only_before_and_after_greeting() -> None:
    body = (
        b"Hi. This is the qmail-send program at mx.example.net.\r\n"
        b"<a@example.org>:\r\nmailbox unavailable\r\n\r\n"
        b"--- Below this line is a copy of the message.\r\n\r\n"
        b"From: <support@support.example.com>\r\nTo: <a@example.org>\r\n"
        b"In-Reply-To: <customer@example.org>\r\n"
        b"Message-Id:\r\n  <20261130.Q.QUOTED@support.example.com>\r\n"
        b"> Message-ID: <second@support.example.com>\r\n"
    )
    bounce = parse_mail(plain(b"From: MAILER-DAEMON@mx.example.net\r\nSubject: failure notice\r\n", body)).bounce
    assert bounce == BounceReport(
        original_ids=("20261130.q.quoted@support.example.com", "second@support.example.com"),
        reason="<a@example.org>: mailbox unavailable",
        failed=True,
    )


# --- auto-replies ---------------------------------------------------------------------------------


def message(headers: bytes, subject: bytes = b"Re: Your ticket") -> bytes:
    return b"From: Ann <ann@example.org>\r\nTo: support@support.example.com\r\nSubject: " + subject + b"\r\n" + (
        headers + b"\r\nHello\r\n"
    )


@pytest.mark.parametrize(
    "headers",
    [
        b"Auto-Submitted: auto-replied\r\n",
        b"X-Autoreply: yes\r\n",
        b"X-Autorespond: I am away\r\n",
        b"X-Mail-Autoreply: 1\r\n",
        b"X-Autoreply-From: ann@example.org\r\n",
        b"Precedence: auto_reply\r\n",
        b"X-Precedence: auto_reply\r\n",
        b"X-Autogenerated: Reply\r\n",
        b"X-Mailer: vacation/1.2.7\r\n",
        b"X-Auto-Response-Suppress: OOF\r\n",
    ],
)
def test_autoreply_headers(headers: bytes) -> None:
    assert parse_mail(message(headers)).is_autoreply


@pytest.mark.parametrize(
    "subject",
    [
        b"Auto: Re: Your ticket",
        b"Automatic reply: Your ticket",
        b"AUTOMATIC REPLY: Your ticket",
        b"Autoreply: Your ticket",
        b"Out of Office: Your ticket",
        b"Out of Office AutoReply: Your ticket",
        b"out of office",
        b"Abwesenheitsnotiz: Ihre Anfrage",
        b"Automatische Antwort: Ihre Anfrage",
        b"=?utf-8?q?R=C3=A9ponse_automatique=C2=A0:_Votre_demande?=",
    ],
)
def test_autoreply_subjects(subject: bytes) -> None:
    assert parse_mail(message(b"", subject)).is_autoreply


@pytest.mark.parametrize(
    ("headers", "subject"),
    [
        (b"", b"Re: Automatic reply from your system"),
        (b"", b"Out of office hours support?"),
        (b"", b"Automobile parts"),
        (b"Auto-Submitted: auto-generated\r\n", b"Your invoice"),  # a notification: only auto_submitted
        (b"Auto-Submitted: no\r\n", b"Hello"),
        (b"X-Autoreply: no\r\n", b"Hello"),
        (b"X-Mailer: Microsoft Outlook 16.0\r\n", b"Hello"),
        (b"Precedence: bulk\r\n", b"Newsletter"),
    ],
)
def test_not_autoreplies(headers: bytes, subject: bytes) -> None:
    assert not parse_mail(message(headers, subject)).is_autoreply


def test_a_bounce_is_not_an_autoreply() -> None:
    raw = plain(b"From: postmaster@corp.example\r\nAuto-Submitted: auto-replied\r\nX-Autoreply: yes\r\n"
                b"Subject: Undeliverable: Automatic reply: Your ticket\r\n")
    mail = parse_mail(raw)
    assert mail.is_bounce and not mail.is_autoreply
