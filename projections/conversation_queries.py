"""Queries over conversations, messages and quarantine; and a conversation as it stood
at a past moment, rebuilt from its own events with the same view code."""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.application import Application

from adapters.blobs import blobs_of
from adapters.database import Database, Row
from projections import conversations as c
from projections import counts as n
from projections import directory as d
from projections import search as search
from projections import workload as w
from projections.driver import POSITIONS
from projections.queries import any_of
from projections.tables import Rows

_FIGURE = "mailroom_figure"  # a joined figure's column beside an agent's row (not one of rm_agents')
MERGED_GROUPS = 16  # a page limited to more groups than this is read the general way
PG_FEW = 10_000  # PostgreSQL: a text filter expected to match this few is read from the GIN index first
SELECTIVE = 2000  # SQLite: a text filter's matches, or the other filters' conversations, that few are "few"


@dataclass(frozen=True)
class ConversationFilter:
    status: str | None = None
    assignee_id: str | None = None
    mailbox_id: str | None = None
    customer_email: str | None = None
    group_ids: tuple[str, ...] | None = None  # only conversations routed to one of these groups
    text: str | None = None  # full-text search (projections/search.py); no words: no text filter


def encode_cursor(sort_key: str) -> str:
    return base64.urlsafe_b64encode(sort_key.encode()).decode()


def decode_cursor(cursor: str) -> str | None:
    try:
        return base64.urlsafe_b64decode(cursor.encode()).decode()
    except (ValueError, UnicodeDecodeError):
        return None


class ConversationQueries:
    def __init__(self, database: Database) -> None:
        self.db = database

    def _where(self, f: ConversationFilter) -> tuple[list[str], list[Any]]:
        clauses, params = [], []
        for column, value in (("status", f.status), ("assignee_id", f.assignee_id),
                              ("mailbox_id", f.mailbox_id), ("customer_email", f.customer_email)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if f.group_ids is not None:
            if not f.group_ids:
                clauses.append("1 = 0")
            else:
                marks = ", ".join("?" for _ in f.group_ids)
                clauses.append(f"id IN (SELECT conversation_id FROM {c.CONVERSATION_GROUPS.name} "
                               f"WHERE group_id IN ({marks}))")
                params.extend(f.group_ids)
        return clauses, params

    def page(self, f: ConversationFilter, first: int, after: str | None) -> tuple[list[Row], bool, int]:
        """A page (see rows) and the count of all that match (see count)."""
        rows, more = self.rows(f, first, after)
        return rows, more, self.count(f)

    def rows(self, f: ConversationFilter, first: int, after: str | None) -> tuple[list[Row], bool]:
        """Newest first; keyset pagination on (created_at, id): stable while new mail arrives."""
        text = search.parse(f.text)
        if text is not None:
            return self._text_rows(f, text, first, after)
        if f.group_ids and len(set(f.group_ids)) <= MERGED_GROUPS:
            return self._group_rows(f, first, after)
        clauses, params = self._where(f)
        if after is not None:
            clauses.append("sort_key < ?")
            params.append(after)
        sql = (f"SELECT * FROM {c.CONVERSATIONS.name}" + (f" WHERE {' AND '.join(clauses)}" if clauses else "")
               + " ORDER BY sort_key DESC LIMIT ?")
        rows = self.db.query(sql, [*params, first + 1])
        return rows[:first], len(rows) > first

    def _group_rows(self, f: ConversationFilter, first: int, after: str | None,
                    tsquery: str | None = None) -> tuple[list[Row], bool]:
        """rows() limited to groups: each group's conversations read newest first through its
        (group_id, sort_key) index, so that a page costs the same however many conversations the
        group ever had; with several groups, each one's page, merged (a conversation routed to
        two of them once). With `tsquery` (PostgreSQL, a text many conversations match), each
        conversation walked is tested against its tsvector (a subquery per row, never a join
        the planner could turn into reading every match first)."""
        assert f.group_ids
        clauses: list[str] = []
        params: list[Any] = []
        if tsquery is not None:
            clauses.append(f" AND (SELECT s.tsv @@ to_tsquery('simple', ?) FROM {search.SEARCH.name} s "
                           "WHERE s.conversation_id = c.id)")
            params.append(tsquery)
        for column, value in (("status", f.status), ("assignee_id", f.assignee_id),
                              ("mailbox_id", f.mailbox_id), ("customer_email", f.customer_email)):
            if value is not None:
                clauses.append(f" AND c.{column} = ?")
                params.append(value)
        if after is not None:
            clauses.append(" AND g.sort_key < ?")
            params.append(after)
        one = (f"SELECT c.* FROM {c.CONVERSATION_GROUPS.name} g JOIN {c.CONVERSATIONS.name} c "
               f"ON c.id = g.conversation_id WHERE g.group_id = ?{''.join(clauses)} ORDER BY g.sort_key DESC LIMIT ?")
        groups = list(dict.fromkeys(f.group_ids))
        if len(groups) == 1:
            rows = self.db.query(one, [groups[0], *params, first + 1])
        else:
            sql = (" UNION ".join(f"SELECT * FROM ({one}) AS g{i}" for i in range(len(groups)))
                   + " ORDER BY sort_key DESC LIMIT ?")
            rows = self.db.query(sql, [*(v for g in groups for v in (g, *params, first + 1)), first + 1])
        return rows[:first], len(rows) > first

    def _text_rows(self, f: ConversationFilter, text: search.TextQuery, first: int,
                   after: str | None) -> tuple[list[Row], bool]:
        """rows() with a text filter: see _fts_plan (SQLite) and _pg_text_rows."""
        if text.impossible or f.group_ids == ():
            return [], False
        clauses, params = self._where(f)
        if self.db.is_postgres:
            return self._pg_text_rows(f, clauses, params, text, first, after)
        if self._fts_plan(clauses, params, text, first):
            if after is not None:
                try:
                    bound = min(max(search.rank(after), -(2**63)), 2**63 - 1)
                except ValueError:  # not a cursor this API gave: compared as it is
                    clauses.append("c.sort_key < ?")
                    params.append(after)
                else:
                    clauses.append(f"{search.FTS}.rowid < ?")
                    params.append(bound)
            # CROSS JOIN: in this order; `+`: the filters only test rows, they are not searched by.
            # (Given the chance, SQLite drives a small filter's rows and tests each against the
            # index, re-reading a common word's whole list every time; or probes each match for
            # every conversation of a group.)
            sql = (f"SELECT c.* FROM {search.FTS} CROSS JOIN {search.SEARCH.name} s ON s.n = {search.FTS}.rowid "
                   f"CROSS JOIN {c.CONVERSATIONS.name} c ON c.id = s.conversation_id WHERE {search.FTS} MATCH ?"
                   + "".join(f" AND +{clause}" for clause in clauses) + f" ORDER BY {search.FTS}.rowid DESC LIMIT ?")
            params.insert(0, text.fts5())
        else:  # `+s.n`: not through the (n, conversation_id) index, once per match for every conversation
            if after is not None:
                clauses.append("c.sort_key < ?")
                params.append(after)
            sql = (f"SELECT c.* FROM {c.CONVERSATIONS.name} c CROSS JOIN {search.SEARCH.name} s "
                   f"ON s.conversation_id = c.id WHERE {' AND '.join(clauses)} AND +s.n IN "
                   f"(SELECT rowid FROM {search.FTS} WHERE {search.FTS} MATCH ?) ORDER BY c.sort_key DESC LIMIT ?")
            params.append(text.fts5())
        rows = self.db.query(sql, [*params, first + 1])
        return rows[:first], len(rows) > first

    def _pg_text_rows(self, f: ConversationFilter, clauses: list[str], params: list[Any], text: search.TextQuery,
                      first: int, after: str | None) -> tuple[list[Row], bool]:
        """PostgreSQL: for a query the planner expects few matches of (PG_FEW), the GIN index's
        matches are read first, then their conversations sorted; otherwise the conversations are
        walked newest first, each tested, until the page is full (a group's through its index, as
        without a text). (Left to itself the planner walks for a few thousand matches too: testing
        a tsvector costs more than it counts.)"""
        query = text.tsquery()
        matches = f"SELECT conversation_id FROM {search.SEARCH.name} WHERE tsv @@ to_tsquery('simple', ?)"
        with self.db.transaction(commit=False) as tx:
            [plan] = tx.execute(f"EXPLAIN (FORMAT JSON) {matches}", (query,)).scalar()
        few = float(plan["Plan"]["Plan Rows"]) <= PG_FEW
        if not few and f.group_ids and len(set(f.group_ids)) <= MERGED_GROUPS:
            return self._group_rows(f, first, after, query)
        if after is not None:
            clauses.append("sort_key < ?")
            params.append(after)
        where = "".join(f" AND {clause}" for clause in clauses)
        if few:
            sql = (f"WITH m AS MATERIALIZED ({matches}) SELECT c.* FROM {c.CONVERSATIONS.name} c "
                   f"JOIN m ON m.conversation_id = c.id WHERE TRUE{where} ORDER BY c.sort_key DESC LIMIT ?")
        else:
            sql = f"SELECT * FROM {c.CONVERSATIONS.name} WHERE id IN ({matches}){where} ORDER BY sort_key DESC LIMIT ?"
        rows = self.db.query(sql, [query, *params, first + 1])
        return rows[:first], len(rows) > first

    def _fts_plan(self, clauses: list[str], params: list[Any], text: search.TextQuery, first: int | None) -> bool:
        """Which way SQLite reads a text filter with other filters (for a page of `first`, or a
        count: None). From the FTS5 index newest first (its rowid is ordered like sort_key,
        projections/search.rank), each match joined to its conversation and the other filters,
        stopping at the page's end (True); or from the conversations the other filters select,
        through their index, each looked up in the set of matches, read once (False). The first
        is cheap unless the filter is selective (its few conversations come only after many
        matches); the second costs reading every match, then about three times as much per
        conversation walked as the first does per match. Decided on two small counts: the
        matches (FTS5 counts a word found in half of 100k conversations in ~2 ms) and the
        filter's conversations, capped where the answer no longer changes."""
        if not clauses:
            return True
        fts = f"SELECT COUNT(*) AS n FROM {search.FTS} WHERE {search.FTS} MATCH ?"
        matches = int(self.db.query(fts, (text.fts5(),))[0]["n"])
        if matches <= SELECTIVE:
            return True
        cap = SELECTIVE if first is not None else matches // 3 + 1
        [found] = self.db.query(
            f"SELECT (SELECT COUNT(*) FROM (SELECT 1 FROM {c.CONVERSATIONS.name} WHERE {' AND '.join(clauses)} "
            f"LIMIT ?) AS f) AS selected, (SELECT MAX(rowid) FROM {c.CONVERSATIONS.name}) AS total",
            [*params, cap])
        selected, total = int(found["selected"]), max(int(found["total"] or 0), matches)
        if first is None:  # every match vs every selected conversation
            return selected >= cap
        walked_matches = min(matches, (first + 1) * total / max(selected, 1))
        walked_conversations = min(selected, (first + 1) * total / matches)
        return walked_matches <= matches / 10 + 3 * walked_conversations

    def _text_count(self, f: ConversationFilter, text: search.TextQuery) -> int:
        """count() with a text filter: with no other filter, the index's matches alone once the
        search view has reached the list's position (they are views of their own, a moment apart;
        exact either way); otherwise the matches joined to the conversations as rows() reads them."""
        if text.impossible:
            return 0
        clauses, params = self._where(f)
        if self.db.is_postgres:
            return self._pg_text_count(clauses, params, text)
        matches = f"SELECT COUNT(*) FROM {search.FTS} WHERE {search.FTS} MATCH ?"
        value = text.fts5()
        if not clauses:
            [found] = self.db.query(
                f"SELECT ({matches}) AS n, (SELECT position FROM {POSITIONS} WHERE view = ?) AS searched, "
                f"(SELECT position FROM {POSITIONS} WHERE view = ?) AS listed",
                (value, search.Search.name, c.Conversations.name))
            if found["searched"] is not None and found["searched"] == found["listed"]:
                return int(found["n"])
        if self._fts_plan(clauses, params, text, None):
            sql = (f"SELECT COUNT(*) AS n FROM {search.FTS} CROSS JOIN {search.SEARCH.name} s "
                   f"ON s.n = {search.FTS}.rowid CROSS JOIN {c.CONVERSATIONS.name} c ON c.id = s.conversation_id "
                   f"WHERE {search.FTS} MATCH ?") + "".join(f" AND +{clause}" for clause in clauses)
            params.insert(0, value)
        else:
            sql = (f"SELECT COUNT(*) AS n FROM {c.CONVERSATIONS.name} c CROSS JOIN {search.SEARCH.name} s "
                   f"ON s.conversation_id = c.id WHERE {' AND '.join(clauses)} AND +s.n IN "
                   f"(SELECT rowid FROM {search.FTS} WHERE {search.FTS} MATCH ?)")
            params.append(value)
        return int(self.db.query(sql, params)[0]["n"])

    def _pg_text_count(self, clauses: list[str], params: list[Any], text: search.TextQuery) -> int:
        """PostgreSQL: the GIN index's matches (never a scan testing every tsvector, which the
        planner picks for a common word), alone when there is no other filter and the search view
        has reached the list's position, else joined to the conversations."""
        matches = f"SELECT conversation_id FROM {search.SEARCH.name} WHERE tsv @@ to_tsquery('simple', ?)"
        with self.db.transaction(commit=False) as tx:
            tx.execute("SET LOCAL enable_seqscan = off")
            if not clauses:
                found = tx.execute(
                    f"SELECT (SELECT COUNT(*) FROM ({matches}) AS m) AS n, "
                    f"(SELECT position FROM {POSITIONS} WHERE view = ?) AS searched, "
                    f"(SELECT position FROM {POSITIONS} WHERE view = ?) AS listed",
                    (text.tsquery(), search.Search.name, c.Conversations.name)).one()
                if found is not None and found["searched"] is not None and found["searched"] == found["listed"]:
                    return int(found["n"])
            where = "".join(f" AND {clause}" for clause in clauses)
            return int(tx.execute(f"WITH m AS MATERIALIZED ({matches}) SELECT COUNT(*) AS n FROM "
                                  f"{c.CONVERSATIONS.name} c JOIN m ON m.conversation_id = c.id WHERE TRUE{where}",
                                  [text.tsquery(), *params]).scalar())

    @staticmethod
    def counted_scope(f: ConversationFilter) -> str | None:
        """The maintained count (projections/counts.py) that answers `f` exactly, if one does:
        no filter, a status, one group, or one group and a status. Other filters: None."""
        if f.assignee_id is not None or f.mailbox_id is not None or f.customer_email is not None:
            return None
        if search.parse(f.text) is not None:
            return None
        if f.group_ids is None:
            return n.scope(f.status)
        if len(f.group_ids) == 1:
            return n.scope(f.status, f.group_ids[0])
        return None

    def count(self, f: ConversationFilter) -> int:
        """How many conversations match. From the maintained counts when they answer the filter
        and have reached the list's position (they are a view of their own, a moment apart);
        otherwise COUNT(*) over the matching rows."""
        if f.group_ids == ():
            return 0
        text = search.parse(f.text)
        if text is not None:
            return self._text_count(f, text)
        scope = self.counted_scope(f)
        if scope is not None:
            [found] = self.db.query(
                f"SELECT (SELECT n FROM {n.COUNTS.name} WHERE scope = ?) AS n, "
                f"(SELECT position FROM {POSITIONS} WHERE view = ?) AS counted, "
                f"(SELECT position FROM {POSITIONS} WHERE view = ?) AS listed",
                (scope, n.Counts.name, c.Conversations.name))
            if found["counted"] is not None and int(found["counted"]) >= int(found["listed"] or 0):
                return int(found["n"] or 0)
        clauses, params = self._where(f)
        return int(self.db.query(f"SELECT COUNT(*) AS n FROM {c.CONVERSATIONS.name}"
                                 + (f" WHERE {' AND '.join(clauses)}" if clauses else ""), params)[0]["n"])

    # batches: one statement for many keys (the API's per-request loaders)
    def messages_of(self, conversation_ids: Iterable[UUID | str]) -> dict[str, list[Row]]:
        where, params = any_of(self.db, "conversation_id", conversation_ids)
        rows = self.db.query(f"SELECT * FROM {c.MESSAGES.name} WHERE {where} ORDER BY conversation_id, seq", params)
        out: dict[str, list[Row]] = {}
        for row in rows:
            out.setdefault(str(row["conversation_id"]), []).append(row)
        return out

    def assignments_of(self, conversation_ids: Iterable[UUID | str]) -> dict[str, list[Row]]:
        where, params = any_of(self.db, "conversation_id", conversation_ids)
        rows = self.db.query(f"SELECT * FROM {c.ASSIGNMENTS.name} WHERE {where} ORDER BY conversation_id, seq",
                             params)
        out: dict[str, list[Row]] = {}
        for row in rows:
            out.setdefault(str(row["conversation_id"]), []).append(row)
        return out

    def group_ids_of_many(self, conversation_ids: Iterable[UUID | str]) -> dict[str, set[str]]:
        where, params = any_of(self.db, "conversation_id", conversation_ids)
        out: dict[str, set[str]] = {}
        for row in self.db.query(f"SELECT conversation_id, group_id FROM {c.CONVERSATION_GROUPS.name} "
                                 f"WHERE {where}", params):
            out.setdefault(str(row["conversation_id"]), set()).add(str(row["group_id"]))
        return out

    def workloads(self, agent_ids: Iterable[UUID | str]) -> dict[str, int]:
        where, params = any_of(self.db, "agent_id", agent_ids)
        return {str(r["agent_id"]): int(r["active"])
                for r in self.db.query(f"SELECT agent_id, active FROM {w.WORKLOAD.name} WHERE {where}", params)}

    def received_on_many(self, agent_ids: Iterable[UUID | str], day: str) -> dict[str, int]:
        where, params = any_of(self.db, "agent_id", agent_ids)
        return {str(r["agent_id"]): int(r["received"]) for r in self.db.query(
            f"SELECT agent_id, received FROM {w.DAILY.name} WHERE day = ? AND {where}", [day, *params])}

    def quarantined_counts(self, mailbox_ids: Iterable[UUID | str]) -> dict[str, int]:
        where, params = any_of(self.db, "mailbox_id", mailbox_ids)
        return {str(r["mailbox_id"]): int(r["n"]) for r in self.db.query(
            f"SELECT mailbox_id, COUNT(*) AS n FROM {c.QUARANTINE.name} WHERE {where} GROUP BY mailbox_id", params)}

    def conversation(self, conversation_id: UUID | str) -> Row | None:
        rows = self.db.query(f"SELECT * FROM {c.CONVERSATIONS.name} WHERE id = ?", (str(conversation_id),))
        return rows[0] if rows else None

    def messages(self, conversation_id: UUID | str) -> list[Row]:
        return self.db.query(f"SELECT * FROM {c.MESSAGES.name} WHERE conversation_id = ? ORDER BY seq",
                             (str(conversation_id),))

    def message(self, message_id: UUID | str) -> Row | None:
        rows = self.db.query(f"SELECT * FROM {c.MESSAGES.name} WHERE id = ?", (str(message_id),))
        return rows[0] if rows else None

    def assignments(self, conversation_id: UUID | str) -> list[Row]:
        return self.db.query(f"SELECT * FROM {c.ASSIGNMENTS.name} WHERE conversation_id = ? ORDER BY seq",
                             (str(conversation_id),))

    def group_ids_of(self, conversation_id: UUID | str) -> set[str]:
        rows = self.db.query(f"SELECT group_id FROM {c.CONVERSATION_GROUPS.name} WHERE conversation_id = ?",
                             (str(conversation_id),))
        return {str(r["group_id"]) for r in rows}

    # agents' figures (the workload view)
    def workload(self, agent_id: UUID | str) -> int:
        rows = self.db.query(f"SELECT active FROM {w.WORKLOAD.name} WHERE agent_id = ?", (str(agent_id),))
        return int(rows[0]["active"]) if rows else 0

    def received_on(self, agent_id: UUID | str, day: str) -> int:
        rows = self.db.query(f"SELECT received FROM {w.DAILY.name} WHERE agent_id = ? AND day = ?",
                             (str(agent_id), day))
        return int(rows[0]["received"]) if rows else 0

    def daily_totals(self, day: str) -> list[Row]:
        return self.db.query(f"SELECT * FROM {w.DAILY.name} WHERE day = ? ORDER BY agent_id", (day,))

    # every agent's figures with its row, in one statement (a join: no list of 1,000 ids to pass)
    def agents_with_workloads(self) -> list[tuple[Row, int]]:
        """Every agent (as Directory.agents lists them) and its active conversations."""
        rows = self.db.query(f"SELECT a.*, w.active AS {_FIGURE} FROM {d.AGENTS.name} a LEFT JOIN {w.WORKLOAD.name} w "
                             "ON w.agent_id = a.id ORDER BY a.created_at, a.id")
        return [(row, int(row.pop(_FIGURE) or 0)) for row in rows]

    def daily_totals_with_agents(self, day: str) -> list[tuple[Row, int]]:
        """daily_totals' agents (those that still exist), each with its count of the day."""
        rows = self.db.query(f"SELECT a.*, t.received AS {_FIGURE} FROM {w.DAILY.name} t JOIN {d.AGENTS.name} a "
                             "ON a.id = t.agent_id WHERE t.day = ? ORDER BY t.agent_id", (day,))
        return [(row, int(row.pop(_FIGURE))) for row in rows]

    def last_handler(self, customer_email: str) -> str | None:
        rows = self.db.query(f"SELECT agent_id FROM {w.LAST_HANDLER.name} WHERE customer_email = ?",
                             (customer_email.strip().lower(),))
        return str(rows[0]["agent_id"]) if rows else None

    def quarantine(self, mailbox_id: UUID | str | None) -> list[Row]:
        if mailbox_id is None:
            return self.db.query(f"SELECT * FROM {c.QUARANTINE.name} ORDER BY received_at DESC, id")
        return self.db.query(f"SELECT * FROM {c.QUARANTINE.name} WHERE mailbox_id = ? ORDER BY received_at DESC, id",
                             (str(mailbox_id),))

    def quarantined(self, quarantine_id: UUID | str) -> Row | None:
        rows = self.db.query(f"SELECT * FROM {c.QUARANTINE.name} WHERE id = ?", (str(quarantine_id),))
        return rows[0] if rows else None

    def quarantined_count(self, mailbox_id: UUID | str) -> int:
        rows = self.db.query(f"SELECT COUNT(*) AS n FROM {c.QUARANTINE.name} WHERE mailbox_id = ?",
                             (str(mailbox_id),))
        return int(rows[0]["n"])


def as_of(app: Application[Any], conversation_id: UUID, moment: datetime) -> tuple[Row, list[Row]] | None:
    """The conversation and its messages from its events up to `moment` (None: not yet opened).
    Message bodies are read from their blobs, as the view reads them."""
    view = c.Conversations()
    events: list[Any] = []
    stored: Any = app.repository.event_store.get(conversation_id)
    for event in stored:
        if event.timestamp > moment:
            break
        events.append(event)
    with blobs_of(app).database.transaction(commit=False) as tx:
        rows = Rows(tx, fresh=True)  # fresh: it reads no view table, only blobs
        for event in events:
            view.apply(event, rows)
    conversations = rows.cached(c.CONVERSATIONS)
    if not conversations:
        return None
    return conversations[0], sorted(rows.cached(c.MESSAGES), key=lambda m: m["seq"])
