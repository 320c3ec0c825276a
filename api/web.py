"""The web front end, built from web/ into api/static/ (committed, shipped in the package):
the SPA at `/`, its assets at `/assets/`, and GraphiQL from the same local bundle for a
browser's GET of `/graphql` (no CDN). Every page is served under a strict Content-Security-
Policy: scripts and styles only from this origin, nothing inline, no eval, connections only
back to this origin (HTTP and its WebSocket), mail HTML only in sandboxed `srcdoc` iframes."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

STATIC = Path(__file__).with_name("static")

# `srcdoc` iframes inherit this policy: mail HTML (already sanitised: no scripts, no styles,
# no remote images) runs no script and loads nothing remote even if the sanitiser missed one.
CSP = "; ".join([
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data: blob:",
    "font-src 'self' data:",
    "connect-src 'self'",  # CSP3: 'self' covers ws:/wss: to the same host (subscriptions)
    "frame-src 'self'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
    "object-src 'none'",
])
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def page(name: str) -> Response:
    path = STATIC / name
    if not path.is_file():
        return PlainTextResponse("The web bundle is not built (cd web && npm ci && npm run build).",
                                 status_code=503, headers=SECURITY_HEADERS)
    return FileResponse(path, media_type="text/html", headers={**SECURITY_HEADERS, "Cache-Control": "no-cache"})


class GraphiQLPage:
    """A browser's GET of /graphql (Accept: text/html, no `query` parameter) gets GraphiQL;
    every other request (POST, GET with a query, the WebSocket) goes on to the GraphQL router."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] == "http" and scope["method"] in ("GET", "HEAD")
                and scope["path"].rstrip("/") == "/graphql" and b"query=" not in scope.get("query_string", b"")):
            accept = dict(scope["headers"]).get(b"accept", b"")
            if b"text/html" in accept:
                await page("graphiql.html")(scope, receive, send)
                return
        await self.app(scope, receive, send)


class ImmutableAssets(StaticFiles):
    """Content-hashed file names: cached for good."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if response.status_code == 200:
            response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        response.headers.update(SECURITY_HEADERS)
        return response


def install_web(app: FastAPI) -> None:
    app.add_middleware(GraphiQLPage)
    app.mount("/assets", ImmutableAssets(directory=STATIC / "assets", check_dir=False), name="assets")

    @app.get("/", include_in_schema=False)
    async def index() -> Response:
        return page("index.html")
