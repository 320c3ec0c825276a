"""The outbox: replies still to deliver, when each is due, and who holds its current attempt;
plus totals per mailbox for /metrics. Kept by the outbox sender's own follower
(api/processes/outbox.py), rows and position in one transaction like every view."""

from __future__ import annotations

from domain import events as ev
from domain.reply import Reply
from projections.tables import Rows, Table
from projections.view import View, dispatch, on
from projections.view import event_id as _id
from projections.view import event_time as _at

T, B = "TEXT", "BIGINT"

OUTBOX = Table("rm_outbox", {
    "reply_id": T, "mailbox_id": T, "due_at": T, "attempt": B, "claimed_by": T, "handed_over": B}, ("reply_id",),
    (("due_at",),))
TOTALS = Table("rm_outbox_totals", {"mailbox_id": T, "sent": B, "retried": B, "failed": B}, ("mailbox_id",))


def _count(rows: Rows, mailbox_id: str, what: str) -> None:
    row = rows.get(TOTALS, mailbox_id) or {"mailbox_id": mailbox_id, "sent": 0, "retried": 0, "failed": 0}
    row[what] = int(row[what]) + 1
    rows.put(TOTALS, row)


def queued(e: Reply.Queued, rows: Rows) -> None:
    rows.put(OUTBOX, {"reply_id": _id(e), "mailbox_id": str(e.mailbox_id), "due_at": _at(e), "attempt": 0,
                      "claimed_by": None, "handed_over": 0})


def claimed(e: ev.ReplyClaimed, rows: Rows) -> None:
    if rows.get(OUTBOX, _id(e)) is not None:
        rows.update(OUTBOX, _id(e), attempt=e.attempt, claimed_by=e.worker, handed_over=0)


def handed_over(e: ev.ReplyStep, rows: Rows) -> None:
    if rows.get(OUTBOX, _id(e)) is not None:
        rows.update(OUTBOX, _id(e), handed_over=1)


def deferred(e: ev.ReplyDeferred, rows: Rows) -> None:
    row = rows.get(OUTBOX, _id(e))
    if row is not None:
        rows.update(OUTBOX, _id(e), due_at=e.retry_at.isoformat(), claimed_by=None, handed_over=0)
        _count(rows, row["mailbox_id"], "retried")


def _done(e: ev.Event, rows: Rows, what: str) -> None:
    row = rows.get(OUTBOX, _id(e))
    if row is not None:
        rows.delete(OUTBOX, _id(e))
        _count(rows, row["mailbox_id"], what)


def sent(e: ev.ReplySent, rows: Rows) -> None:
    _done(e, rows, "sent")


def failed(e: ev.ReplyFailed, rows: Rows) -> None:
    _done(e, rows, "failed")


def bounced(e: ev.ReplyBounced, rows: Rows) -> None:
    """A bounce, usually after SENT (then the reply counted as sent and now as failed too)."""
    rows.delete(OUTBOX, _id(e))
    _count(rows, str(e.mailbox_id), "failed")


class Outbox(View):
    name = "outbox"
    tables = (OUTBOX, TOTALS)
    handlers = dispatch(
        on(Reply.Queued, queued),
        on(ev.REPLY_CLAIMED, claimed),
        on(ev.REPLY_HANDED_OVER, handed_over),
        on(ev.REPLY_DEFERRED, deferred),
        on(ev.REPLY_SENT, sent),
        on(ev.REPLY_FAILED, failed),
        on(ev.REPLY_BOUNCED, bounced),
    )
