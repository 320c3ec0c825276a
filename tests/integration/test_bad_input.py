"""Text no database can hold never reaches one, and no database error reaches a client (issue 8,
a NUL byte in a filter answered PostgreSQL's own message): a NUL or an unpaired surrogate in
any string argument or variable, at any depth, or in a cursor, is refused before anything runs
as BAD_USER_INPUT; an exception nobody meant (a driver's error) is answered as "internal error"
with extensions.code INTERNAL_ERROR, its text neither in the answer nor in the log. On both
backends, in-process."""

from __future__ import annotations

import asyncio
import base64
import logging
from typing import Any

import httpx
import pytest

from api.bootstrap import Services
from api.graphql.common import Context
from api.graphql.guards import unstorable_variable
from api.graphql.schema import COST, schema
from api.main import create_app
from domain.commands.tokens import Principal
from domain.values import Role

ADMIN = Principal(Role.ADMIN, None, None)
DATABASE_WORDS = ("postgres", "psycopg", "sqlite", "0x00", "datatype", "encod", "utf-8", "surrogates not allowed")
NUL, SURROGATE = "\x00", "\ud800"


def execute(services: Services, query: str, **variables: Any) -> Any:
    async def run() -> Any:
        return await schema.execute(query, variable_values=variables,
                                    context_value=Context(services=services, principal=ADMIN))

    return asyncio.run(run())


def refused(result: Any) -> str:
    """The one BAD_USER_INPUT error's message (and no database's words in it)."""
    assert result.data is None, result.data
    assert [(e.extensions or {}).get("code") for e in result.errors] == ["BAD_USER_INPUT"], result.errors
    message = str(result.errors[0].message)
    assert not any(word in message.lower() for word in DATABASE_WORDS), message
    return message


def literal(text: str) -> str:
    """A GraphQL string literal for text, with \\u escapes for what is not printable."""
    return '"' + "".join(c if c.isprintable() and c not in '"\\' else f"\\u{ord(c):04x}" for c in text) + '"'


FILTERED = "query($f: ConversationFilter) { conversations(filter: $f) { totalCount edges { node { id } } } }"


@pytest.mark.parametrize("bad", [NUL, SURROGATE], ids=["NUL", "surrogate"])
def test_a_filter_with_unstorable_text_is_refused_as_bad_input(services: Services, bad: str) -> None:
    email = f"a{bad}b@example.com"
    assert "$f.customerEmail" in refused(execute(services, FILTERED, f={"customerEmail": email}))
    inline = execute(services, "{ conversations(filter: {customerEmail: " + literal(email) + "}) { totalCount } }")
    if bad == SURROGATE:  # the GraphQL lexer itself refuses "\ud800" in a document
        assert inline.data is None and [e.message for e in inline.errors] == [
            "Syntax Error: Invalid Unicode escape sequence: '\\ud800'."]
    else:
        refused(inline)


@pytest.mark.parametrize("query, variables", [
    ("query($e: String!) { lastHandler(customerEmail: $e) { id } }", {"e": f"x{NUL}@example.com"}),
    ("query($e: String!) { contact(email: $e) { id } }", {"e": f"x{NUL}@example.com"}),
    ("mutation($i: CreateAgentInput!) { createAgent(input: $i) { agent { id } userErrors { code } } }",
     {"i": {"name": f"Ann{NUL}", "email": "ann@example.com"}}),
    ("mutation($i: RoutingRuleInput!) { createRoutingRule(input: $i) { rule { id } } }",
     {"i": {"name": "r", "mailboxIds": [], "groupIds": [], "strategy": "LOAD_BALANCED",
            "conditions": [{"field": "SUBJECT", "operator": "CONTAINS", "value": f"in{NUL}voice"}]}}),
    ("mutation($a: [UUID!]!) { addGroupMembers(groupId: \"00000000-0000-4000-8000-000000000000\", agentIds: $a) "
     "{ userErrors { code } } }", {"a": [f"{NUL}"]}),
    ("{ me { role } }", {"unused": {"deep": [1, {"text": f"x{SURROGATE}"}]}}),
], ids=["lastHandler", "contact", "createAgent", "rule condition", "a list", "an unused variable"])
def test_every_string_variable_is_checked_at_any_depth(services: Services, query: str,
                                                       variables: dict[str, Any]) -> None:
    head = services.projections.head()
    refused(execute(services, query, **variables))
    assert services.projections.head() == head  # nothing ran, nothing was written


def test_every_string_literal_is_checked(services: Services) -> None:
    refused(execute(services, "mutation { createAgent(input: {name: " + literal(f"Bob{NUL}")
                    + ', email: "b@example.com"}) { agent { id } } }'))
    refused(execute(services, "query($e: String! = " + literal(f"x{NUL}")
                    + ") { lastHandler(customerEmail: $e) { id } }"))


def test_a_cursor_that_decodes_to_unstorable_text_is_refused(services: Services) -> None:
    cursor = base64.urlsafe_b64encode(b"2025-01-01\x00x").decode()
    query = "query($after: String) { conversations(first: 5, after: $after) { totalCount } }"
    assert "after" in refused(execute(services, query, after=cursor))
    refused(execute(services, '{ conversations(after: "' + cursor + '") { totalCount } }'))
    assert execute(services, query, after=base64.urlsafe_b64encode(b"2025-01-01|x").decode()).errors is None


def test_where_an_unstorable_character_is() -> None:
    assert unstorable_variable({"a": {"b": ["ok", f"x{NUL}"]}}) == "$a.b[1]"
    assert unstorable_variable({"fields": {f"k{NUL}": 1}}) == "$fields (a key)"
    assert unstorable_variable({"a": "fine \u00e9\u4e2d\U0001f600"}) is None


def test_an_unexpected_exception_is_answered_without_its_text(
        services: Services, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    secret = "relation rm_conversations: value 'c@x.example' violates something"

    def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError(secret)

    monkeypatch.setattr(services.conversations, "rows", broken)
    caplog.set_level(logging.DEBUG)
    result = execute(services, "query Page { conversations { totalCount } me { role } }")
    assert result.errors, result
    error = result.errors[0]
    assert error.message == "internal error" and error.extensions == {"code": "INTERNAL_ERROR"}
    assert error.path and error.path[0] == "conversations"
    assert secret not in str([e.formatted for e in result.errors])
    logged = "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    assert secret not in logged
    assert "operation=Page code=INTERNAL_ERROR path=conversations" in logged and "RuntimeError" in logged


def test_an_exception_outside_the_fields_is_answered_without_its_text(
        services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "connection to server at 10.0.0.5 failed: password authentication failed"

    def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError(secret)

    monkeypatch.setattr(COST, "check", broken)  # an extension's hook fails
    result = execute(services, "{ me { role } }")
    assert [(e.message, e.extensions) for e in result.errors] == [("internal error", {"code": "INTERNAL_ERROR"})]


def test_over_http_json_escapes_are_refused_the_same(services: Services) -> None:
    token, _ = services.app.create_api_token("admin", Role.ADMIN, None)
    app = create_app(services, run_workers=False)
    body = ('{"query": "query($e: String!) { lastHandler(customerEmail: $e) { id } }", '
            '"variables": {"e": "a%sb@example.com"}}')

    async def post(escape: str) -> dict[str, Any]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://mailroom") as client:
            response = await client.post("/graphql", content=body % escape, headers={
                "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
            return dict(response.json())

    for escape in ("\\u0000", "\\ud800"):
        answer = asyncio.run(post(escape))
        assert answer["data"] is None
        assert [e["extensions"]["code"] for e in answer["errors"]] == ["BAD_USER_INPUT"], answer
