"""Authenticated downloads: attachments of messages and raw quarantined messages."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request, Response

from api.auth import authenticate
from api.bootstrap import Services
from domain.values import Role


def downloads_router(services: Services) -> APIRouter:
    router = APIRouter()

    async def caller(request: Request) -> Role:
        who = await authenticate(services, request)
        if who is None:
            raise HTTPException(status_code=401, detail="missing or unknown bearer token")
        return who.role

    @router.get("/attachments/{message_id}/{index}")
    async def attachment(message_id: str, index: int, request: Request) -> Response:
        role = await caller(request)
        if role is Role.AGENT:  # agents see their groups' conversations only; none are routed yet
            raise HTTPException(status_code=403, detail="forbidden")
        message = await asyncio.to_thread(services.conversations.message, message_id)
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
        if await caller(request) not in (Role.ADMIN, Role.AUDITOR):
            raise HTTPException(status_code=403, detail="forbidden")
        row = await asyncio.to_thread(services.conversations.quarantined, quarantine_id)
        data = await asyncio.to_thread(services.blobs.get, row["raw_blob"]) if row else None
        if data is None:
            raise HTTPException(status_code=404, detail="no such quarantined message")
        return Response(data, media_type="message/rfc822", headers=_download_headers(f"{quarantine_id}.eml"))

    return router


def _download_headers(filename: str) -> dict[str, str]:
    # Always a download, never rendered by the browser: attachments are untrusted content.
    return {
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "sandbox",
    }
