"""Figures of the agents, as the API shows them: active conversations, daily totals (in
MAILROOM_TIMEZONE), the customer's last handler, and each rule's round-robin cursor."""

from __future__ import annotations

from uuid import UUID
from zoneinfo import ZoneInfo

from domain import events as ev
from domain.conversation import Conversation
from domain.customers import Erasure
from domain.reply import Reply
from projections import erasure
from projections.tables import Rows, Table
from projections.view import View, dispatch, on
from projections.view import event_id as _id

T, B = "TEXT", "BIGINT"

WORKLOAD = Table("rm_workload", {"agent_id": T, "active": B, "last_assigned_at": T}, ("agent_id",))
DAILY = Table("rm_daily_totals", {"agent_id": T, "day": T, "received": B}, ("agent_id", "day"), (("day",),))
LAST_HANDLER = Table("rm_last_handler", {"customer_email": T, "agent_id": T, "at": T}, ("customer_email",))
CURSORS = Table("rm_rule_cursors", {"rule_id": T, "agent_id": T}, ("rule_id",))
CUSTOMERS = Table("rm_conversation_customers", {"conversation_id": T, "customer_email": T}, ("conversation_id",))


def _bump(rows: Rows, agent_id: UUID | None, delta: int, at: str | None = None) -> None:
    if agent_id is None:
        return
    row = rows.get(WORKLOAD, str(agent_id)) or {"agent_id": str(agent_id), "active": 0, "last_assigned_at": None}
    row["active"] = max(0, int(row["active"]) + delta)
    if at is not None:
        row["last_assigned_at"] = at
    rows.put(WORKLOAD, row)


class Workload(View):
    name = "workload"
    tables = (WORKLOAD, DAILY, LAST_HANDLER, CURSORS, CUSTOMERS)

    def __init__(self, zone: str = "UTC") -> None:
        self.zone = ZoneInfo(zone)
        self.version = f"2:{zone}"  # another time zone means other daily totals: replay (2: deactivation)
        self.handlers = dispatch(
            on(Conversation.Opened, self.opened),
            on(ev.ASSIGNED, self.assigned),
            on(ev.CLOSED, self.closed),
            on(ev.AGENT_DEACTIVATED, self.deactivated),
            on(Reply.Queued, self.replied),
            on(Erasure.Erased, lambda e, rows: erasure.customers(e, rows, CUSTOMERS, LAST_HANDLER)),
        )

    def opened(self, e: Conversation.Opened, rows: Rows) -> None:
        rows.put(CUSTOMERS, {"conversation_id": _id(e), "customer_email": e.customer_email})

    def assigned(self, e: ev.Assigned, rows: Rows) -> None:
        at = e.timestamp.isoformat()
        _bump(rows, e.previous_id, -1)
        _bump(rows, e.agent_id, +1, at)
        day = e.timestamp.astimezone(self.zone).date().isoformat()
        daily = rows.get(DAILY, str(e.agent_id), day) or {"agent_id": str(e.agent_id), "day": day, "received": 0}
        daily["received"] = int(daily["received"]) + 1
        rows.put(DAILY, daily)
        customer = rows.get(CUSTOMERS, _id(e))
        if customer is not None:
            rows.put(LAST_HANDLER, {"customer_email": customer["customer_email"], "agent_id": str(e.agent_id),
                                    "at": at})
        if e.rule_id is not None:
            rows.put(CURSORS, {"rule_id": str(e.rule_id), "agent_id": str(e.agent_id)})

    def replied(self, e: Reply.Queued, rows: Rows) -> None:
        """The agent who most recently replied to a customer is their last handler (DESIGN 3)."""
        customer = rows.get(CUSTOMERS, str(e.conversation_id))
        if customer is not None and e.author_id is not None:
            rows.put(LAST_HANDLER, {"customer_email": customer["customer_email"], "agent_id": str(e.author_id),
                                    "at": e.timestamp.isoformat()})

    def closed(self, e: ev.Closed, rows: Rows) -> None:
        _bump(rows, e.assignee_id, -1)

    def deactivated(self, e: ev.Event, rows: Rows) -> None:
        """A deactivated agent holds no conversation: the assigner decides each of its open ones
        again (assigned to another agent: Assigned names it as previous; queued or left unrouted:
        nothing names it), so its count is zero from here on."""
        rows.update(WORKLOAD, _id(e), active=0)
