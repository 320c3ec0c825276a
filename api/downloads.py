"""Authenticated downloads: attachments of messages and raw quarantined messages."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import quote
from uuid import UUID

from fastapi import APIRouter, HTTPException, Request, Response

from api.auth import authenticate
from api.services import Services
from domain.commands.tokens import Principal
from domain.values import Role


def downloads_router(services: Services) -> APIRouter:
    router = APIRouter()

    async def caller(request: Request) -> Principal:
        who = await authenticate(services, request)
        if who is None:
            raise HTTPException(status_code=401, detail="missing or unknown bearer token")
        return who

    async def agent_may_see(who: Principal, conversation_id: str) -> bool:
        if who.agent_id is None:
            return False
        groups = {str(r["id"]) for r in await asyncio.to_thread(services.directory.groups_of_agent, who.agent_id)}
        return bool(groups & await asyncio.to_thread(services.conversations.group_ids_of, conversation_id))

    @router.get("/attachments/{message_id}/{index}")
    async def attachment(message_id: str, index: int, request: Request) -> Response:
        who = await caller(request)
        message_id = _id_or_404(message_id)
        message = await asyncio.to_thread(services.conversations.message, message_id)
        if who.role is Role.AGENT and (message is None or not await agent_may_see(who, message["conversation_id"])):
            raise HTTPException(status_code=403, detail="forbidden")  # agents: their groups' conversations only
        items = json.loads(message["attachments"]) if message else []
        if not 0 <= index < len(items) or not items[index]["blob"]:
            raise HTTPException(status_code=404, detail="no such attachment")
        item = items[index]
        data = await asyncio.to_thread(services.blobs.get, item["blob"])
        if data is None:
            raise HTTPException(status_code=404, detail="attachment content missing")
        filename = item["filename"] or f"attachment-{index}"
        return Response(data, media_type=item["content_type"], headers=_download_headers(filename))

    @router.get("/quarantine/{quarantine_id}/raw")
    async def quarantined_raw(quarantine_id: str, request: Request) -> Response:
        if (await caller(request)).role not in (Role.ADMIN, Role.AUDITOR):
            raise HTTPException(status_code=403, detail="forbidden")
        quarantine_id = _id_or_404(quarantine_id)
        row = await asyncio.to_thread(services.conversations.quarantined, quarantine_id)
        data = await asyncio.to_thread(services.blobs.get, row["raw_blob"]) if row else None
        if data is None:
            raise HTTPException(status_code=404, detail="no such quarantined message")
        return Response(data, media_type="message/rfc822", headers=_download_headers(f"{quarantine_id}.eml"))

    return router


def _id_or_404(text: str) -> str:
    """Ids in these paths are UUIDs: anything else (a NUL byte included) is not found, and
    never reaches the database."""
    try:
        return str(UUID(text))
    except ValueError:
        raise HTTPException(status_code=404, detail="not found") from None


def _download_headers(filename: str) -> dict[str, str]:
    # Always a download, never rendered by the browser: attachments are untrusted content.
    return {
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "sandbox",
    }
