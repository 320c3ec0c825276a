"""adapters/smtp.deliver against a real SMTP server (aiosmtpd, tests/smtp_server.py): no mocks."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace

import pytest

from adapters.smtp import DeliveryFailed, deliver
from domain.values import TransportSecurity
from tests.smtp_fixture import SMTP_PASSWORD, SMTP_USER
from tests.smtp_server import Mode, SmtpSink

SENDER = "support@helpdesk.test"
CUSTOMER = "carol@customer.test"
MESSAGE = (
    b"From: Support <support@helpdesk.test>\r\n"
    b"To: carol@customer.test\r\n"
    b"Subject: Re: your order\r\n"
    b"Message-ID: <reply-1@helpdesk.test>\r\n"
    b"\r\n"
    b"Hello Carol,\r\n"
    b".hidden\r\n"
    b".\r\n"
    b"..two dots\r\n"
    b"Regards\r\n"
)


@pytest.fixture(scope="module")
def sinks() -> Iterator[dict[Mode, SmtpSink]]:
    """One sink per mode other than the session's STARTTLS one."""
    made: dict[Mode, SmtpSink] = {"TLS": SmtpSink("TLS", SMTP_USER, SMTP_PASSWORD)}
    try:
        made["NONE"] = SmtpSink("NONE", SMTP_USER, SMTP_PASSWORD)
        yield made
    finally:
        for sink in made.values():
            sink.close()


@pytest.fixture
def tls_sink(sinks: dict[Mode, SmtpSink]) -> SmtpSink:
    sinks["TLS"].reset()
    return sinks["TLS"]


@pytest.fixture
def plain_sink(sinks: dict[Mode, SmtpSink]) -> SmtpSink:
    sinks["NONE"].reset()
    return sinks["NONE"]


def send(sink: SmtpSink, data: bytes = MESSAGE, recipients: list[str] | None = None, **kwargs: object) -> str:
    options: dict[str, object] = {"extra_ca_file": sink.ca_file, "timeout": 5.0, "local_hostname": "mailroom.test"}
    options.update(kwargs)
    password = str(options.pop("password", SMTP_PASSWORD))
    server = options.pop("server", sink.settings())
    return deliver(server, password, SENDER, recipients or [CUSTOMER], data, **options)  # type: ignore[arg-type]


def failure(sink: SmtpSink, **kwargs: object) -> DeliveryFailed:
    with pytest.raises(DeliveryFailed) as caught:
        send(sink, **kwargs)  # type: ignore[arg-type]
    return caught.value


def test_starttls_with_auth_delivers_the_exact_bytes(smtp: SmtpSink) -> None:
    reply = send(smtp)

    (received,) = smtp.wait_for(1)
    assert reply.startswith("250 2.0.0 Ok: queued as SINK")
    assert received.data == MESSAGE  # dot-stuffed on the wire, un-stuffed by the server
    assert received.mail_from == SENDER
    assert received.rcpt_tos == [CUSTOMER]
    assert received.authenticated_as == SMTP_USER
    assert smtp.connections == 1


def test_bare_line_ends_become_crlf_and_a_last_line_end_is_added(smtp: SmtpSink) -> None:
    send(smtp, data=b"Subject: x\n\n.dot\rmiddle\r\nlast")

    (received,) = smtp.wait_for(1)
    assert received.data == b"Subject: x\r\n\r\n.dot\r\nmiddle\r\nlast\r\n"


def test_implicit_tls(tls_sink: SmtpSink) -> None:
    assert tls_sink.settings().security is TransportSecurity.TLS
    assert send(tls_sink).startswith("250 ")

    (received,) = tls_sink.wait_for(1)
    assert (received.data, received.authenticated_as) == (MESSAGE, SMTP_USER)


def test_plaintext_with_and_without_auth(plain_sink: SmtpSink) -> None:
    send(plain_sink)
    send(plain_sink, server=plain_sink.settings(username=""))

    first, second = plain_sink.wait_for(2)
    assert (first.data, first.authenticated_as) == (MESSAGE, SMTP_USER)
    assert (second.data, second.authenticated_as) == (MESSAGE, None)


def test_a_server_without_auth_gets_the_message_without_auth(plain_sink: SmtpSink) -> None:
    plain_sink.offer_auth = False

    send(plain_sink, password="not-checked")

    (received,) = plain_sink.wait_for(1)
    assert (received.data, received.authenticated_as) == (MESSAGE, None)


def test_starttls_is_required_when_configured(plain_sink: SmtpSink) -> None:
    settings = replace(plain_sink.settings(), security=TransportSecurity.STARTTLS)

    failed = failure(plain_sink, server=settings)

    assert not failed.permanent
    assert "STARTTLS" in failed.reason
    assert plain_sink.messages == []


@pytest.mark.parametrize("mode", ["STARTTLS", "TLS"])
def test_an_untrusted_certificate_is_a_temporary_tls_failure(mode: Mode, smtp: SmtpSink, tls_sink: SmtpSink) -> None:
    sink = smtp if mode == "STARTTLS" else tls_sink

    failed = failure(sink, extra_ca_file=None)

    assert not failed.permanent
    assert "TLS" in failed.reason and "CERTIFICATE_VERIFY_FAILED" in failed.reason
    assert sink.messages == []


def test_a_wrong_password_is_permanent_with_the_servers_words(smtp: SmtpSink) -> None:
    password = "Wr0ng-Secret-Pa55"

    failed = failure(smtp, password=password)

    assert failed.permanent
    assert failed.reason == "535 5.7.8 Authentication credentials invalid"
    assert password not in failed.reason and password not in str(failed) and password not in repr(failed)
    assert smtp.messages == []


def test_the_reason_is_short_and_never_holds_the_password(smtp: SmtpSink) -> None:
    smtp.respond_with(f"554 5.7.1 you sent {SMTP_PASSWORD} " + "x" * 600)

    failed = failure(smtp)

    assert failed.reason.startswith("554 5.7.1 you sent ")
    assert len(failed.reason) <= 500
    assert SMTP_PASSWORD not in failed.reason


def test_a_stopped_server_is_a_temporary_connection_refused(smtp: SmtpSink) -> None:
    smtp.stop()
    try:
        failed = failure(smtp)
    finally:
        smtp.start()

    assert not failed.permanent
    assert failed.reason == f"connection refused by 127.0.0.1:{smtp.port}"
    send(smtp)  # the same port serves again
    assert len(smtp.wait_for(1)) == 1


@pytest.mark.parametrize(("reply", "permanent"), [("451 4.3.0 try later", False), ("554 5.7.1 rejected as spam", True)])
def test_a_refused_data_end_is_classified_by_its_code(reply: str, permanent: bool, smtp: SmtpSink) -> None:
    smtp.respond_with(reply)

    failed = failure(smtp)

    assert (failed.reason, failed.permanent) == (reply, permanent)
    assert smtp.messages == []
    assert smtp.data_ends == 1
    send(smtp)  # only the next one was refused
    assert len(smtp.wait_for(1)) == 1


def test_one_refused_recipient_does_not_stop_the_others(smtp: SmtpSink) -> None:
    smtp.reject_rcpt("ghost@customer.test", "550 5.1.1 <ghost@customer.test>: Recipient address rejected")

    send(smtp, recipients=["ghost@customer.test", CUSTOMER])

    (received,) = smtp.wait_for(1)
    assert received.rcpt_tos == [CUSTOMER]


@pytest.mark.parametrize(("second", "permanent"), [("550 5.1.1 no such user", True), ("450 4.2.1 busy", False)])
def test_all_recipients_refused(second: str, permanent: bool, smtp: SmtpSink) -> None:
    smtp.reject_rcpt("ghost@customer.test", "550 5.1.1 <ghost@customer.test>: Recipient address rejected")
    smtp.reject_rcpt(CUSTOMER, second)
    calls: list[int] = []

    failed = failure(smtp, recipients=["ghost@customer.test", CUSTOMER], handing_over=lambda: calls.append(1))

    assert failed.permanent is permanent
    assert "550 5.1.1 <ghost@customer.test>: Recipient address rejected" in failed.reason
    assert second in failed.reason
    assert calls == [] and smtp.data_commands == 0 and smtp.messages == []


class HandOverBroke(Exception):
    pass


@pytest.mark.parametrize("error", [HandOverBroke("outbox row locked"), OSError(28, "No space left on device")])
def test_a_failing_hand_over_leaves_nothing_delivered(error: Exception, smtp: SmtpSink) -> None:
    def handing_over() -> None:
        raise error

    with pytest.raises(type(error)) as caught:
        send(smtp, handing_over=handing_over)

    assert caught.value is error  # unchanged, not turned into a DeliveryFailed
    smtp.wait_for_open_connections(0)  # the server has seen everything the client sent
    assert smtp.data_commands == 1
    assert smtp.data_ends == 0
    assert smtp.messages == []
    send(smtp)
    assert len(smtp.wait_for(1)) == 1


def test_hand_over_is_called_once_after_data_was_accepted(smtp: SmtpSink) -> None:
    seen: list[tuple[int, int, int]] = []

    send(smtp, handing_over=lambda: seen.append((smtp.data_commands, smtp.data_ends, len(smtp.messages))))

    assert seen == [(1, 0, 0)]
    assert len(smtp.wait_for(1)) == 1


def test_a_refused_data_command_is_not_handed_over(smtp: SmtpSink) -> None:
    smtp.refuse_data_command("554 5.5.1 no valid recipients")
    calls: list[int] = []

    failed = failure(smtp, handing_over=lambda: calls.append(1))

    assert (failed.reason, failed.permanent) == ("554 5.5.1 no valid recipients", True)
    assert calls == []


@pytest.mark.parametrize("deliver_before_hold", [True, False])
def test_no_answer_after_the_final_dot_is_a_temporary_failure(deliver_before_hold: bool, smtp: SmtpSink) -> None:
    release = threading.Event()
    smtp.hold_data_end(release, deliver_before_hold=deliver_before_hold)
    try:
        failed = failure(smtp, timeout=0.5)
        smtp.wait_for_open_connections(0)
    finally:
        release.set()

    assert not failed.permanent
    assert "after the final dot" in failed.reason
    assert smtp.data_ends == 1
    # The sink's two ways of being killed mid-answer: queued already, or lost with the client.
    assert len(smtp.messages) == (1 if deliver_before_hold else 0)
