"""Queries over the read models: plain rows out, every one served by a key or an index."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any
from uuid import UUID

from adapters.database import Database, Row
from domain.ports import References
from projections import directory as d


def _s(value: UUID | str) -> str:
    return str(value)


def any_of(database: Database, column: str, values: Iterable[UUID | str]) -> tuple[str, list[Any]]:
    """`column` is one of `values`: a condition with one parameter, however many values there
    are (PostgreSQL: `= ANY(array)`; SQLite: `IN` over json_each), so a batch is one statement."""
    keys = list(dict.fromkeys(_s(v) for v in values))
    if database.is_postgres:
        return f"{column} = ANY(?)", [keys]
    return f"{column} IN (SELECT value FROM json_each(?))", [json.dumps(keys)]


def grouped(rows: list[Row], key: str) -> dict[str, list[Row]]:
    """Rows by the value of `key` (which is taken out of each row), in their order."""
    out: dict[str, list[Row]] = {}
    for row in rows:
        out.setdefault(str(row.pop(key)), []).append(row)
    return out


class Directory(References):
    def __init__(self, database: Database) -> None:
        self.db = database

    def _one(self, sql: str, *params: Any) -> Row | None:
        rows = self.db.query(sql, params)
        return rows[0] if rows else None

    def _by_id(self, table: str, ids: Iterable[UUID | str]) -> dict[str, Row]:
        where, params = any_of(self.db, "id", ids)
        return {str(r["id"]): r for r in self.db.query(f"SELECT * FROM {table} WHERE {where}", params)}

    # batches: one statement for many keys (the API's per-request loaders)
    def mailboxes_by_id(self, ids: Iterable[UUID | str]) -> dict[str, Row]:
        return self._by_id(d.MAILBOXES.name, ids)

    def agents_by_id(self, ids: Iterable[UUID | str]) -> dict[str, Row]:
        return self._by_id(d.AGENTS.name, ids)

    def groups_by_id(self, ids: Iterable[UUID | str]) -> dict[str, Row]:
        return self._by_id(d.GROUPS.name, ids)

    def rules_by_id(self, ids: Iterable[UUID | str]) -> dict[str, Row]:
        return self._by_id(d.RULES.name, ids)

    def accounts_by_id(self, ids: Iterable[UUID | str]) -> dict[str, Row]:
        return self._by_id(d.ACCOUNTS.name, ids)

    def contacts_by_id(self, ids: Iterable[UUID | str]) -> dict[str, Row]:
        return self._by_id(d.CONTACTS.name, ids)

    def groups_of_agents(self, agent_ids: Iterable[UUID | str]) -> dict[str, list[Row]]:
        """Per agent, its groups as groups_of_agent orders them."""
        where, params = any_of(self.db, "m.agent_id", agent_ids)
        return grouped(self.db.query(
            f"SELECT m.agent_id AS of_agent, g.* FROM {d.MEMBERS.name} m JOIN {d.GROUPS.name} g "
            f"ON g.id = m.group_id WHERE {where} ORDER BY g.created_at, g.id", params), "of_agent")

    def members_of_groups(self, group_ids: Iterable[UUID | str]) -> dict[str, list[Row]]:
        """Per group, its members in the order they joined."""
        where, params = any_of(self.db, "m.group_id", group_ids)
        return grouped(self.db.query(
            f"SELECT m.group_id AS of_group, a.* FROM {d.MEMBERS.name} m JOIN {d.AGENTS.name} a "
            f"ON a.id = m.agent_id WHERE {where} ORDER BY m.position", params), "of_group")

    def mailboxes_in_workspace(self, mailbox_ids: Iterable[UUID | str]) -> set[str]:
        where, params = any_of(self.db, "rm.mailbox_id", mailbox_ids)
        return {str(r["mailbox_id"]) for r in self.db.query(
            f"SELECT DISTINCT rm.mailbox_id FROM {d.RULE_MAILBOXES.name} rm JOIN {d.RULES.name} r "
            f"ON r.id = rm.rule_id WHERE {where} AND r.enabled = 1", params)}

    # mailboxes
    def mailboxes(self) -> list[Row]:
        return self.db.query(f"SELECT * FROM {d.MAILBOXES.name} ORDER BY created_at, id")

    def mailbox(self, mailbox_id: UUID | str) -> Row | None:
        return self._one(f"SELECT * FROM {d.MAILBOXES.name} WHERE id = ?", _s(mailbox_id))

    def in_workspace(self, mailbox_id: UUID | str) -> bool:
        return self._one(
            f"SELECT 1 AS hit FROM {d.RULE_MAILBOXES.name} rm JOIN {d.RULES.name} r ON r.id = rm.rule_id "
            "WHERE rm.mailbox_id = ? AND r.enabled = 1 LIMIT 1", _s(mailbox_id)) is not None

    # agents and groups
    def agents(self) -> list[Row]:
        return self.db.query(f"SELECT * FROM {d.AGENTS.name} ORDER BY created_at, id")

    def agent(self, agent_id: UUID | str) -> Row | None:
        return self._one(f"SELECT * FROM {d.AGENTS.name} WHERE id = ?", _s(agent_id))

    def groups(self) -> list[Row]:
        return self.db.query(f"SELECT * FROM {d.GROUPS.name} ORDER BY created_at, id")

    def group(self, group_id: UUID | str) -> Row | None:
        return self._one(f"SELECT * FROM {d.GROUPS.name} WHERE id = ?", _s(group_id))

    def groups_of_agent(self, agent_id: UUID | str) -> list[Row]:
        return self.db.query(
            f"SELECT g.* FROM {d.MEMBERS.name} m JOIN {d.GROUPS.name} g ON g.id = m.group_id "
            "WHERE m.agent_id = ? ORDER BY g.created_at, g.id", (_s(agent_id),))

    def members(self, group_id: UUID | str) -> list[Row]:
        return self.db.query(
            f"SELECT a.* FROM {d.MEMBERS.name} m JOIN {d.AGENTS.name} a ON a.id = m.agent_id "
            "WHERE m.group_id = ? ORDER BY m.position", (_s(group_id),))

    # customers
    def accounts(self) -> list[Row]:
        return self.db.query(f"SELECT * FROM {d.ACCOUNTS.name} ORDER BY created_at, id")

    def account(self, account_id: UUID | str) -> Row | None:
        return self._one(f"SELECT * FROM {d.ACCOUNTS.name} WHERE id = ?", _s(account_id))

    def contact(self, contact_id: UUID | str) -> Row | None:
        return self._one(f"SELECT * FROM {d.CONTACTS.name} WHERE id = ?", _s(contact_id))

    # routing rules
    def rules(self) -> list[Row]:
        return self.db.query(f"SELECT * FROM {d.RULES.name} ORDER BY priority, created_at, id")

    def rule(self, rule_id: UUID | str) -> Row | None:
        return self._one(f"SELECT * FROM {d.RULES.name} WHERE id = ?", _s(rule_id))

    def rules_using_mailbox(self, mailbox_id: UUID) -> list[str]:
        return [r["name"] for r in self.db.query(
            f"SELECT r.name FROM {d.RULE_MAILBOXES.name} x JOIN {d.RULES.name} r ON r.id = x.rule_id "
            "WHERE x.mailbox_id = ? ORDER BY r.name", (_s(mailbox_id),))]

    def rules_using_group(self, group_id: UUID) -> list[str]:
        return [r["name"] for r in self.db.query(
            f"SELECT r.name FROM {d.RULE_GROUPS.name} x JOIN {d.RULES.name} r ON r.id = x.rule_id "
            "WHERE x.group_id = ? ORDER BY r.name", (_s(group_id),))]
