"""Replies through the served API: replyToConversation answers at once with the message QUEUED,
the workers of `mailroom serve` deliver it to a real SMTP server (STARTTLS + AUTH with the
mailbox's credentials), the customer's answer synced from Dovecot threads back, and who may
reply: ADMIN, agents of the conversation's groups, never an AUDITOR."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.dovecot import Dovecot
from tests.e2e.conftest import Server, cli_token, error_codes
from tests.e2e.intake_helpers import BIND, sync
from tests.integration.intake_support import mail
from tests.smtp_server import SmtpSink

REPLY = """mutation($input: ReplyInput!) { replyToConversation(input: $input) {
    message { id direction messageId from fromName to subject text html deliveryStatus }
    userErrors { field message code } } }"""
MESSAGES = """query($id: UUID!) { conversation(id: $id) { status messages { direction deliveryStatus subject } } }"""
LIST = "{ conversations { edges { node { id subject status } } } }"


@pytest.fixture(scope="module")
def desk(start_server: Callable[..., Server], dovecot: Dovecot, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[dict[str, Any]]:
    user, password = f"replies-{secrets.token_hex(4)}", "reply pass " + secrets.token_hex(4)
    dovecot.add_user(user, password)
    sink = SmtpSink("STARTTLS", user, password)  # AUTH with the mailbox's own credentials
    trusted = tmp_path_factory.mktemp("ca") / "trusted.pem"
    trusted.write_text(Path(dovecot.ca_file).read_text() + Path(sink.ca_file).read_text())
    server = start_server(MAILROOM_EXTRA_CA_FILE=str(trusted), MAILROOM_POLL_SECONDS="3600")
    admin = cli_token(server.env, server.dir, "ADMIN", "admin")
    address = f"help-{secrets.token_hex(3)}@helpdesk.example"
    bound = server.gql(admin, BIND, input={
        "address": address, "password": password, "displayName": "Helpdesk", "protocol": "IMAP",
        "incoming": {"host": dovecot.host, "port": dovecot.imaps_port, "security": "TLS", "username": user},
        "outgoing": {"host": sink.host, "port": sink.port, "security": "STARTTLS", "username": user},
    })["bindMailbox"]
    assert bound["userErrors"] == [], bound
    mailbox_id = bound["mailbox"]["id"]
    agent = server.gql(admin, """mutation($i: CreateAgentInput!) { createAgent(input: $i) { agent { id } } }""",
                       i={"name": "ann", "email": f"ann-{secrets.token_hex(3)}@desk.example"})["createAgent"]
    ann_id = agent["agent"]["id"]
    group = server.gql(admin, """mutation($i: CreateAgentGroupInput!) { createAgentGroup(input: $i) {
        group { id } } }""", i={"name": "Tier 1", "memberIds": [ann_id]})["createAgentGroup"]["group"]["id"]
    server.gql(admin, """mutation($i: RoutingRuleInput!) { createRoutingRule(input: $i) { rule { id } } }""",
               i={"name": "All", "mailboxIds": [mailbox_id], "groupIds": [group], "strategy": "ROUND_ROBIN"})
    other = server.gql(admin, """mutation($i: CreateAgentInput!) { createAgent(input: $i) { agent { id } } }""",
                       i={"name": "zed", "email": f"zed-{secrets.token_hex(3)}@desk.example"})["createAgent"]
    dovecot.append(user, mail(subject="Broken invoice", sender="jane@customer.example", to=address,
                              message_id="<q1@customer.example>", body="Invoice 7 is wrong."))
    assert sync(server, admin, mailbox_id)["userErrors"] == []
    [conversation] = [e["node"] for e in server.gql(admin, LIST)["conversations"]["edges"]]
    try:
        yield {"server": server, "admin": admin, "sink": sink, "conversation": conversation["id"], "user": user,
               "address": address, "mailbox": mailbox_id, "dovecot": dovecot,
               "ann": cli_token(server.env, server.dir, "AGENT", "ann", agent_id=ann_id),
               "zed": cli_token(server.env, server.dir, "AGENT", "zed", agent_id=other["agent"]["id"]),
               "auditor": cli_token(server.env, server.dir, "AUDITOR", "audit")}
    finally:
        sink.close()


def statuses(desk: dict[str, Any], token: str | None = None) -> list[tuple[str, str]]:
    found = desk["server"].gql(token or desk["admin"], MESSAGES, id=desk["conversation"])["conversation"]
    return [(m["direction"], m["deliveryStatus"]) for m in found["messages"]]


def wait_sent(desk: dict[str, Any], count: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while sum(1 for d, s in statuses(desk) if d == "OUTBOUND" and s == "SENT") < count:
        assert time.monotonic() < deadline, statuses(desk)
        time.sleep(0.1)


def test_an_agent_replies_queued_at_once_then_sent_once(desk: dict[str, Any]) -> None:
    server, sink = desk["server"], desk["sink"]
    answer = server.gql(desk["ann"], REPLY, input={"conversationId": desk["conversation"],
                                                   "body": "We fixed invoice 7."})["replyToConversation"]
    assert answer["userErrors"] == []
    message = answer["message"]
    assert (message["direction"], message["deliveryStatus"]) == ("OUTBOUND", "QUEUED")
    assert message["from"] == desk["address"] and message["fromName"] == "Helpdesk"
    assert message["to"] == ["jane@customer.example"] and message["subject"].startswith("Re: Broken invoice [#")
    assert "We fixed invoice 7." in message["text"] and "-- \nHelpdesk" in message["text"]
    assert ("OUTBOUND", "QUEUED") in statuses(desk) or ("OUTBOUND", "SENT") in statuses(desk)  # read-your-writes
    wait_sent(desk, 1)
    [sent] = sink.wait_for(1)
    parsed = message_from_bytes(sent.data, policy=policy.default)
    assert parsed["Message-ID"] == message["messageId"] and parsed["In-Reply-To"] == "<q1@customer.example>"
    assert sent.authenticated_as == desk["user"]
    metrics = httpx.get(f"{server.url}/metrics", timeout=10).text
    assert f'mailroom_outbox_sent_total{{mailbox_id="{desk["mailbox"]}"}} 1.0' in metrics
    assert desk["address"] not in metrics


def test_the_customers_answer_threads_back(desk: dict[str, Any]) -> None:
    wait_sent(desk, 1)
    ours = desk["server"].gql(desk["admin"], """query($id: UUID!) { conversation(id: $id) {
        messages { direction messageId } } }""", id=desk["conversation"])["conversation"]["messages"]
    reply_id = next(m["messageId"] for m in ours if m["direction"] == "OUTBOUND")
    desk["dovecot"].append(desk["user"], mail(subject="Re: Broken invoice", sender="jane@customer.example",
                                              to=desk["address"], in_reply_to=reply_id, body="Thanks!"))
    assert sync(desk["server"], desk["admin"], desk["mailbox"])["conversationsOpened"] == 0
    assert statuses(desk)[-1] == ("INBOUND", "RECEIVED")
    assert len(desk["server"].gql(desk["admin"], LIST)["conversations"]["edges"]) == 1


def test_agents_of_other_groups_and_auditors_cannot_reply(desk: dict[str, Any]) -> None:
    server = desk["server"]
    before = len(desk["sink"].messages)
    other = server.gql(desk["zed"], REPLY, input={"conversationId": desk["conversation"], "body": "hi"})
    assert [e["code"] for e in other["replyToConversation"]["userErrors"]] == ["NOT_FOUND"]
    body = server.gql_raw(desk["auditor"], REPLY, input={"conversationId": desk["conversation"], "body": "hi"})
    assert error_codes(body) == ["FORBIDDEN"]
    time.sleep(0.5)
    assert len(desk["sink"].messages) == before


@pytest.mark.parametrize("subject", ["Hi\r\nBcc: evil@example.com", "Hi\u2028Bcc: evil@example.com"])
def test_a_subject_with_line_breaks_is_a_user_error(desk: dict[str, Any], subject: str) -> None:
    answer = desk["server"].gql(desk["admin"], REPLY, input={
        "conversationId": desk["conversation"], "body": "hi", "subject": subject})["replyToConversation"]
    assert answer["message"] is None
    assert [(e["field"], e["code"]) for e in answer["userErrors"]] == [(["input", "subject"], "INVALID")]
