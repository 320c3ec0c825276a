"""Seals of the event log (ADMIN and AUDITOR): read from `audit_seals`, which the audit chain
follower fills as it meets AuditSeal.Sealed events (projections/chain.py). Erasing a customer
(ADMIN; api/erasure.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry

from api.erasure import erase_customer
from api.graphql.common import ADMIN_ONLY, READERS, Ctx, UserError, blocking, command, require, services


@strawberry.type(description="A digest of the whole log up to a position: a hash chain over every stored event, "
                             "recorded as an event itself. An auditor keeps the digest outside mailroom; "
                             "`mailroom audit verify` recomputes the chain and names the first position that no "
                             "longer matches a seal.")
class AuditSeal:
    position: int
    digest: str = strawberry.field(description="Hex SHA-256 of the chain up to and including position.")
    sealed_at: datetime


def _seal(row: dict[str, Any]) -> AuditSeal:
    return AuditSeal(position=int(row["position"]), digest=str(row["digest"]),
                     sealed_at=datetime.fromisoformat(str(row["sealed_at"])))


@strawberry.type
class AuditQuery:
    @strawberry.field(description="Seals of the event log, oldest first (see `mailroom audit`).")
    async def audit_seals(self, info: Ctx) -> list[AuditSeal]:
        require(info, *READERS)
        consumer: Any = services(info).chain.consumer
        return [_seal(r) for r in await blocking(consumer.seals)]


@strawberry.type(description="What eraseCustomer made unreadable. The log keeps its events (the audit chain stays "
                             "valid); their personal fields now read as tombstones.")
class EraseCustomerPayload:
    customer: str | None = strawberry.field(description=(
        "The pseudonymous address (erased-…@….erased.invalid) that stands for the customer from now on."))
    conversations: int = 0
    messages: int = strawberry.field(default=0, description="Inbound messages and replies.")
    contacts: int = 0
    records: int = strawberry.field(default=0, description="Sidebar records pushed about the customer.")
    blobs: int = strawberry.field(default=0, description="Stored bodies, raw messages and attachments deleted.")
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class AuditMutations:
    @strawberry.mutation(description=(
        "ADMIN. Erases a customer (right to erasure) by crypto-shredding: deletes their key and their stored bodies, "
        "raw messages and attachments; every view shows a tombstone in place of what they wrote or were called. "
        "Safe to repeat (a cut-short erasure is finished by running it again)."))
    async def erase_customer(self, info: Ctx, email: str) -> EraseCustomerPayload:
        require(info, *ADMIN_ONLY)
        erased, errors = await command(info, lambda: erase_customer(services(info), email))
        if erased is None:
            return EraseCustomerPayload(customer=None, user_errors=errors)
        return EraseCustomerPayload(customer=erased.customer, conversations=erased.conversations,
                                    messages=erased.messages, contacts=erased.contacts, records=erased.records,
                                    blobs=erased.blobs, user_errors=errors)
