"""Seals of the event log (ADMIN and AUDITOR): read from `audit_seals`, which the audit chain
follower fills as it meets AuditSeal.Sealed events (projections/chain.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry

from api.graphql.common import READERS, Ctx, blocking, require, services


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
