"""Replies through the outbox to a real SMTP server (aiosmtpd on loopback, STARTTLS + AUTH):
the sent bytes header by header, threading back, outages, 5xx, bounces and auto-replies."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any
from uuid import UUID

import pytest

from adapters.inbound import arrivals
from api.bootstrap import Services
from api.replies import queue_reply
from domain.conversation import Conversation
from domain.errors import Rejected
from domain.reply import FAILED, QUEUED, SENT, Reply
from domain.routing import RuleSpec
from domain.values import AssignmentStrategy, MailProtocol, ServerSettings, TransportSecurity
from tests.integration.assign_support import assert_replay_matches, team
from tests.integration.assign_support import settle as settle_decisions
from tests.smtp_server import SmtpSink

ADDRESS = "support@acme.example"
IMAP = ServerSettings("imap.acme.example", 993, TransportSecurity.TLS, ADDRESS)


@pytest.fixture
def services(make_services: Callable[..., Services], smtp: SmtpSink, monkeypatch: pytest.MonkeyPatch) -> Services:
    monkeypatch.setenv("MAILROOM_EXTRA_CA_FILE", smtp.ca_file)  # the sink's certificate is trusted
    return make_services(verify_login=lambda *args: None)


def bind(services: Services, smtp: SmtpSink, footer: str = "-- \nAcme Support") -> UUID:
    written, _ = services.app.bind_mailbox(ADDRESS, smtp.password, "Acme Support", MailProtocol.IMAP, IMAP,
                                           smtp.settings())
    services.app.set_reply_settings(written.id, "Re: {subject}", footer)
    return written.id


def customer_mail(subject: str = "Where is my order?", body: str = "Order 1042 has not arrived.\nThanks",
                  message_id: str | None = None, in_reply_to: str | None = None,
                  extra: dict[str, str] | None = None) -> tuple[bytes, str]:
    message = EmailMessage()
    message["From"] = "Jane Doe <jane@customer.example>"
    message["To"] = ADDRESS
    message["Subject"] = subject
    message["Date"] = format_datetime(datetime(2026, 11, 30, 9, 0, tzinfo=UTC))
    message_id = message_id or make_msgid(domain="customer.example")
    message["Message-ID"] = message_id
    if in_reply_to:
        message["In-Reply-To"] = f"<{in_reply_to}>"
        message["References"] = f"<{in_reply_to}>"
    for name, value in (extra or {}).items():
        message[name] = value
    message.set_content(body)
    return bytes(message), message_id.strip("<>")


def take_in(services: Services, mailbox_id: UUID, raw: bytes, source: str) -> Any:
    result = services.app.take_in(mailbox_id, arrivals([(source, raw)], ADDRESS, services.blobs))
    services.projections.wait_for(result.position)
    return result


def opened(services: Services, smtp: SmtpSink) -> tuple[UUID, UUID, str]:
    mailbox_id = bind(services, smtp)
    raw, message_id = customer_mail()
    result = take_in(services, mailbox_id, raw, "imap:INBOX:1:1")
    return mailbox_id, result.conversation_ids[0], message_id


def settle(services: Services, reply_id: UUID, timeout: float = 15.0) -> Reply:
    """Drives the outbox until the reply is SENT or FAILED."""
    deadline = time.monotonic() + timeout
    while True:
        services.outbox.catch_up()
        reply = services.app.reply(reply_id)
        assert reply is not None
        if reply.status != QUEUED or time.monotonic() > deadline:
            services.projections.wait_for(services.projections.head())
            return reply
        time.sleep(0.05)


def test_a_reply_goes_out_once_with_threading_headers_footer_and_quote(services: Services, smtp: SmtpSink) -> None:
    _, conversation_id, customer_id = opened(services, smtp)
    agent_id = services.app.create_agent("Eve", "eve@acme.example", None).id
    written, row = queue_reply(services, conversation_id, agent_id, "It ships today.\nSorry for the wait.")
    assert row["delivery_status"] == "QUEUED" and row["direction"] == "OUTBOUND"
    assert settle(services, written.id).status == SENT
    [sent] = smtp.wait_for(1)
    assert (sent.mail_from, sent.rcpt_tos, sent.authenticated_as) == (ADDRESS, ["jane@customer.example"], smtp.user)
    message = message_from_bytes(sent.data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    ref = services.conversations.conversation(conversation_id)["ref"]  # type: ignore[index]
    assert message["Subject"] == f"Re: Where is my order? [#{ref}]"
    assert message["From"].addresses[0].display_name == "Acme Support"
    assert message["From"].addresses[0].addr_spec == ADDRESS
    assert message["To"].addresses[0].addr_spec == "jane@customer.example"
    assert message["In-Reply-To"] == f"<{customer_id}>"
    assert customer_id in message["References"]
    assert message["Message-ID"] == f"<{row['message_id']}>" and row["message_id"].endswith("@acme.example")
    assert message["Date"].datetime.tzinfo is not None
    text = message.get_body(("plain",)).get_content().replace("\r\n", "\n")  # type: ignore[union-attr]
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert text.startswith("It ships today.\nSorry for the wait.\n\n-- \nAcme Support\n\nOn ")
    assert "> Order 1042 has not arrived.\n> Thanks" in text
    assert "Acme Support</div>" in html and "<blockquote" in html and "Order 1042 has not arrived." in html
    messages = services.conversations.messages(conversation_id)
    assert [(m["direction"], m["delivery_status"]) for m in messages] == [("INBOUND", "RECEIVED"),
                                                                           ("OUTBOUND", "SENT")]
    assert services.conversations.last_handler("jane@customer.example") == str(agent_id)
    services.outbox.catch_up()
    assert len(smtp.messages) == 1  # never again


def test_the_customers_answer_threads_back_with_or_without_in_reply_to(services: Services, smtp: SmtpSink) -> None:
    mailbox_id, conversation_id, _ = opened(services, smtp)
    written, row = queue_reply(services, conversation_id, None, "Which address?")
    settle(services, written.id)
    answer, _ = customer_mail("Re: Where is my order?", "Main street 1", in_reply_to=row["message_id"])
    assert take_in(services, mailbox_id, answer, "imap:INBOX:1:2").opened == 0
    # Outlook-style: In-Reply-To dropped, the reference token kept in the subject
    dropped, _ = customer_mail(row["subject"].replace("Re: ", "AW: "), "and another thing")
    assert take_in(services, mailbox_id, dropped, "imap:INBOX:1:3").opened == 0
    assert len(services.conversations.messages(conversation_id)) == 4
    # our own reply served back to us (a copy in the mailbox) is not taken in again
    copy = take_in(services, mailbox_id, smtp.messages[0].data, "imap:INBOX:1:4")
    assert (copy.opened, copy.taken) == (0, 0)


def test_a_reply_waits_while_the_server_is_down_then_goes_exactly_once(services: Services, smtp: SmtpSink) -> None:
    _, conversation_id, _ = opened(services, smtp)
    smtp.stop()
    written, _ = queue_reply(services, conversation_id, None, "Hello")
    services.outbox.catch_up()
    down = services.app.reply(written.id)
    assert down is not None and down.status == QUEUED and down.attempt == 1
    assert down.reason is not None and "refused" in down.reason
    smtp.start()
    assert settle(services, written.id).status == SENT
    time.sleep(0.3)
    services.outbox.catch_up()
    assert len(smtp.messages) == 1


def test_a_permanent_refusal_fails_the_reply_with_the_servers_reason(services: Services, smtp: SmtpSink) -> None:
    _, conversation_id, _ = opened(services, smtp)
    smtp.respond_with("554 5.7.1 Message rejected by policy")
    written, _ = queue_reply(services, conversation_id, None, "Hello")
    failed = settle(services, written.id)
    assert (failed.status, failed.reason) == (FAILED, "554 5.7.1 Message rejected by policy")
    [message] = [m for m in services.conversations.messages(conversation_id) if m["direction"] == "OUTBOUND"]
    assert message["delivery_status"] == "FAILED"
    assert smtp.messages == []


def test_a_temporary_refusal_is_retried(services: Services, smtp: SmtpSink) -> None:
    _, conversation_id, _ = opened(services, smtp)
    smtp.respond_with("451 4.3.0 Try again later")
    written, _ = queue_reply(services, conversation_id, None, "Hello")
    sent = settle(services, written.id)
    assert (sent.status, sent.attempt) == (SENT, 2)
    assert len(smtp.messages) == 1


def dsn(original_id: str, recipient: str = "jane@customer.example") -> bytes:
    return (
        "From: MAILER-DAEMON@mx.customer.example (Mail Delivery System)\r\n"
        f"To: {ADDRESS}\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        "Date: Mon, 30 Nov 2026 12:00:00 +0000\r\nMessage-ID: <bounce-1@mx.customer.example>\r\n"
        "Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain\r\n\r\nI'm sorry to have to inform you that your message could not\r\n"
        "be delivered to one or more recipients.\r\n\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.customer.example\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        f"Diagnostic-Code: smtp; 550 5.1.1 <{recipient}>: Recipient address rejected: User unknown\r\n\r\n"
        "--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"From: Acme Support <{ADDRESS}>\r\nTo: {recipient}\r\nSubject: Re: Where is my order?\r\n"
        f"Message-ID: <{original_id}>\r\n\r\n--B--\r\n").encode()


def test_a_bounce_fails_the_reply_and_joins_its_conversation_opening_nothing(
        services: Services, smtp: SmtpSink) -> None:
    mailbox_id, conversation_id, _ = opened(services, smtp)
    written, row = queue_reply(services, conversation_id, None, "Hello")
    settle(services, written.id)
    result = take_in(services, mailbox_id, dsn(row["message_id"]), "imap:INBOX:1:9")
    assert (result.opened, result.taken) == (0, 1)
    bounced = services.app.reply(written.id)
    assert bounced is not None and bounced.status == FAILED
    assert bounced.reason is not None and "550 5.1.1" in bounced.reason
    messages = services.conversations.messages(conversation_id)
    assert [(m["direction"], m["delivery_status"]) for m in messages] == [
        ("INBOUND", "RECEIVED"), ("OUTBOUND", "FAILED"), ("INBOUND", "RECEIVED")]
    assert "bounce" in messages[2]["markers"]


def test_an_auto_reply_to_a_reply_sends_nothing_and_reopens_nothing(services: Services, smtp: SmtpSink) -> None:
    mailbox_id, conversation_id, _ = opened(services, smtp)
    written, row = queue_reply(services, conversation_id, None, "Solved, closing.")
    settle(services, written.id)
    services.app.close_conversation(conversation_id)
    vacation, _ = customer_mail("Automatic reply: " + row["subject"], "I am out of office until Monday.",
                                in_reply_to=row["message_id"], extra={"Auto-Submitted": "auto-replied"})
    assert take_in(services, mailbox_id, vacation, "imap:INBOX:1:5").opened == 0
    for _ in range(3):
        services.outbox.catch_up()
    conversation = services.app.find(conversation_id)
    assert isinstance(conversation, Conversation) and conversation.status.value == "CLOSED"
    assert len(smtp.messages) == 1


def test_a_reply_into_a_closed_conversation_reopens_it(services: Services, smtp: SmtpSink) -> None:
    _, conversation_id, _ = opened(services, smtp)
    services.app.close_conversation(conversation_id)
    written, _ = queue_reply(services, conversation_id, None, "One more thing")
    conversation = services.app.find(conversation_id)
    assert isinstance(conversation, Conversation) and conversation.status.value != "CLOSED"
    assert settle(services, written.id).status == SENT


@pytest.mark.parametrize("subject", ["Hi\r\nBcc: evil@example.com", "Hi\u2028Bcc: x", "Hi\u2029x", "Hi\x85x",
                                     "Hi\nx", "x" * 600])
def test_header_injection_in_the_subject_is_refused(services: Services, smtp: SmtpSink, subject: str) -> None:
    _, conversation_id, _ = opened(services, smtp)
    with pytest.raises(Rejected) as refused:
        queue_reply(services, conversation_id, None, "Hello", subject=subject)
    assert refused.value.problems[0].field == ("input", "subject")


@pytest.mark.parametrize("footer", ["-- \u2028Bcc: evil@example.com", "x\ry", "x\x85y", "x\x00y"])
def test_header_injection_in_the_footer_is_refused(services: Services, smtp: SmtpSink, footer: str) -> None:
    mailbox_id = bind(services, smtp)
    with pytest.raises(Rejected):
        services.app.set_reply_settings(mailbox_id, "Re: {subject}", footer)


@pytest.mark.parametrize("name", ["Acme\r\nBcc: evil@example.com", "Acme\u2028Support", "Acme\u2029", "Acme\x85"])
def test_header_injection_in_the_display_name_is_refused(services: Services, smtp: SmtpSink, name: str) -> None:
    with pytest.raises(Rejected):
        services.app.bind_mailbox(ADDRESS, smtp.password, name, MailProtocol.IMAP, IMAP, smtp.settings())


def test_a_mailbox_without_outgoing_settings_cannot_reply(services: Services, smtp: SmtpSink) -> None:
    written, _ = services.app.bind_mailbox("other@acme.example", "pw", "Other", MailProtocol.IMAP, IMAP)
    raw, _ = customer_mail()
    result = services.app.take_in(written.id, arrivals([("imap:INBOX:1:1", raw)], "other@acme.example",
                                                       services.blobs))
    with pytest.raises(Rejected) as refused:
        queue_reply(services, result.conversation_ids[0], None, "Hello")
    assert refused.value.problems[0].code == "NO_OUTGOING_SETTINGS"


def test_two_senders_deliver_each_reply_once(services: Services, make_services: Callable[..., Services],
                                             smtp: SmtpSink) -> None:
    _, conversation_id, _ = opened(services, smtp)
    other = make_services(verify_login=lambda *args: None)
    replies = [queue_reply(services, conversation_id, None, f"Reply {i}")[0].id for i in range(8)]
    stop = threading.Event()

    def drive(s: Services) -> None:
        while not stop.is_set():
            s.outbox.catch_up()
            time.sleep(0.01)

    threads = [threading.Thread(target=drive, args=(s,)) for s in (services, other)]
    for thread in threads:
        thread.start()
    try:
        smtp.wait_for(8, timeout=20)
        deadline = time.monotonic() + 10
        while any(r.status == QUEUED for r in map(services.app.reply, replies) if r) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    ids = [message_from_bytes(m.data)["Message-ID"] for m in smtp.messages]
    assert len(ids) == len(set(ids)) == 8


def test_the_owner_strategies_fall_back_to_the_agent_who_last_replied(services: Services, smtp: SmtpSink) -> None:
    mailbox_id = bind(services, smtp)
    agents, group = team(services, ["ann", "bob"])
    outsider = services.app.create_agent("cid", "cid@acme.example").id  # the owner, outside the group
    services.app.upsert_contact("jane@customer.example", "Jane", owner_id=outsider)
    written = services.app.create_routing_rule(RuleSpec(
        name="Contacts", mailbox_ids=[mailbox_id], group_ids=[group], strategy=AssignmentStrategy.CONTACT_OWNER,
        fallback_strategy=AssignmentStrategy.ROUND_ROBIN))
    settle_decisions(services, written.position)
    first = take_in(services, mailbox_id, customer_mail("First")[0], "imap:INBOX:1:1").conversation_ids[0]
    settle_decisions(services, services.projections.head())
    assert services.conversations.conversation(first)["assignee_id"] == str(agents["ann"])  # type: ignore[index]
    reply, _ = queue_reply(services, first, agents["bob"], "Bob here, I will look into it.")
    settle_decisions(services, reply.position)
    assert services.conversations.last_handler("jane@customer.example") == str(agents["bob"])
    second = take_in(services, mailbox_id, customer_mail("Second")[0], "imap:INBOX:1:2").conversation_ids[0]
    settle_decisions(services, services.projections.head())
    row = services.conversations.conversation(second)
    assert row is not None and row["assignee_id"] == str(agents["bob"])
    [decision] = services.conversations.assignments(second)
    assert decision["strategy"] == "CONTACT_OWNER" and "last handler bob eligible" in decision["reason"]
    assert_replay_matches(services)  # the reply's last handler is re-derived from the log


def test_reply_to_is_honoured_and_never_points_back_at_us(services: Services, smtp: SmtpSink) -> None:
    mailbox_id = bind(services, smtp)
    raw, _ = customer_mail(extra={"Reply-To": f"Orders <orders@customer.example>, {ADDRESS}"})
    conversation_id = take_in(services, mailbox_id, raw, "imap:INBOX:1:1").conversation_ids[0]
    written, row = queue_reply(services, conversation_id, None, "Noted.")
    assert settle(services, written.id).status == SENT
    [sent] = smtp.wait_for(1)
    assert sent.rcpt_tos == ["orders@customer.example"] and row["to_addresses"] == '["orders@customer.example"]'


def test_a_delivery_that_fails_unexpectedly_is_retried_not_left_claimed(
        services: Services, smtp: SmtpSink, monkeypatch: pytest.MonkeyPatch) -> None:
    _, conversation_id, _ = opened(services, smtp)
    written, _ = queue_reply(services, conversation_id, None, "Hello")
    real = services.app.record_handover
    calls: list[int] = []

    def broken_once(*args: Any, **kwargs: Any) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("database is locked")
        real(*args, **kwargs)

    monkeypatch.setattr(services.app, "record_handover", broken_once)
    assert settle(services, written.id).status == SENT
    assert len(smtp.messages) == 1 and len(calls) == 2
