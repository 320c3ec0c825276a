"""API tokens: only a hash is ever recorded; the id is derived from it, so a
request's token is found without any read model."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.ids import token_id
from domain.values import Role

TOKEN_PREFIX = "mr_"


def new_token_value() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(value: str) -> str:
    # Tokens carry 256 random bits, so a fast hash is enough: no dictionary to guess from.
    return hashlib.sha256(value.encode()).hexdigest()


class ApiToken(Aggregate, created_event_name="Issued"):
    """A bearer token's record: its hash (never the value), its role and agent, when it expires
    (None: never) and whether it was revoked. A token of a deactivated agent is refused as well
    (TokenCommands.authenticate), revoked or not."""

    TOPIC = "mailroom:ApiToken"

    class Created(Aggregate.Created):
        """Base of the creation event; only Issued is ever recorded."""

        TOPIC = "mailroom:ApiToken.Created"

    class Issued(Created):
        """v2 added `expires_at`; v1 tokens never expire (read as v2 with None)."""

        TOPIC = "mailroom:ApiToken.Issued"
        class_version = 2
        name: str
        role: Role
        agent_id: UUID | None
        token_hash: str
        expires_at: datetime | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["expires_at"] = None

    def __init__(self, name: str, role: Role, agent_id: UUID | None, token_hash: str,
                 expires_at: datetime | None = None) -> None:
        self.name = name
        self.role = role
        self.agent_id = agent_id
        self.token_hash = token_hash
        self.expires_at = expires_at
        self.revoked = False

    @staticmethod
    def create_id(token_hash: str) -> UUID:
        return token_id(token_hash)

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    @event("Revoked", topic="mailroom:ApiToken.Revoked")
    def revoke(self) -> None:
        self.revoked = True
