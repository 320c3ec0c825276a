"""Read-your-writes through the served GraphQL API (in process, followers running): a mutation
waits, bounded, for the views its answer reads, never does their work itself, and a view
that lags past the bound gives a PENDING userError; what the command committed is not lost."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest

import api.graphql.common
from api.bootstrap import Services
from api.main import create_app
from domain.values import Role

CREATE_AGENT = """mutation($i: CreateAgentInput!) { createAgent(input: $i) {
    agent { id name } userErrors { field message code } } }"""
CREATE_TOKEN = """mutation($i: CreateApiTokenInput!) { createApiToken(input: $i) {
    token userErrors { message code } } }"""
AGENTS = "{ agents { name } }"


def run(services: Services, calls: Callable[[Callable[..., Any]], Any]) -> Any:
    """Serves `services` in process (lifespan and followers included) and runs `calls(gql)`."""
    app = create_app(services, run_workers=False)
    token, _ = services.app.create_api_token("admin", Role.ADMIN, None)

    async def main() -> Any:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                async def gql(query: str, **variables: Any) -> Any:
                    response = await client.post("/graphql", json={"query": query, "variables": variables},
                                                 headers={"Authorization": f"Bearer {token}"})
                    body = response.json()
                    assert "errors" not in body, body
                    return body["data"]
                return await calls(gql)

    return asyncio.run(main())


def test_a_lagging_view_gives_pending_and_the_committed_change_is_kept(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api.graphql.common, "READ_WAIT_SECONDS", 0.5)
    directory = services.projections.views["directory"]
    apply = directory.apply
    broken = {"on": True}

    def stuck(event: Any, rows: Any) -> None:
        if broken["on"] and getattr(event, "name", None) == "Lagging":
            raise RuntimeError("view cannot apply this yet")
        apply(event, rows)

    monkeypatch.setattr(directory, "apply", stuck)

    async def calls(gql: Callable[..., Any]) -> dict[str, Any]:
        fine = await gql(CREATE_AGENT, i={"name": "Ann", "email": "ann@example.com"})
        lagging = await gql(CREATE_AGENT, i={"name": "Lagging", "email": "lag@example.com"})
        token = await gql(CREATE_TOKEN, i={"name": "later", "role": "AUDITOR"})
        broken["on"] = False
        services.projections.followers["directory"].health.retry_at = 0.0
        for _ in range(100):
            listed = await gql(AGENTS)
            if len(listed["agents"]) == 2:
                break
            await asyncio.sleep(0.05)
        return {"fine": fine, "lagging": lagging, "token": token, "listed": listed}

    out = run(services, calls)
    assert out["fine"]["createAgent"]["userErrors"] == []
    assert out["fine"]["createAgent"]["agent"]["name"] == "Ann"
    lagging = out["lagging"]["createAgent"]
    assert lagging["agent"] is None
    [error] = lagging["userErrors"]
    assert error["code"] == "PENDING" and "do not repeat" in error["message"]
    # The token was created while the view lagged: it is returned (shown once), with PENDING.
    created = out["token"]["createApiToken"]
    assert created["token"] and [e["code"] for e in created["userErrors"]] == ["PENDING"]
    # Committed once: the view shows both agents when it catches up, not a second "Lagging".
    assert sorted(a["name"] for a in out["listed"]["agents"]) == ["Ann", "Lagging"]
