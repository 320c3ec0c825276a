"""The sidebar through the served API: five sources (pushed records and HTTP endpoints on a local
server that records what it gets), a slow and a broken one among them; who may configure, push
and read; and a page of conversations that asks for `sidebar` without a request per row."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.dovecot import Dovecot
from tests.e2e.conftest import Server, cli_token, error_codes
from tests.e2e.intake_helpers import bind_imap_mailbox, sync
from tests.http_recorder import HttpRecorder
from tests.integration.intake_support import mail

SOURCE = """mutation($i: SidebarSourceInput!) { createSidebarSource(input: $i) {
    source { id title kind position hasAuthHeader } userErrors { field message code } } }"""
RECORD = """mutation($i: RecordInput!) { upsertRecord(input: $i) {
    record { recordType externalId title fields url } userErrors { field message code } } }"""
SIDEBAR = """query($id: UUID!) { conversation(id: $id) { customerEmail sidebar {
    sourceId title error records { recordType externalId title fields url } } } }"""
PAGE = "{ conversations(first: 50) { edges { node { id customerEmail sidebar { title error records { title } } } } } }"


@pytest.fixture(scope="module", params=["sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    """Sources, roles and batching do not depend on the engine; the sidebar's tables are covered on both in
    tests/integration/test_sidebar.py: SQLite only (the module's fixtures follow)."""
    return str(request.param)


@pytest.fixture(scope="module")
def desk(start_server: Callable[..., Server], dovecot: Dovecot) -> Iterator[dict[str, Any]]:
    with HttpRecorder() as erp:
        server = start_server(MAILROOM_EXTRA_CA_FILE=dovecot.ca_file, MAILROOM_POLL_SECONDS="3600",
                              MAILROOM_ALLOW_PRIVATE_HOSTS="1")
        admin = cli_token(server.env, server.dir, "ADMIN", "admin")
        mailbox = bind_imap_mailbox(server, admin, dovecot)
        customers = ["a+b@acme.example", *(f"c{i}@acme.example" for i in range(9))]
        for i, customer in enumerate(customers):
            dovecot.append(mailbox.user, mail(subject=f"Question {i}", sender=customer))
        assert sync(server, admin, mailbox.id)["userErrors"] == []
        erp.answer("/orders", body=[{"id": 7, "title": "Order 7", "url": "https://shop.example/7", "total": "9 EUR"}])
        erp.answer("/slow", body=[], delay=5.0)
        erp.answer("/broken", body=b"{not json")
        erp.answer("/failing", body={"error": "boom"}, status=500)
        sources = [
            ("Pushed", "RECORDS", None, 1),
            ("Orders", "HTTP", erp.url("/orders?email={customer_email}&domain={email_domain}"), 2),
            ("Slow", "HTTP", erp.url("/slow?e={customer_email}"), 3),
            ("Broken", "HTTP", erp.url("/broken"), 4),
            ("Failing", "HTTP", erp.url("/failing"), 5),
        ]
        for title, kind, url, position in sources:
            created = server.gql(admin, SOURCE, i={
                "title": title, "recordType": title.lower(), "kind": kind, "urlTemplate": url,
                "matchBy": "CUSTOMER_EMAIL", "fields": [], "position": position,
                **({"authHeader": "X-Api-Key: erp-secret-key"} if title == "Orders" else {})})
            assert created["createSidebarSource"]["userErrors"] == [], created
        ids = {e["node"]["customerEmail"]: e["node"]["id"]
               for e in server.gql(admin, "{ conversations(first: 50) { edges { node { id customerEmail } } } }")[
                   "conversations"]["edges"]}
        yield {"server": server, "admin": admin, "erp": erp, "ids": ids,
               "agent": cli_token(server.env, server.dir, "AGENT", "nobody", agent_id=server.gql(admin, """
                   mutation($i: CreateAgentInput!) { createAgent(input: $i) { agent { id } } }""", i={
                   "name": "nobody", "email": f"n-{secrets.token_hex(3)}@desk.example"})["createAgent"]["agent"]["id"]),
               "auditor": cli_token(server.env, server.dir, "AUDITOR", "audit")}


def test_five_sources_in_order_a_slow_and_a_broken_one_show_errors_within_four_seconds(desk: dict[str, Any]) -> None:
    server = desk["server"]
    pushed = server.gql(desk["admin"], RECORD, i={
        "recordType": "pushed", "externalId": "P-1", "title": "Pushed one", "customerEmail": "A+B@acme.example",
        "fields": {"note": "vip"}})["upsertRecord"]
    assert pushed["userErrors"] == [] and pushed["record"]["fields"] == {"note": "vip"}
    started = time.monotonic()
    found = server.gql(desk["admin"], SIDEBAR, id=desk["ids"]["a+b@acme.example"])["conversation"]
    elapsed = time.monotonic() - started
    assert elapsed < 4.0
    sections = {s["title"]: s for s in found["sidebar"]}
    assert [s["title"] for s in found["sidebar"]] == ["Pushed", "Orders", "Slow", "Broken", "Failing"]
    assert [r["externalId"] for r in sections["Pushed"]["records"]] == ["P-1"]
    assert sections["Orders"]["error"] is None
    assert sections["Orders"]["records"] == [{"recordType": "orders", "externalId": "7", "title": "Order 7",
                                              "fields": {"total": "9 EUR"}, "url": "https://shop.example/7"}]
    for broken in ("Slow", "Broken", "Failing"):
        assert sections[broken]["error"] and sections[broken]["records"] == []
    [request] = [r for r in desk["erp"].seen("/orders") if r.query.get("email") == ["a+b@acme.example"]]
    assert request.query["domain"] == ["acme.example"] and request.headers["x-api-key"] == "erp-secret-key"
    assert "erp-secret-key" not in server.log()


def test_a_page_of_conversations_makes_one_request_per_customer_not_per_field(desk: dict[str, Any]) -> None:
    server, erp = desk["server"], desk["erp"]
    before = len(erp.seen("/broken"))
    edges = server.gql(desk["admin"], PAGE)["conversations"]["edges"]
    assert len(edges) == 10
    assert all([s["title"] for s in e["node"]["sidebar"]] == ["Pushed", "Orders", "Slow", "Broken", "Failing"]
               for e in edges)
    # /broken has no placeholder: one URL for every conversation, fetched at most once (and cached)
    assert len(erp.seen("/broken")) - before <= 1


def test_only_admins_configure_and_push_auditors_read_agents_see_only_their_groups(desk: dict[str, Any]) -> None:
    server = desk["server"]
    body = server.gql_raw(desk["agent"], SOURCE, i={"title": "x", "recordType": "x", "kind": "RECORDS",
                                                    "matchBy": "CUSTOMER_EMAIL", "fields": []})
    assert error_codes(body) == ["FORBIDDEN"]
    body = server.gql_raw(desk["auditor"], RECORD, i={"recordType": "x", "externalId": "1", "title": "t",
                                                      "fields": {}})
    assert error_codes(body) == ["FORBIDDEN"]
    listed = server.gql(desk["auditor"], "{ sidebarSources { title hasAuthHeader urlTemplate } }")["sidebarSources"]
    assert [s["title"] for s in listed] == ["Pushed", "Orders", "Slow", "Broken", "Failing"]
    assert [s["hasAuthHeader"] for s in listed] == [False, True, False, False, False]
    assert "erp-secret-key" not in str(listed)
    seen = server.gql(desk["auditor"], SIDEBAR, id=desk["ids"]["c1@acme.example"])["conversation"]
    assert seen["sidebar"][0]["title"] == "Pushed"
    assert server.gql(desk["agent"], SIDEBAR, id=desk["ids"]["c1@acme.example"])["conversation"] is None
