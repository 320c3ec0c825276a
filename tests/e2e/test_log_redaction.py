"""Nothing a client sends reaches the log of the real `mailroom serve` (issue 8): failed requests
with a password written inline or in the variables, an AGENT's forbidden updateMailbox, and a
query sent by GET (whose query string uvicorn's access log printed), against the server's own
stdout and stderr."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest

from tests.e2e.conftest import Server, cli_token
from tests.integration.test_log_redaction import SECRET, requests

ADMIN_TOKEN = "log-redaction-admin-token-0123456789"


@pytest.fixture(scope="module", params=["sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    """Logging does not depend on the engine: SQLite only (the module's fixtures follow)."""
    return str(request.param)


@pytest.fixture(scope="module")
def server(start_server: Callable[..., Server]) -> Server:
    return start_server(MAILROOM_ADMIN_TOKEN=ADMIN_TOKEN)


def test_the_server_log_holds_nothing_the_client_sent(server: Server) -> None:
    agent = server.gql(ADMIN_TOKEN, 'mutation { createAgent(input: {name: "Ann", email: "ann@example.com"}) '
                                    '{ agent { id } } }')["createAgent"]["agent"]["id"]
    agent_token = cli_token(server.env, server.dir, "AGENT", "ann", agent)
    for what, token, body, expected, _ in requests(agent_token, ADMIN_TOKEN):
        response = server.client.post(f"{server.url}/graphql", json=body, headers={"Authorization": f"Bearer {token}"})
        assert any(expected in e["message"] for e in response.json()["errors"]), (what, response.text)
    by_get = server.client.get(f"{server.url}/graphql", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, params={
        "query": "query Me($note: String!) { me { role } lastHandler(customerEmail: $note) { id } }",
        "variables": json.dumps({"note": SECRET})})
    assert by_get.json() == {"data": {"me": {"role": "ADMIN"}, "lastHandler": None}}
    time.sleep(0.5)  # the access log line is written after the answer
    log = server.log()
    assert "code=FORBIDDEN path=updateMailbox" in log  # the failures are logged, as codes and paths
    assert '"GET /graphql?… HTTP/1.1" 200' in log  # and the GET, without its query string
    assert SECRET not in log
    assert "bogusField" not in log and "99999999999" not in log
