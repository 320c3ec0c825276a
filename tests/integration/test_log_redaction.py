"""Nothing a client sends reaches the server log (issue 8, inline passwords in the log): failed
requests are logged by operation name, error code, path and location, never by the query text
(strawberry's default logged an excerpt of it around the error) nor by the variables (whose
values error messages quote), while the client still gets the error. In-process through the
FastAPI app, with every logger captured."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
import pytest

from api.bootstrap import Services
from api.main import create_app
from domain.values import Role

SECRET = "Sw0rdf1sh-7d1c"  # a mailbox password: it must appear in no log line


def requests(agent_token: str, admin_token: str) -> list[tuple[str, str, dict[str, Any], str, str | None]]:
    """(what, token, body, a fragment of the error the client gets, its code)"""
    inline = ('mutation Bind { bindMailbox(input: {address: "support@example.com", password: "%s", '
              'incoming: {host: "imap.example.com", port: %s, security: TLS}}) { %s } }')
    variables = {"address": "support@example.com", "password": SECRET,
                 "incoming": {"host": "imap.example.com", "port": 99999999999, "security": "TLS"}}
    return [
        ("an unknown field beside an inline password", admin_token,
         {"query": inline % (SECRET, 993, "bogusField")}, "Cannot query field 'bogusField'", None),
        ("an out-of-range port beside an inline password", admin_token,
         {"query": inline % (SECRET, 99999999999, "userErrors { message }")}, "non 32-bit signed integer", None),
        ("an out-of-range port beside a password in the variables", admin_token,
         {"query": "mutation Bind($input: BindMailboxInput!) { bindMailbox(input: $input) { userErrors { code } } }",
          "variables": {"input": variables}}, "Variable '$input' has invalid value", None),
        ("an AGENT's updateMailbox with a password", agent_token,
         {"query": 'mutation { updateMailbox(input: {id: "00000000-0000-4000-8000-000000000000", '
                   f'password: "{SECRET}"}}) {{ mailbox {{ id }} }} }}'}, "may not do this", "FORBIDDEN"),
        ("a syntax error after a password", admin_token,
         {"query": f'mutation {{ bindMailbox(input: {{password: "{SECRET}" address: '}, "Syntax Error", None),
    ]


def post_all(services: Services, agent_token: str, admin_token: str) -> list[tuple[str, dict[str, Any], str, Any]]:
    app = create_app(services, run_workers=False)

    async def run() -> list[tuple[str, dict[str, Any], str, Any]]:
        answers = []
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://mailroom") as client:
            for what, token, body, expected, code in requests(agent_token, admin_token):
                response = await client.post("/graphql", json=body, headers={"Authorization": f"Bearer {token}"})
                answers.append((what, response.json(), expected, code))
        return answers

    return asyncio.run(run())


@pytest.fixture
def tokens(services: Services) -> tuple[str, str]:
    agent = services.app.create_agent("Ann", "ann@example.com").id
    agent_token, _ = services.app.create_api_token("ann", Role.AGENT, agent)
    admin_token, _ = services.app.create_api_token("admin", Role.ADMIN, None)
    assert services.projections.wait_for(services.projections.head())
    return agent_token, admin_token


def test_failed_requests_leave_no_client_text_in_the_log(
        services: Services, tokens: tuple[str, str], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    answers = post_all(services, *tokens)
    for what, body, expected, code in answers:
        assert body.get("errors"), what
        assert any(expected in e["message"] for e in body["errors"]), (what, body)
        if code:
            assert [e["extensions"]["code"] for e in body["errors"]] == [code], what
    logged = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    assert SECRET not in logged
    assert "bogusField" not in logged and "99999999999" not in logged  # nothing of the query text
    # What is logged instead: the operation's name, the code, the path, the location.
    lines = [r.getMessage() for r in caplog.records if r.name == "mailroom.graphql"]
    assert "graphql error: operation=Bind code=GRAPHQL_VALIDATION_FAILED path=- at=1:164" in lines
    assert any("code=BAD_USER_INPUT" in line for line in lines)
    assert "graphql error: operation=- code=FORBIDDEN path=updateMailbox at=1:12" in lines
    assert any("code=GRAPHQL_PARSE_FAILED" in line for line in lines)
    assert not [r for r in caplog.records if r.name.startswith("strawberry")]


def test_an_operation_name_is_logged_only_as_a_name(
        services: Services, tokens: tuple[str, str], caplog: pytest.LogCaptureFixture) -> None:
    """The operationName of the request body is free text until it is looked up."""
    caplog.set_level(logging.DEBUG)
    app = create_app(services, run_workers=False)

    async def run() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://mailroom") as client:
            return await client.post("/graphql", headers={"Authorization": f"Bearer {tokens[1]}"}, json={
                "query": "query A { me { role } } query B { me { role } }", "operationName": f"pw {SECRET}"})

    response = asyncio.run(run())
    assert response.status_code == 400 and "Unknown operation" in response.text
    assert SECRET not in "\n".join(r.getMessage() for r in caplog.records)
