"""Issuing, revoking and checking API tokens.

Every request is checked against the event store, not a cache or a read model: the token's own
events (at most two), and for an AGENT token its agent's latest event, so that a revocation or
a deactivation refuses the token's next request on every API process sharing the database."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast
from uuid import UUID

from domain import events
from domain.agents import Agent
from domain.commands.agents import deactivated
from domain.commands.base import Base, Written, retrying
from domain.errors import Collector, not_found
from domain.tokens import ApiToken, hash_token, new_token_value
from domain.validation import check_name
from domain.values import Role

AGENT_DEACTIVATED: str = cast(Any, events.AGENT_DEACTIVATED).TOPIC  # the stored topic


@dataclass(frozen=True)
class Principal:
    """Who is calling: a role, and for AGENT tokens the agent."""

    role: Role
    agent_id: UUID | None
    token_id: UUID | None


def utc(moment: datetime) -> datetime:
    """An aware datetime in UTC; a naive one is taken to be UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class TokenCommands(Base):
    admin_token: str | None = None

    def create_api_token(self, name: str, role: Role, agent_id: UUID | None,
                         expires_at: datetime | None = None) -> tuple[str, Written]:
        """Returns the token value (shown once) and what was written."""
        errors = Collector()
        check_name(errors, ("input", "name"), name)
        if role is Role.AGENT and agent_id is None:
            errors.add(("input", "agentId"), "AGENT tokens need the agent's id")
        if expires_at is not None:
            expires_at = utc(expires_at)
            if expires_at <= datetime.now(UTC):
                errors.add(("input", "expiresAt"), "the expiry must be in the future")
        errors.raise_if_any()
        if agent_id is not None:
            agent = self._find(agent_id)
            if not isinstance(agent, Agent):
                raise not_found(("input", "agentId"), f"agent {agent_id}")
            if not agent.active:
                raise deactivated(("input", "agentId"), agent)
        value = new_token_value()
        token = ApiToken(name=name.strip(), role=role, agent_id=agent_id, token_hash=hash_token(value),
                         expires_at=expires_at)
        return value, Written(token.id, self._store(token))

    @retrying()
    def revoke_api_token(self, token_id: UUID) -> Written:
        """Its next request is refused (HTTP 401). Revoking a revoked token changes nothing."""
        token = self._find(token_id)
        if not isinstance(token, ApiToken):
            raise not_found(("id",), f"API token {token_id}")
        if not token.revoked:
            token.revoke()
        return Written(token.id, self._store(token))

    def authenticate(self, value: str, now: datetime | None = None) -> Principal | None:
        if self.admin_token and hmac.compare_digest(value.encode(), self.admin_token.encode()):
            return Principal(Role.ADMIN, None, None)
        token = self._find(ApiToken.create_id(hash_token(value)))
        if not isinstance(token, ApiToken) or token.revoked or token.expired(now or datetime.now(UTC)):
            return None
        if token.agent_id is not None and self._deactivated(token.agent_id):
            return None
        return Principal(token.role, token.agent_id, token.id)

    def _deactivated(self, agent_id: UUID) -> bool:
        """By the agent's latest event alone (nothing is recorded after Deactivated): one indexed
        read however long the agent's history is."""
        latest = self.recorder.select_events(agent_id, desc=True, limit=1)
        return bool(latest) and latest[0].topic == AGENT_DEACTIVATED
