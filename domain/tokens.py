"""API tokens: only a hash is ever recorded; the id is derived from it, so a
request's token is found without any read model."""

from __future__ import annotations

import hashlib
import secrets
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
    TOPIC = "mailroom:ApiToken"

    class Created(Aggregate.Created):
        """Base of the creation event; only Issued is ever recorded."""

        TOPIC = "mailroom:ApiToken.Created"

    class Issued(Created):
        TOPIC = "mailroom:ApiToken.Issued"
        name: str
        role: Role
        agent_id: UUID | None
        token_hash: str

    def __init__(self, name: str, role: Role, agent_id: UUID | None, token_hash: str) -> None:
        self.name = name
        self.role = role
        self.agent_id = agent_id
        self.token_hash = token_hash
        self.revoked = False

    @staticmethod
    def create_id(token_hash: str) -> UUID:
        return token_id(token_hash)

    @event("Revoked", topic="mailroom:ApiToken.Revoked")
    def revoke(self) -> None:
        self.revoked = True
