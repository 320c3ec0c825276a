"""Read-your-writes through the served GraphQL API (in process, followers running): a mutation
waits, bounded, for the views its answer reads, never does their work itself, and a view
that lags past the bound gives a PENDING userError; what the command committed is not lost."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

import api.graphql.common
from adapters.inbound import arrivals
from api.bootstrap import Services
from api.main import create_app
from domain.conversation import Conversation
from domain.mail import conversation_ref, message_key
from domain.values import Role
from tests.integration.intake_support import mail

CREATE_AGENT = """mutation($i: CreateAgentInput!) { createAgent(input: $i) {
    agent { id name } userErrors { field message code } } }"""
CREATE_TOKEN = """mutation($i: CreateApiTokenInput!) { createApiToken(input: $i) {
    token userErrors { message code } } }"""
AGENTS = "{ agents { name } }"


def run(services: Services, calls: Callable[[Callable[..., Any]], Any], processes: bool = False) -> Any:
    """Serves `services` in process (lifespan and followers included; the assigner and mail
    workers too with `processes`; no mailbox is bound) and runs `calls(gql)`."""
    app = create_app(services, run_workers=processes)
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


CLOSE = """mutation($id: UUID!) { closeConversation(id: $id) {
    conversation { id status } userErrors { message code } } }"""


def test_closing_waits_for_the_views_its_answer_reads_not_for_every_view(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A view the payload does not read (the counts) lagging does not make the close PENDING."""
    monkeypatch.setattr(api.graphql.common, "READ_WAIT_SECONDS", 0.5)
    raw = mail(subject="Order 1", message_id="<close1@customer.example>")
    services.app.take_in(uuid.uuid4(), arrivals([("imap:INBOX:1:c1", raw)], "support@example.com",
                                                services.blobs))
    conversation_id = Conversation.create_id(conversation_ref(message_key("close1@customer.example")))
    counts = services.projections.views["counts"]

    def stuck(event: Any, rows: Any) -> None:
        raise RuntimeError("counts cannot apply anything now")

    async def calls(gql: Callable[..., Any]) -> dict[str, Any]:
        services.projections.wait_for(services.projections.head())  # the arrival is shown everywhere
        monkeypatch.setattr(counts, "apply", stuck)
        return dict(await gql(CLOSE, id=str(conversation_id)))

    closed = run(services, calls, processes=True)["closeConversation"]
    assert closed["userErrors"] == []
    assert closed["conversation"] == {"id": str(conversation_id), "status": "CLOSED"}
    assert services.projections.followers["counts"].health.failures > 0  # it really lagged
