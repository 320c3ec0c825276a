"""Records the golden history: a small, coherent scenario that writes at least one event of
every persisted topic, with the code checked out when it runs.

    python -m tests.data.record_golden EVENTS.jsonl [BLOBS.json|- [SCENARIO]]

The golden files are history: once recorded they are never re-recorded or edited (a later
version of mailroom must read them as they are). golden_events.jsonl was recorded first
(the directory only); golden_events_mail_v1.jsonl by this script at commit 93e10ad (message
bodies and header maps inline in MessageReceived); golden_events_mail_v2.jsonl after the
bodies moved to blobs, with the blobs it refers to (UTF-8 text by key) in golden_blobs_v2.json.
golden_events_access_v1.jsonl records the "access" scenario (record_access) when assignments
by hand gained the admin's override (Assigned v2); golden_events_access_v2.jsonl when tokens
gained an expiry (Issued v2) and agents their deactivation. golden_events_replies_v1.jsonl
records the "replies" scenario (issue 10: the outbox's steps); golden_events_sidebar_v1.jsonl the
"sidebar" scenario (issue 12); golden_events_audit_v1.jsonl the "audit" scenario (issue 14: a seal);
golden_events_erasure_v1.jsonl the "erasure" scenario (issue 14: sealed personal data, an erasure).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from uuid import uuid4

from adapters.inbound import arrivals
from adapters.settings import load_settings
from api.bootstrap import bootstrap
from domain.conversation import Conversation, InboundKey
from domain.mail import conversation_ref, message_key
from domain.routing import RuleSpec
from domain.values import (
    AgentStatus,
    AssignmentStrategy,
    Condition,
    ConditionField,
    ConditionOperator,
    MailProtocol,
    Role,
    ServerSettings,
    TransportSecurity,
)

ADDRESS = "help@example.org"


def _mail(message_id: str, subject: str, body: str, in_reply_to: str | None = None) -> bytes:
    message = EmailMessage()
    message["From"] = "Dora Customer <dora@customer.example>"
    message["To"] = ADDRESS
    message["Subject"] = subject
    message["Date"] = "Thu, 26 Nov 2026 09:30:00 +0000"
    message["Message-ID"] = f"<{message_id}>"
    message["X-Priority"] = "1"
    if in_reply_to:
        message["In-Reply-To"] = f"<{in_reply_to}>"
        message["References"] = f"<{in_reply_to}>"
    message.set_content(body)
    message.add_alternative(f"<p>{body}</p>", subtype="html")
    return bytes(message)


def record(services: Any) -> None:
    app, blobs = services.app, services.blobs

    def change(aggregate_id: Any, command: str, *args: Any) -> int:
        aggregate = app.repository.get(aggregate_id)
        getattr(aggregate, command)(*args)
        return int(app.save(aggregate)[-1].notification.id)

    imap = ServerSettings("imap.example.org", 993, TransportSecurity.TLS, ADDRESS)
    mailbox_id = app.bind_mailbox(ADDRESS, "first-password", "Help desk", MailProtocol.IMAP, imap)[0].id
    app.update_mailbox(mailbox_id, password="second-password", folders=["INBOX", "Support"])
    change(mailbox_id, "sync_failed", "AUTH_FAILED: the server refused the user name or password")
    change(mailbox_id, "sync_recovered")
    spare_id = app.bind_mailbox("old@example.org", "pw", None, MailProtocol.IMAP,
                                ServerSettings("imap.example.org", 993, TransportSecurity.TLS, "old@example.org"))[0].id
    services.projections.catch_up()
    app.delete_mailbox(spare_id)

    eve = app.create_agent("Eve", "eve@example.org", 3, AgentStatus.ONLINE).id
    group_id = app.create_agent_group("Billing", [eve]).id
    rule_id = app.create_routing_rule(RuleSpec(
        name="Urgent billing", mailbox_ids=[mailbox_id], group_ids=[group_id], strategy=AssignmentStrategy.ROUND_ROBIN,
        priority=10, conditions=[Condition(ConditionField.HEADER, ConditionOperator.EQUALS, "1",
                                           header_name="X-Priority")])).id
    _, token = app.create_api_token("ops", Role.AUDITOR, None)
    change(token.id, "revoke")

    first = _mail("q1@customer.example", "Invoice 1042 is wrong", "Hello,\n\nthe invoice total is wrong.\n")
    taken = app.take_in(mailbox_id, arrivals([("imap:INBOX:1700000000:1", first)], ADDRESS, blobs))
    conversation_id = Conversation.create_id(conversation_ref(message_key("q1@customer.example")))
    assert taken.position is not None and taken.conversation_ids == (conversation_id,)
    change(conversation_id, "leave_unrouted", "no enabled rule covers the mailbox", taken.position)
    change(conversation_id, "route", rule_id, [group_id], taken.position)
    change(conversation_id, "queue", AssignmentStrategy.ROUND_ROBIN, "nobody in the rule's groups is eligible",
           taken.position)
    change(conversation_id, "assign", eve, None, AssignmentStrategy.ROUND_ROBIN,
           "eve is the first eligible agent (no cursor yet)", "assigner", taken.position, rule_id)
    app.close_conversation(conversation_id)
    reply = _mail("q2@customer.example", "Re: Invoice 1042 is wrong", "Any news?\n", in_reply_to="q1@customer.example")
    app.take_in(mailbox_id, arrivals([("imap:INBOX:1700000000:2", reply)], ADDRESS, blobs))  # reopens it
    app.assign_conversation(conversation_id, eve)
    app.take_in(mailbox_id, arrivals([("imap:INBOX:1700000000:3", b"\x00\x01 not a mail\r\n")], ADDRESS, blobs))
    assert app.repository.get(InboundKey.create_id(message_key("q2@customer.example"))).conversation_id == (
        conversation_id)


def record_access(services: Any) -> None:
    """Who may act (issue 8): an assignment by hand outside the conversation's groups, with an
    admin's override (Assigned v2). The conversation is made by its aggregate (no mail, so no
    blobs): opened, routed to Billing, assigned to Eve by the assigner, moved by hand to Finn
    (not in Billing: override) and back to Eve (a member: no override). Then (v2 of the scenario)
    tokens: Finn's, expiring (Issued v2), and an admin's, revoked; and Finn is deactivated."""
    app = services.app
    imap = ServerSettings("imap.example.org", 993, TransportSecurity.TLS, ADDRESS)
    mailbox_id = app.bind_mailbox(ADDRESS, "first-password", "Help desk", MailProtocol.IMAP, imap)[0].id
    eve = app.create_agent("Eve", "eve@example.org", 3, AgentStatus.ONLINE).id
    finn = app.create_agent("Finn", "finn@example.org", None, AgentStatus.ONLINE).id
    group_id = app.create_agent_group("Billing", [eve]).id
    rule_id = app.create_routing_rule(RuleSpec(name="Billing", mailbox_ids=[mailbox_id], group_ids=[group_id],
                                               strategy=AssignmentStrategy.ROUND_ROBIN)).id
    conversation = Conversation(mailbox_id, "dora@customer.example", "Invoice 1042 is wrong", "golden-access-1")
    position = int(app.save(conversation)[-1].notification.id)
    conversation.route(rule_id, [group_id], position)
    conversation.assign(eve, None, AssignmentStrategy.ROUND_ROBIN, "ROUND_ROBIN: no cursor: Eve -> Eve",
                        "assigner", position, rule_id)
    app.save(conversation)
    app.assign_conversation(conversation.id, finn, override=True)
    app.assign_conversation(conversation.id, eve)
    app.create_api_token("Finn's laptop", Role.AGENT, finn, datetime(2030, 1, 1, tzinfo=UTC))
    app.revoke_api_token(app.create_api_token("ops", Role.ADMIN, None)[1].id)
    app.deactivate_agent(finn)


def record_replies(services: Any) -> None:
    """Replies (issue 10): one sent (claimed, handed over, sent) and later bounced; one deferred
    (4xx), then failed (5xx); one whose sender stopped after the hand-over, settled as sent by the
    next. Built with the commands the outbox uses, without SMTP (no blobs: pass "-" as BLOBS)."""
    from domain.reply import OutboundMail

    app = services.app
    imap = ServerSettings("imap.example.org", 993, TransportSecurity.TLS, ADDRESS)
    smtp = ServerSettings("smtp.example.org", 587, TransportSecurity.STARTTLS, ADDRESS)
    mailbox_id = app.bind_mailbox(ADDRESS, "first-password", "Help desk", MailProtocol.IMAP, imap, smtp)[0].id
    eve = app.create_agent("Eve", "eve@example.org", 3, AgentStatus.ONLINE).id
    conversation = Conversation(mailbox_id, "dora@customer.example", "Invoice 1042 is wrong", "GOLDREP1")
    app.save(conversation)
    at = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)

    def queued(n: int) -> Any:
        mail = OutboundMail(
            message_id=f"20261130120000.golden{n}.goldrep1@example.org", from_address=ADDRESS, from_name="Help desk",
            to=["dora@customer.example"], cc=[], subject="Re: Invoice 1042 is wrong [#GOLDREP1]", date=at,
            text_blob=f"{n:064x}", html_blob=f"{n + 10:064x}", raw_blob=f"{n + 20:064x}", size=1000 + n,
            in_reply_to=["q1@customer.example"], references=["q1@customer.example"])
        return app.queue_reply(conversation.id, eve, mail).id

    first = app.claim_reply(queued(1), "worker-a", at)
    app.record_handover(first, "worker-a")
    app.record_sent(first, "worker-a", "250 2.0.0 Ok: queued as 4F2")
    bounced = app.reply(first.reply_id)
    bounced.bounce("550 5.1.1 <dora@customer.example>: Recipient address rejected", uuid4(), mailbox_id)
    app.save(bounced)
    second = app.claim_reply(queued(2), "worker-a", at)
    app.record_failure(second, "worker-a", "451 4.3.0 try again later", False, at)
    second = app.claim_reply(second.reply_id, "worker-a", at + timedelta(minutes=5))
    app.record_failure(second, "worker-a", "554 5.7.1 rejected by policy", True, at)
    third = app.claim_reply(queued(3), "worker-a", at)
    app.record_handover(third, "worker-a")
    app.settle_abandoned_reply(third.reply_id, "worker-b", at)


def record_sidebar(services: Any) -> None:
    """The sidebar (issue 12): a RECORDS source and an HTTP one with an auth header (a secret:
    only its reference is recorded), changed, its header removed, deleted; a record pushed,
    changed, deleted and pushed again."""
    from domain.sidebar import MatchKey, SidebarFieldSpec, SourceKind, SourceSpec

    app = services.app
    orders = SourceSpec("Orders", "order", SourceKind.RECORDS, None, MatchKey.CUSTOMER_EMAIL,
                        [SidebarFieldSpec("status", "Status"), SidebarFieldSpec("total", "Total")], 1, True)
    app.create_sidebar_source(orders)
    erp = SourceSpec("Work orders", "workorder", SourceKind.HTTP,
                     "https://erp.example.org/api/workorders?account={account_id}", MatchKey.ACCOUNT, [], 2, True)
    erp_id = app.create_sidebar_source(erp, "Authorization: Bearer golden-token").id
    app.update_sidebar_source(erp_id, SourceSpec(erp.title, erp.record_type, erp.kind, erp.url_template,
                                                 erp.match_by, [SidebarFieldSpec("due", "Due")], 3, False), None)
    app.delete_sidebar_source(erp_id)
    app.upsert_record("order", "A-1042", "Order A-1042", "dora@customer.example", None, None,
                      {"status": "shipped", "total": "12.50 EUR"}, "https://shop.example.org/orders/A-1042")
    app.upsert_record("order", "A-1042", "Order A-1042", "dora@customer.example", None, None,
                      {"status": "delivered", "total": "12.50 EUR"}, None)
    app.delete_record("order", "A-1042")
    app.upsert_record("order", "A-1042", "Order A-1042 (reopened)", "dora@customer.example", None, None, {}, None)


def record_audit(services: Any) -> None:
    """The audit chain (issue 14): an agent, then a seal of the log as it stands."""
    from api.audit import seal

    services.app.create_agent("Ada Auditor", "ada@support.example", None)
    seal(services)


def record_erasure(services: Any) -> None:
    """Erasure (issue 14): a customer's personal data sealed (a contact, a conversation opened by
    their mail, a record about them), then the customer erased. The keys are not in the file:
    read back, the sealed fields are tombstones, as after any erasure."""
    from api.erasure import erase_customer

    app = services.app
    written, _ = app.bind_mailbox(ADDRESS, "pw", "Help", MailProtocol.IMAP,
                                  ServerSettings("imap.example.org", 993, TransportSecurity.TLS, ADDRESS))
    app.upsert_contact("dora@customer.example", "Dora Customer", None, None)
    app.upsert_record("order", "A-7", "Order A-7", "dora@customer.example", None, None, {"status": "new"}, None)
    app.take_in(written.id, arrivals([("imap:INBOX:1:1", _mail("erase-1@customer.example", "Forget me", "Please."))],
                                     ADDRESS, services.blobs))
    erase_customer(services, "dora@customer.example")


SCENARIOS = {"mail": record, "access": record_access, "replies": record_replies, "sidebar": record_sidebar,
             "audit": record_audit, "erasure": record_erasure}


def main(events_path: str, blobs_path: str | None = None, scenario: str = "mail") -> None:
    """`scenario` "access", "replies", "sidebar", "audit" or "erasure": its record_* function (no blobs:
    pass "-" as BLOBS)."""
    with tempfile.TemporaryDirectory() as directory:
        os.environ["MAILROOM_DATABASE_URL"] = f"sqlite:///{directory}/golden.db"
        services = bootstrap(load_settings(), verify_login=lambda *args: None)
        blobs_path = None if blobs_path == "-" else blobs_path
        try:
            SCENARIOS[scenario](services)
            lines = [json.dumps({"originator_id": str(n.originator_id), "originator_version": n.originator_version,
                                 "state": n.state.decode(), "topic": n.topic})
                     for n in services.app.recorder.select_notifications(1, 100_000)]
            Path(events_path).write_text("\n".join(lines) + "\n")
            if blobs_path is not None:  # the message bodies and header maps the events refer to
                keys = {key for line in lines for key in _blob_keys(json.loads(json.loads(line)["state"]))}
                found = {key: (services.blobs.get(key) or b"").decode() for key in sorted(keys)}  # all UTF-8
                Path(blobs_path).write_text(json.dumps(found, indent=1) + "\n")
        finally:
            services.close()


def _blob_keys(state: Any) -> list[str]:
    if isinstance(state, dict):
        own = [v for k, v in state.items() if k in ("text_blob", "headers_blob") and isinstance(v, str)]
        return own + [key for v in state.values() for key in _blob_keys(v)]
    if isinstance(state, list):
        return [key for v in state for key in _blob_keys(v)]
    return []


if __name__ == "__main__":
    main(*sys.argv[1:])
