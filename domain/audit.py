"""The tamper-evident log: the hash chain over every stored event, and seals of it.

The chain (the one definition; tools/verify_export.py repeats it for auditors without mailroom):

    digest_0 = 32 zero bytes
    digest_n = SHA-256(digest_{n-1} || field(originator id, 16 bytes)
                                    || field(originator version, 8 bytes big-endian)
                                    || field(topic, UTF-8)
                                    || field(SHA-256(state)), state: the bytes as stored in the events table)
    field(b) = len(b) as 4 bytes big-endian || b

The state enters by its own SHA-256 so that an export can withhold a state (an API token's
hash, as the audit feed does) and stay verifiable: the line then carries the state's digest.

over the stored events in position (notification id) order; positions may have gaps, the chain
only links the events that exist. Digests are shown as lower-case hex.

A seal (`AuditSeal`, its one event `AuditSeal.Sealed`) records the digest at a position, as an
event of the log itself; its id is derived from the position, so two processes sealing the
same position record one seal (the second is refused by the event store).
"""

from __future__ import annotations

import hashlib
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from domain.ids import NAMESPACE

GENESIS = bytes(32)


def _field(data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + data


def link(previous: bytes, originator_id: UUID, originator_version: int, topic: str, state: bytes) -> bytes:
    """digest_n from digest_{n-1} and event n as stored."""
    return hashlib.sha256(
        previous + _field(originator_id.bytes) + _field(originator_version.to_bytes(8, "big"))
        + _field(topic.encode()) + _field(hashlib.sha256(state).digest())
    ).digest()


def seal_id(position: int) -> UUID:
    return uuid5(NAMESPACE, f"audit-seal:{position}")


class AuditSeal(Aggregate, created_event_name="Sealed"):
    """The chain's digest at a position, as it stood when sealed."""

    TOPIC = "mailroom:AuditSeal"

    class Created(Aggregate.Created):
        """Base of the creation event; only Sealed is ever recorded."""

        TOPIC = "mailroom:AuditSeal.Created"

    class Sealed(Created):
        TOPIC = "mailroom:AuditSeal.Sealed"
        position: int
        digest: str

    def __init__(self, position: int, digest: str) -> None:
        self.position = position
        self.digest = digest

    @staticmethod
    def create_id(position: int, digest: str) -> UUID:
        return seal_id(position)


SEALED_TOPIC = "mailroom:AuditSeal.Sealed"
