"""API tokens as the admin lists them: the directory's records (projections/directory.py), when
each was last used (adapters/token_usage.py), and, for a deactivated agent's token that was not
revoked before, the deactivation as its revocation (no token of a deactivated agent is accepted).
Never a value or a hash: the records hold neither."""

from __future__ import annotations

from uuid import UUID

from adapters import token_usage
from adapters.database import Database, Row
from projections import directory as d

COLUMNS = ("t.id, t.name, t.role, t.agent_id, t.created_at, t.expires_at, "
           "COALESCE(t.revoked_at, a.deactivated_at) AS revoked_at, u.last_used_at")


class ApiTokens:
    """Reads; the usage table must exist (adapters.token_usage.TokenUsage makes it)."""

    def __init__(self, database: Database) -> None:
        self.db = database

    def _select(self, where: str = "") -> str:
        return (f"SELECT {COLUMNS} FROM {d.TOKENS.name} t LEFT JOIN {d.AGENTS.name} a ON a.id = t.agent_id "
                f"LEFT JOIN {token_usage.TABLE} u ON u.token_id = t.id{where}")

    def all(self) -> list[Row]:
        """Oldest first."""
        return self.db.query(self._select() + " ORDER BY t.created_at, t.id")

    def one(self, token_id: UUID | str) -> Row | None:
        rows = self.db.query(self._select(" WHERE t.id = ?"), (str(token_id),))
        return rows[0] if rows else None
