"""Derived identities: the same key always names the same aggregate, which makes
upserts and uniqueness claims safe under concurrency (the event store refuses a
second 'created' event for one id)."""

from __future__ import annotations

from uuid import UUID, uuid5

NAMESPACE = UUID("6f1d7a4e-3b0c-5e7a-9a4d-2c8e5b1f0a77")


def claim_id(kind: str, key: str) -> UUID:
    return uuid5(NAMESPACE, f"claim:{kind}:{key.strip().lower()}")


def contact_id(email: str) -> UUID:
    return uuid5(NAMESPACE, f"contact:{email.strip().lower()}")


def token_id(token_hash: str) -> UUID:
    return uuid5(NAMESPACE, f"token:{token_hash}")
