"""Maintained conversation counts, so the list's totalCount costs one key read instead of a
COUNT(*) that grows with history: all conversations, per status, per routed-to group, and
per group and status.

A view of its own (its rows and its position are written in one transaction by the driver),
so it keeps what it needs of each conversation: its status as the conversation list shows
it, whether it was ever routed (a reopened conversation goes back to QUEUED, else UNROUTED)
and the groups it is routed to. The status changes mirror projections/conversations.py; the
tests compare both after assign, close and reopen, and `mailroom projections verify` checks
a rebuild against the live rows.
"""

from __future__ import annotations

import json
from typing import Any

from domain import events as ev
from domain.conversation import Conversation
from domain.values import ConversationStatus as Status
from projections.tables import Rows, Table
from projections.view import View, dispatch, on
from projections.view import event_id as _id

T, B = "TEXT", "BIGINT"

COUNTED = Table("rm_counted_conversations", {"conversation_id": T, "status": T, "routed": B, "group_ids": T},
                ("conversation_id",))
COUNTS = Table("rm_conversation_counts", {"scope": T, "n": B}, ("scope",))

ALL = "all"


def scope(status: str | None = None, group_id: str | None = None) -> str:
    """The key of a maintained count: `all`, `status:S`, `group:G` or `group:G|status:S`."""
    parts = ([f"group:{group_id}"] if group_id is not None else []) + ([f"status:{status}"] if status else [])
    return "|".join(parts) or ALL


def scopes(status: str, group_ids: list[str]) -> list[str]:
    """Every count one conversation with this status and these groups is part of."""
    out = [ALL, scope(status)]
    for group_id in group_ids:
        out += [scope(None, group_id), scope(status, group_id)]
    return out


def _bump(rows: Rows, keys: list[str], delta: int) -> None:
    for key in keys:
        row = rows.get(COUNTS, key) or {"scope": key, "n": 0}
        row["n"] = int(row["n"]) + delta
        rows.put(COUNTS, row)


def _groups(row: dict[str, Any]) -> list[str]:
    return list(json.loads(row["group_ids"] or "[]"))


class Counts(View):
    name = "counts"
    version = 2  # 2: LeftUnrouted counted as UNROUTED
    tables = (COUNTED, COUNTS)

    def __init__(self) -> None:
        self.handlers = dispatch(
            on(Conversation.Opened, self.opened),
            on(ev.ROUTED, self.routed),
            on(ev.QUEUED, lambda e, rows: self.status(e, rows, Status.QUEUED.value)),
            on(ev.LEFT_UNROUTED, lambda e, rows: self.status(e, rows, Status.UNROUTED.value)),
            on(ev.ASSIGNED, lambda e, rows: self.status(e, rows, Status.OPEN.value)),
            on(ev.CLOSED, lambda e, rows: self.status(e, rows, Status.CLOSED.value)),
            on(ev.REOPENED, self.reopened),
        )

    def opened(self, e: Conversation.Opened, rows: Rows) -> None:
        if rows.get(COUNTED, _id(e)) is not None:
            return
        rows.put(COUNTED, {"conversation_id": _id(e), "status": Status.UNROUTED.value, "routed": 0, "group_ids": "[]"})
        _bump(rows, scopes(Status.UNROUTED.value, []), +1)

    def routed(self, e: ev.Routed, rows: Rows) -> None:
        row = rows.get(COUNTED, _id(e))
        if row is None:
            return
        before, after = _groups(row), list(dict.fromkeys(str(g) for g in e.group_ids))
        for group_id in before:
            _bump(rows, [scope(None, group_id), scope(row["status"], group_id)], -1)
        for group_id in after:
            _bump(rows, [scope(None, group_id), scope(row["status"], group_id)], +1)
        row.update(routed=1, group_ids=json.dumps(after))
        rows.put(COUNTED, row)

    def reopened(self, e: ev.Reopened, rows: Rows) -> None:
        row = rows.get(COUNTED, _id(e))
        if row is not None:
            self.status(e, rows, Status.QUEUED.value if row["routed"] else Status.UNROUTED.value)

    def status(self, e: ev.Event, rows: Rows, status: str) -> None:
        row = rows.get(COUNTED, _id(e))
        if row is None or row["status"] == status:
            return
        groups = _groups(row)
        _bump(rows, [scope(row["status"]), *(scope(row["status"], g) for g in groups)], -1)
        _bump(rows, [scope(status), *(scope(status, g) for g in groups)], +1)
        row["status"] = status
        rows.put(COUNTED, row)
