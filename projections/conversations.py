"""Conversations, their messages, and quarantined mail: the workspace's read models.

A message's body text is not in its event but in a blob (text_blob); the view reads it from
there, in its own transaction, when it applies the event (events recorded before v2 carry it
inline). A blob that is gone (erased) gives an empty text, on rebuild as live."""

from __future__ import annotations

import json
from uuid import UUID

from adapters.blobs import read_many
from domain import events as ev
from domain.conversation import Conversation, QuarantinedMessage
from domain.customers import Erasure
from domain.mail import ReceivedMail
from domain.reply import Reply
from domain.values import ConversationStatus as Status
from projections import erasure
from projections.tables import Rows, Table
from projections.view import View, dispatch, on, to_json
from projections.view import event_id as _id
from projections.view import event_time as _at

T, B = "TEXT", "BIGINT"

CONVERSATIONS = Table("rm_conversations", {
    "id": T, "ref": T, "mailbox_id": T, "subject": T, "customer_email": T, "status": T,
    "assignee_id": T, "rule_id": T, "group_ids": T, "created_at": T, "last_message_at": T,
    "message_count": B, "assignment_count": B, "sort_key": T}, ("id",),
    (("sort_key",), ("status", "sort_key"), ("mailbox_id", "sort_key"), ("customer_email", "sort_key"),
     ("assignee_id", "sort_key")))
MESSAGES = Table("rm_messages", {
    "id": T, "conversation_id": T, "seq": B, "direction": T, "message_id": T, "mailbox_id": T,
    "from_address": T, "from_name": T, "to_addresses": T, "cc_addresses": T, "subject": T, "date": T,
    "text": T, "text_blob": T, "headers_blob": T, "html_blob": T, "attachments": T, "markers": T,
    "delivery_status": T, "raw_blob": T, "size": B, "source": T, "received_at": T}, ("id",),
    (("conversation_id", "seq"),))
# sort_key is the conversation's (it never changes): a group's page is read newest first from
# the index alone, however many conversations the group ever had.
CONVERSATION_GROUPS = Table("rm_conversation_groups", {"conversation_id": T, "group_id": T, "sort_key": T},
                            ("conversation_id", "group_id"), (("group_id", "sort_key", "conversation_id"),))
ASSIGNMENTS = Table("rm_assignments", {
    "conversation_id": T, "seq": B, "agent_id": T, "strategy": T, "reason": T, "at": T, "decided_by": T},
    ("conversation_id", "seq"))
QUARANTINE = Table("rm_quarantine", {
    "id": T, "mailbox_id": T, "source": T, "reason": T, "size": B, "raw_blob": T, "received_at": T},
    ("id",), (("mailbox_id", "received_at"),))


def opened(e: Conversation.Opened, rows: Rows) -> None:
    created = _at(e)
    rows.put(CONVERSATIONS, {
        "id": _id(e), "ref": e.ref, "mailbox_id": str(e.mailbox_id), "subject": e.subject,
        "customer_email": e.customer_email, "status": Status.UNROUTED.value, "group_ids": "[]",
        "created_at": created, "last_message_at": created, "message_count": 0, "assignment_count": 0,
        "sort_key": f"{created}|{_id(e)}"})


def message_text(mail: ReceivedMail, rows: Rows) -> str:
    """The body text: from its blob, read in the view's transaction; inline for v1 events."""
    if mail.text_blob is None:
        return mail.text_from({})
    return mail.text_from(read_many(rows.tx, [mail.text_blob]))


def message_received(e: Conversation.MessageReceived, rows: Rows) -> None:
    mail: ReceivedMail = e.mail
    conversation = rows.get(CONVERSATIONS, _id(e))
    assert conversation is not None
    seq = int(conversation["message_count"])
    rows.put(MESSAGES, {
        "id": str(e.message_id), "conversation_id": _id(e), "seq": seq, "direction": "INBOUND",
        "message_id": mail.message_id, "mailbox_id": str(e.mailbox_id), "from_address": mail.from_address,
        "from_name": mail.from_name, "to_addresses": to_json(mail.to), "cc_addresses": to_json(mail.cc),
        "subject": mail.subject, "date": mail.date.isoformat(), "text": message_text(mail, rows),
        "text_blob": mail.text_blob, "headers_blob": mail.headers_blob, "html_blob": mail.html_blob,
        "attachments": to_json(mail.attachments), "markers": to_json(mail.markers),
        "delivery_status": "RECEIVED", "raw_blob": mail.raw_blob, "size": mail.size, "source": mail.source,
        "received_at": _at(e)})
    rows.update(CONVERSATIONS, _id(e), message_count=seq + 1,
                last_message_at=max(conversation["last_message_at"], _at(e)))


def reply_queued(e: Reply.Queued, rows: Rows) -> None:
    mail = e.mail
    conversation_id = str(e.conversation_id)
    conversation = rows.get(CONVERSATIONS, conversation_id)
    assert conversation is not None
    seq = int(conversation["message_count"])
    data = read_many(rows.tx, [mail.text_blob]).get(mail.text_blob)
    rows.put(MESSAGES, {
        "id": _id(e), "conversation_id": conversation_id, "seq": seq, "direction": "OUTBOUND",
        "message_id": mail.message_id, "mailbox_id": str(e.mailbox_id), "from_address": mail.from_address,
        "from_name": mail.from_name, "to_addresses": to_json(mail.to), "cc_addresses": to_json(mail.cc),
        "subject": mail.subject, "date": mail.date.isoformat(),
        "text": "" if data is None else data.decode("utf-8", "replace"), "text_blob": mail.text_blob,
        "headers_blob": None, "html_blob": mail.html_blob, "attachments": "[]", "markers": "[]",
        "delivery_status": "QUEUED", "raw_blob": mail.raw_blob, "size": mail.size, "source": "outbox",
        "received_at": _at(e)})
    rows.update(CONVERSATIONS, conversation_id, message_count=seq + 1)


def reply_sent(e: ev.ReplySent, rows: Rows) -> None:
    if rows.get(MESSAGES, _id(e)) is not None:
        rows.update(MESSAGES, _id(e), delivery_status="SENT")


def reply_failed(e: ev.Event, rows: Rows) -> None:
    if rows.get(MESSAGES, _id(e)) is not None:
        rows.update(MESSAGES, _id(e), delivery_status="FAILED")


def routed(e: ev.Routed, rows: Rows) -> None:
    conversation = rows.get(CONVERSATIONS, _id(e))
    assert conversation is not None
    for group_id in json.loads(conversation["group_ids"] or "[]"):
        rows.delete(CONVERSATION_GROUPS, _id(e), group_id)
    for group_id in e.group_ids:
        rows.put(CONVERSATION_GROUPS, {"conversation_id": _id(e), "group_id": str(group_id),
                                       "sort_key": conversation["sort_key"]})
    rows.update(CONVERSATIONS, _id(e), rule_id=str(e.rule_id), group_ids=to_json(e.group_ids))


def _record(e: ev.Decision, rows: Rows, agent_id: UUID | None, decided_by: str) -> None:
    conversation = rows.get(CONVERSATIONS, _id(e))
    assert conversation is not None
    seq = int(conversation.get("assignment_count") or 0)
    strategy = e.strategy.value if e.strategy is not None else None
    rows.put(ASSIGNMENTS, {"conversation_id": _id(e), "seq": seq, "strategy": strategy, "reason": e.reason,
                           "agent_id": None if agent_id is None else str(agent_id), "at": _at(e),
                           "decided_by": decided_by})
    rows.update(CONVERSATIONS, _id(e), assignment_count=seq + 1)


def queued(e: ev.Queued, rows: Rows) -> None:
    _record(e, rows, None, "assigner")
    rows.update(CONVERSATIONS, _id(e), status=Status.QUEUED.value, assignee_id=None)


def left_unrouted(e: ev.Event, rows: Rows) -> None:
    # No rule covers it (at arrival, after a reopen, or after its agent's deactivation): nobody holds it.
    rows.update(CONVERSATIONS, _id(e), status=Status.UNROUTED.value, assignee_id=None)


def assigned(e: ev.Assigned, rows: Rows) -> None:
    _record(e, rows, e.agent_id, e.decided_by)
    rows.update(CONVERSATIONS, _id(e), status=Status.OPEN.value, assignee_id=str(e.agent_id))


def closed(e: ev.Closed, rows: Rows) -> None:
    rows.update(CONVERSATIONS, _id(e), status=Status.CLOSED.value, assignee_id=None)


def reopened(e: ev.Reopened, rows: Rows) -> None:
    conversation = rows.get(CONVERSATIONS, _id(e))
    assert conversation is not None
    rows.update(CONVERSATIONS, _id(e), status=Status.QUEUED.value if conversation["rule_id"] else Status.UNROUTED.value)


def quarantined(e: QuarantinedMessage.Quarantined, rows: Rows) -> None:
    rows.put(QUARANTINE, {
        "id": _id(e), "mailbox_id": str(e.mailbox_id), "source": e.source, "reason": e.reason,
        "size": e.size, "raw_blob": e.raw_blob, "received_at": _at(e)})


class Conversations(View):
    name = "conversations"
    version = 3  # 2: rm_conversation_groups.sort_key; 3: LeftUnrouted shown (status, no assignee)
    tables = (CONVERSATIONS, CONVERSATION_GROUPS, MESSAGES, ASSIGNMENTS, QUARANTINE)
    handlers = dispatch(
        on(Conversation.Opened, opened),
        on(Conversation.MessageReceived, message_received),
        on(ev.ROUTED, routed),
        on(ev.QUEUED, queued),
        on(ev.LEFT_UNROUTED, left_unrouted),
        on(ev.ASSIGNED, assigned),
        on(ev.CLOSED, closed),
        on(ev.REOPENED, reopened),
        on(QuarantinedMessage.Quarantined, quarantined),
        on(Reply.Queued, reply_queued),
        on(ev.REPLY_SENT, reply_sent),
        on(ev.REPLY_FAILED, reply_failed),
        on(ev.REPLY_BOUNCED, reply_failed),
        on(Erasure.Erased, lambda e, rows: erasure.conversations(e, rows, CONVERSATIONS, MESSAGES)),
    )
