"""Issuing API tokens and telling who a presented token belongs to."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from uuid import UUID

from domain.agents import Agent
from domain.commands.base import Base, Written
from domain.errors import Collector, not_found
from domain.tokens import ApiToken, hash_token, new_token_value
from domain.validation import check_name
from domain.values import Role


@dataclass(frozen=True)
class Principal:
    """Who is calling: a role, and for AGENT tokens the agent."""

    role: Role
    agent_id: UUID | None
    token_id: UUID | None


class TokenCommands(Base):
    admin_token: str | None = None

    def create_api_token(self, name: str, role: Role, agent_id: UUID | None) -> tuple[str, Written]:
        """Returns the token value (shown once) and what was written."""
        errors = Collector()
        check_name(errors, ("input", "name"), name)
        if role is Role.AGENT and agent_id is None:
            errors.add(("input", "agentId"), "AGENT tokens need the agent's id")
        errors.raise_if_any()
        if agent_id is not None and not isinstance(self._find(agent_id), Agent):
            raise not_found(("input", "agentId"), f"agent {agent_id}")
        value = new_token_value()
        token = ApiToken(name=name.strip(), role=role, agent_id=agent_id, token_hash=hash_token(value))
        return value, Written(token.id, self._store(token))

    def authenticate(self, value: str) -> Principal | None:
        if self.admin_token and hmac.compare_digest(value.encode(), self.admin_token.encode()):
            return Principal(Role.ADMIN, None, None)
        token = self._find(ApiToken.create_id(hash_token(value)))
        if not isinstance(token, ApiToken) or token.revoked:
            return None
        return Principal(token.role, token.agent_id, token.id)
