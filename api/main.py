"""The FastAPI application: /graphql (with GraphiQL), /healthz, /metrics."""

from __future__ import annotations

import gc
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import HTTPConnection
from strawberry.fastapi import GraphQLRouter
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types.unset import UNSET, UnsetType

from api.auth import authenticate
from api.downloads import downloads_router
from api.graphql.common import Context
from api.graphql.schema import schema
from api.graphql.subscriptions import connect
from api.limits import BodyLimit
from api.live import hub_of
from api.metrics import Metrics
from api.processes import sync
from api.processes.workers import Workers
from api.services import Services
from api.web import install_web

MAX_BODY = 1_000_000  # bytes; the largest legitimate request is a rule with many conditions
# Python's collector, while serving: a full collection scans every object of the process (over
# 100k once started: modules, schema, wiring), ~10 ms and more each, and came every few requests
# that build long lists (1,000 agents): most of those requests' p99. Frozen, those objects are
# no longer scanned (bench/graphql_reads: agentWorkloads' collector time per request ~10 ->
# 0.5 ms, longest pause ~300 -> ~5 ms). The thresholds stay Python's: a larger young generation
# (2,000 to 10,000) made fewer collections but longer ones, each over a whole request's objects
# (a page's collector time at p99 2 ms at 700, 4 ms at 2,000, 5-8 ms at 10,000).


def settle_collector() -> None:
    """Collects, then freezes what is alive now: it stays out of later collections' scans."""
    gc.collect()
    gc.freeze()


def tune_collector(workers: Workers) -> Callable[[], None]:
    """Freezes the process once started, and again once its followers have caught up (their
    start-up work done); returns the undo, for the lifespan's end."""
    settle_collector()

    def when_ready() -> None:
        while not workers.stopping.wait(0.5):
            if all(f.describe()["ready"] for f in workers.followers):
                settle_collector()
                return

    threading.Thread(target=when_ready, name="gc-settle", daemon=True).start()

    def undo() -> None:
        gc.unfreeze()  # collectable again once the app is gone (tests start many)

    return undo


class Router(GraphQLRouter[Context, None]):
    """/graphql; its WebSocket serves subscriptions (graphql-transport-ws), the socket
    authenticated by the token in `connection_init` (api/graphql/subscriptions.py)."""

    async def run(self, request: Any, context: Any = UNSET, root_value: Any = UNSET) -> Any:
        """A socket for any other subprotocol (or none) is refused before it is accepted
        (HTTP 403), as every socket was before subscriptions were served."""
        if self.is_websocket_request(request) and (
                await self.pick_websocket_subprotocol(request) != GRAPHQL_TRANSPORT_WS_PROTOCOL):
            return await self.reject_websocket(request)
        return await super().run(request, context, root_value)

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        await connect(context)
        return await super().on_ws_connect(context)


def create_app(services: Services, run_workers: bool = True) -> FastAPI:
    workers = Workers(services, processes=run_workers)
    metrics = Metrics(services)
    live = hub_of(services)  # the one log reader of the subscriptions (api/live.py)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        workers.start()
        live.start()
        untune = tune_collector(workers)
        try:
            yield
        finally:
            live.stop()
            workers.stop()
            untune()

    # No /docs, /redoc or /openapi.json: the API is GraphQL (schema by introspection, GraphiQL).
    app = FastAPI(title="mailroom", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)

    async def context(connection: HTTPConnection) -> Context:
        if not isinstance(connection, Request):
            # A WebSocket (subscriptions): nobody until connection_init carries a token (Router).
            return Context(services=services, principal=None)
        return Context(services=services, principal=await authenticate(services, connection))

    graphql = Router(
        schema, context_getter=context, subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
        connection_init_wait_timeout=timedelta(seconds=10),
        graphql_ide=None,  # GraphiQL comes from the local bundle (api/web.py), not from a CDN
    )
    app.include_router(graphql, prefix="/graphql")
    app.include_router(downloads_router(services))
    install_web(app)  # the UI at /, GraphiQL at /graphql for browsers (api/web.py)

    @app.middleware("http")
    async def count_requests(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        if request.url.path.startswith("/graphql"):
            metrics.requests.labels(str(response.status_code)).inc()
        return response

    # Outermost: bytes are counted as they arrive, chunked or not, before anything buffers them.
    app.add_middleware(BodyLimit, max_body=MAX_BODY)

    @app.get("/healthz")
    async def healthz() -> dict[str, object]:
        """Answers at once: "up" as soon as the process serves; "ready" once every follower
        this process runs has reached the head of the log (see `followers`)."""
        followers = {f.name: f.describe() for f in workers.followers}
        ready = all(f["ready"] for f in followers.values()) and workers.alive()
        return {"status": "ok", "ready": ready, "workers": run_workers and workers.alive(), "followers": followers}

    @app.get("/metrics")
    async def metrics_endpoint() -> Response:
        body = generate_latest(metrics.registry) + generate_latest(sync.REGISTRY)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return app



