"""Bearer tokens: a missing, unknown, revoked or expired token (or one of a deactivated agent) is
HTTP 401 before any GraphQL runs. Each request checks the event store (domain/commands/tokens.py),
so a revocation holds on every API process at once. A token's use is noted in a side table at
most once a minute (adapters/token_usage.py), never as an event."""

from __future__ import annotations

import asyncio
import logging
import threading
from weakref import WeakKeyDictionary

from fastapi import HTTPException, Request

from adapters.database import Database
from adapters.token_usage import TokenUsage
from api.services import Services
from domain.commands.tokens import Principal

log = logging.getLogger("mailroom.auth")
_usage: WeakKeyDictionary[Database, TokenUsage] = WeakKeyDictionary()
_usage_lock = threading.Lock()


def token_usage(services: Services) -> TokenUsage:
    """The process's one TokenUsage over this database (its table made on first use)."""
    with _usage_lock:
        found = _usage.get(services.database)
        if found is None:
            found = _usage[services.database] = TokenUsage(services.database)
        return found


def bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


def wants_ide(request: Request) -> bool:
    """A browser opening GraphiQL: the page itself needs no token (its requests do)."""
    accept = request.headers.get("accept", "")
    return request.method == "GET" and "text/html" in accept and "query" not in request.query_params


def who(services: Services, token: str) -> Principal | None:
    principal = services.app.authenticate(token)
    if principal is not None and principal.token_id is not None:
        try:
            token_usage(services).used(principal.token_id)
        except Exception:  # when it was last used is a convenience: never a reason to refuse
            log.warning("could not note the use of token %s", principal.token_id, exc_info=True)
    return principal


async def authenticate(services: Services, request: Request) -> Principal | None:
    token = bearer(request)
    principal = await asyncio.to_thread(who, services, token) if token else None
    if principal is None and not wants_ide(request):
        raise HTTPException(
            status_code=401,
            detail="missing or unknown bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return principal
