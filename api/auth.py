"""Bearer tokens: a missing or unknown token is HTTP 401 before any GraphQL runs."""

from __future__ import annotations

import asyncio

from fastapi import HTTPException, Request

from api.services import Services
from domain.commands.tokens import Principal


def bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


def wants_ide(request: Request) -> bool:
    """A browser opening GraphiQL: the page itself needs no token (its requests do)."""
    accept = request.headers.get("accept", "")
    return request.method == "GET" and "text/html" in accept and "query" not in request.query_params


async def authenticate(services: Services, request: Request) -> Principal | None:
    token = bearer(request)
    who = await asyncio.to_thread(services.app.authenticate, token) if token else None
    if who is None and not wants_ide(request):
        raise HTTPException(
            status_code=401,
            detail="missing or unknown bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return who
