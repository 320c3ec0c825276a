"""A claim reserves a unique key (a mailbox address, an agent email) for one owner.

Its id is derived from the key, so two concurrent claims of one key collide in
the event store and only one can be saved: uniqueness without a read model.
"""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.ids import claim_id


class Claim(Aggregate):
    TOPIC = "mailroom:Claim"

    class Created(Aggregate.Created):
        TOPIC = "mailroom:Claim.Created"
        kind: str
        key: str

    def __init__(self, kind: str, key: str) -> None:
        self.kind = kind
        self.key = key
        self.owner_id: UUID | None = None

    @staticmethod
    def create_id(kind: str, key: str) -> UUID:
        return claim_id(kind, key)

    @event("Taken", topic="mailroom:Claim.Taken")
    def take(self, owner_id: UUID) -> None:
        self.owner_id = owner_id

    @event("Released", topic="mailroom:Claim.Released")
    def release(self) -> None:
        self.owner_id = None
