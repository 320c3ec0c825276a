"""Who may call the API at all, and what each role may do, against the real server."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from tests.e2e.conftest import Server, cli_token, error_codes

ME = "query { me { role agent { id name email } } }"
CREATE_AGENT = """
mutation($input: CreateAgentInput!) {
  createAgent(input: $input) { agent { id name email status } userErrors { field message code } }
}"""
CREATE_TOKEN = """
mutation($input: CreateApiTokenInput!) {
  createApiToken(input: $input) { token userErrors { field message code } }
}"""
SET_STATUS = """
mutation($agentId: UUID!, $status: AgentStatus!) {
  setAgentStatus(agentId: $agentId, status: $status) {
    agent { id status } userErrors { field message code }
  }
}"""
AGENT = "query($id: UUID!) { agent(id: $id) { id status } }"


@pytest.fixture(scope="module", params=["sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    """Who may call what does not depend on the engine; tokens' storage is covered on both in
    tests/integration/test_tokens_and_deactivation_api.py: SQLite only (the module's fixtures follow)."""
    return str(request.param)


@dataclass
class World:
    server: Server
    admin: str
    auditor: str
    agent_token: str
    ann: dict[str, str]
    bob: dict[str, str]


@pytest.fixture(scope="module")
def world(start_server: Callable[..., Server]) -> World:
    server = start_server()
    admin = cli_token(server.env, server.dir, "ADMIN", "e2e admin")

    def agent(name: str) -> dict[str, str]:
        payload = server.gql(admin, CREATE_AGENT, input={"name": name, "email": f"{name}@desk.example"})
        assert payload["createAgent"]["userErrors"] == []
        return dict(payload["createAgent"]["agent"])

    ann, bob = agent("ann"), agent("bob")

    def token(role: str, agent_id: str | None = None) -> str:
        payload = server.gql(admin, CREATE_TOKEN, input={"name": f"{role} token", "role": role, "agentId": agent_id})
        assert payload["createApiToken"]["userErrors"] == []
        value = payload["createApiToken"]["token"]
        assert isinstance(value, str) and value
        return value

    return World(server, admin, token("AUDITOR"), token("AGENT", ann["id"]), ann, bob)


# ---------------------------------------------------------------------------------- auth


def test_request_without_authorization_header_is_http_401(world: World) -> None:
    response = world.server.post(ME)

    assert response.status_code == 401
    assert response.headers.get("www-authenticate", "").lower().startswith("bearer")


def test_unknown_bearer_token_is_http_401(world: World) -> None:
    assert world.server.post(ME, token="mr_not-a-real-token-" + uuid.uuid4().hex).status_code == 401
    # Not a bearer token at all.
    response = world.server.client.post(f"{world.server.url}/graphql", json={"query": ME},
                                        headers={"Authorization": f"Basic {world.admin}"})
    assert response.status_code == 401


def test_graphiql_page_opens_in_a_browser_without_a_token(world: World) -> None:
    response = world.server.client.get(f"{world.server.url}/graphql", headers={"Accept": "text/html"})

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "graphiql" in response.text.lower()


def test_graphql_get_query_without_token_is_still_401(world: World) -> None:
    # The page is open, but queries sent from it need a token.
    response = world.server.client.get(f"{world.server.url}/graphql", params={"query": ME},
                                       headers={"Accept": "text/html"})

    assert response.status_code == 401


def test_healthz_answers_json(world: World) -> None:
    response = world.server.client.get(f"{world.server.url}/healthz")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["status"] == "ok"


def test_healthz_tells_ready_per_follower(world: World) -> None:
    """Up is not ready: ready once every follower of the process reached the head of the log."""
    deadline = time.monotonic() + 20
    while True:
        body = world.server.client.get(f"{world.server.url}/healthz").json()
        if body["ready"] or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert body["ready"] is True
    assert {"directory", "conversations", "workload", "assigner"} <= set(body["followers"])
    for state in body["followers"].values():
        assert state["ready"] and state["failures"] == 0 and state["lastError"] is None
        assert isinstance(state["position"], int)


def test_metrics_report_projection_position(world: World) -> None:
    response = world.server.client.get(f"{world.server.url}/metrics")

    assert response.status_code == 200
    assert "mailroom_projection_position" in response.text
    assert 'mailroom_follower_failures{follower="assigner"} 0.0' in response.text


def test_cli_admin_token_is_admin(world: World) -> None:
    assert world.server.gql(world.admin, ME)["me"] == {"role": "ADMIN", "agent": None}


# ---------------------------------------------------------------------------------- AUDITOR


def test_auditor_reads_events_and_mailboxes(world: World) -> None:
    data = world.server.gql(world.auditor, """
        query { me { role agent { id } } mailboxes { id } agents { name }
                events(first: 500) { events { position type } } }""")

    assert data["me"] == {"role": "AUDITOR", "agent": None}
    assert data["mailboxes"] == []
    assert {a["name"] for a in data["agents"]} >= {"ann", "bob"}
    assert any(e["type"] for e in data["events"]["events"])


def test_auditor_mutation_is_forbidden_and_changes_nothing(world: World) -> None:
    body = world.server.gql_raw(world.auditor, CREATE_AGENT,
                                input={"name": "mallory", "email": "mallory@desk.example"})

    assert error_codes(body) == ["FORBIDDEN"]
    assert body["data"] is None
    names = [a["name"] for a in world.server.gql(world.admin, "query { agents { name } }")["agents"]]
    assert "mallory" not in names


def test_auditor_cannot_mint_tokens(world: World) -> None:
    body = world.server.gql_raw(world.auditor, CREATE_TOKEN, input={"name": "escalate", "role": "ADMIN"})

    assert error_codes(body) == ["FORBIDDEN"]
    assert "token" not in str(body.get("data") or "")


# ---------------------------------------------------------------------------------- AGENT


def test_agent_me_shows_role_and_own_agent(world: World) -> None:
    me = world.server.gql(world.agent_token, ME)["me"]

    assert me == {"role": "AGENT", "agent": {"id": world.ann["id"], "name": "ann", "email": "ann@desk.example"}}


def test_agent_sets_own_status(world: World) -> None:
    payload = world.server.gql(world.agent_token, SET_STATUS, agentId=world.ann["id"], status="AWAY")

    assert payload["setAgentStatus"] == {"agent": {"id": world.ann["id"], "status": "AWAY"}, "userErrors": []}
    assert world.server.gql(world.admin, AGENT, id=world.ann["id"])["agent"]["status"] == "AWAY"

    back = world.server.gql(world.agent_token, SET_STATUS, agentId=world.ann["id"], status="ONLINE")
    assert back["setAgentStatus"]["agent"]["status"] == "ONLINE"


def test_agent_cannot_set_another_agents_status(world: World) -> None:
    body = world.server.gql_raw(world.agent_token, SET_STATUS, agentId=world.bob["id"], status="OFFLINE")

    assert error_codes(body) == ["FORBIDDEN"]
    assert world.server.gql(world.admin, AGENT, id=world.bob["id"])["agent"]["status"] == "ONLINE"


def test_agent_cannot_read_events(world: World) -> None:
    body = world.server.gql_raw(world.agent_token, "query { events { events { position } } }")

    assert error_codes(body) == ["FORBIDDEN"]


def test_agent_cannot_use_admin_mutations(world: World) -> None:
    body = world.server.gql_raw(world.agent_token, CREATE_AGENT,
                                input={"name": "eve", "email": "eve@desk.example"})

    assert error_codes(body) == ["FORBIDDEN"]


def test_agent_token_needs_an_existing_agent(world: World) -> None:
    missing = world.server.gql(world.admin, CREATE_TOKEN, input={"name": "no agent", "role": "AGENT"})
    unknown = world.server.gql(world.admin, CREATE_TOKEN,
                               input={"name": "ghost", "role": "AGENT", "agentId": str(uuid.uuid4())})

    assert missing["createApiToken"]["token"] is None
    assert [e["field"] for e in missing["createApiToken"]["userErrors"]] == [["input", "agentId"]]
    assert unknown["createApiToken"]["token"] is None
    assert [e["code"] for e in unknown["createApiToken"]["userErrors"]] == ["NOT_FOUND"]


def test_cli_agent_token_acts_as_that_agent(world: World) -> None:
    token = cli_token(world.server.env, world.server.dir, "AGENT", "bob cli", agent_id=world.bob["id"])

    assert world.server.gql(token, ME)["me"]["agent"]["id"] == world.bob["id"]
