"""Routing and assignment through the served API: a rule routes synced mail to a group and
assigns it; agents see their groups' conversations; workloads, daily totals, last handler and
the assignment records with their reasons; assign, close and reopen by hand."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.dovecot import Dovecot
from tests.e2e.conftest import Server, cli_token, error_codes
from tests.e2e.intake_helpers import bind_imap_mailbox, conversations, sync
from tests.integration.intake_support import mail

NODE = """{ id status customerEmail assignee { id name } groups { id } rule { id }
            assignments { agent { name } strategy reason at } }"""
LIST = ("query($filter: ConversationFilter) { conversations(filter: $filter) { totalCount edges { node "
        + NODE + " } } }")
NEW_GROUP = "mutation($i: CreateAgentGroupInput!) { createAgentGroup(input: $i) { group { id } } }"
ASSIGN = """mutation($c: UUID!, $a: UUID!) { assignConversation(conversationId: $c, agentId: $a) {
    conversation { assignee { name } status } userErrors { code field } } }"""
AGENT_FIGURES = "query($id: UUID!) { agent(id: $id) { activeConversations receivedToday } }"


@pytest.fixture(scope="module")
def desk(start_server: Callable[..., Server], dovecot: Dovecot) -> dict[str, Any]:
    server = start_server(MAILROOM_EXTRA_CA_FILE=dovecot.ca_file, MAILROOM_POLL_SECONDS="3600")
    admin = cli_token(server.env, server.dir, "ADMIN", "admin")
    mailbox = bind_imap_mailbox(server, admin, dovecot)
    agents = {}
    for name in ("ann", "bob"):
        created = server.gql(admin, """mutation($i: CreateAgentInput!) { createAgent(input: $i) { agent { id } } }""",
                             i={"name": name, "email": f"{name}-{secrets.token_hex(3)}@desk.example"})
        agents[name] = created["createAgent"]["agent"]["id"]
    tier1 = server.gql(admin, NEW_GROUP, i={"name": "Tier 1", "memberIds": [agents["ann"], agents["bob"]]})
    group = tier1["createAgentGroup"]["group"]["id"]
    other = server.gql(admin, NEW_GROUP, i={"name": "Tier 2", "memberIds": []})["createAgentGroup"]["group"]["id"]
    rule = server.gql(admin, """mutation($i: RoutingRuleInput!) { createRoutingRule(input: $i) {
        rule { id } userErrors { message } } }""", i={
        "name": "All mail", "mailboxIds": [mailbox.id], "groupIds": [group], "strategy": "ROUND_ROBIN"})
    assert rule["createRoutingRule"]["userErrors"] == []
    for i in range(4):
        dovecot.append(mailbox.user, mail(subject=f"Question {i}", sender=f"c{i}@customer.example"))
    assert sync(server, admin, mailbox.id)["userErrors"] == []
    ann_token = cli_token(server.env, server.dir, "AGENT", "ann", agent_id=agents["ann"])
    return {"server": server, "admin": admin, "agents": agents, "group": group, "other": other,
            "mailbox": mailbox, "ann": ann_token, "dovecot": dovecot}


def nodes(server: Server, token: str, filter: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    return [e["node"] for e in server.gql(token, LIST, filter=filter)["conversations"]["edges"]]


def test_synced_mail_is_routed_and_assigned_round_robin_with_reasons(desk: dict[str, Any]) -> None:
    listed = nodes(desk["server"], desk["admin"], {"groupId": desk["group"]})
    assert len(listed) == 4 and {n["status"] for n in listed} == {"OPEN"}
    names = sorted(n["assignee"]["name"] for n in listed)
    assert names == ["ann", "ann", "bob", "bob"]
    for node in listed:
        [record] = node["assignments"]
        assert record["strategy"] == "ROUND_ROBIN" and record["reason"].startswith("ROUND_ROBIN")
        assert record["reason"].endswith(node["assignee"]["name"])
        assert [g["id"] for g in node["groups"]] == [desk["group"]] and node["rule"] is not None


def test_workloads_daily_totals_and_last_handler(desk: dict[str, Any]) -> None:
    server, admin = desk["server"], desk["admin"]
    loads = server.gql(admin, """query($g: UUID) { agentWorkloads(groupId: $g) { agent { name } activeConversations }
        }""", g=desk["group"])["agentWorkloads"]
    assert {w["agent"]["name"]: w["activeConversations"] for w in loads} == {"ann": 2, "bob": 2}
    today = datetime.now(UTC).date().isoformat()
    totals = server.gql(admin, "query($d: Date!) { dailyTotals(date: $d) { agent { name } date received } }",
                        d=today)["dailyTotals"]
    mine = [(t["agent"]["name"], t["received"]) for t in totals if t["agent"]["name"] in ("ann", "bob")]
    assert sorted(mine) == [("ann", 2), ("bob", 2)]
    agent = server.gql(admin, AGENT_FIGURES, id=desk["agents"]["ann"])["agent"]
    assert agent == {"activeConversations": 2, "receivedToday": 2}
    handled = next(n for n in nodes(server, admin, {"groupId": desk["group"]})
                   if n["customerEmail"] == "c0@customer.example")
    last = server.gql(admin, 'query { lastHandler(customerEmail: "C0@customer.example") { name } }')["lastHandler"]
    assert last["name"] == handled["assignee"]["name"]


def test_agents_see_their_groups_conversations_only(desk: dict[str, Any]) -> None:
    server = desk["server"]
    assert len(nodes(server, desk["ann"])) == 4
    assert nodes(server, desk["ann"], {"groupId": desk["other"]}) == []
    assert len(nodes(server, desk["admin"], {"groupId": desk["group"]})) == 4
    assert len(nodes(server, desk["admin"], {"assigneeId": desk["agents"]["ann"]})) == 2


def test_assign_close_and_reopen_by_hand(desk: dict[str, Any]) -> None:
    """On a desk of its own (own mailbox, agents, group and rule), so that what it changes does
    not reach the other tests, whatever order they run in."""
    server, admin, dovecot = desk["server"], desk["admin"], desk["dovecot"]
    mailbox = bind_imap_mailbox(server, admin, dovecot)
    agents = {}
    for name in ("cy", "dy"):
        created = server.gql(admin, """mutation($i: CreateAgentInput!) { createAgent(input: $i) { agent { id } } }""",
                             i={"name": name, "email": f"{name}-{secrets.token_hex(3)}@desk.example"})
        agents[name] = created["createAgent"]["agent"]["id"]
    group = server.gql(admin, NEW_GROUP, i={"name": "Tier 3", "memberIds": list(agents.values())}
                       )["createAgentGroup"]["group"]["id"]
    server.gql(admin, """mutation($i: RoutingRuleInput!) { createRoutingRule(input: $i) { rule { id } } }""", i={
        "name": "Own desk", "mailboxIds": [mailbox.id], "groupIds": [group], "strategy": "ROUND_ROBIN"})
    for i in range(2):
        dovecot.append(mailbox.user, mail(subject=f"By hand {i}", sender=f"h{i}@customer.example"))
    assert sync(server, admin, mailbox.id)["userErrors"] == []
    dy_token = cli_token(server.env, server.dir, "AGENT", "dy", agent_id=agents["dy"])

    target = next(n for n in nodes(server, admin, {"groupId": group}) if n["assignee"]["name"] == "dy")
    moved = server.gql(admin, ASSIGN, c=target["id"], a=agents["cy"])
    assert moved["assignConversation"] == {"conversation": {"assignee": {"name": "cy"}, "status": "OPEN"},
                                           "userErrors": []}
    closed = server.gql(dy_token, """mutation($id: UUID!) { closeConversation(id: $id) {
        conversation { status assignee { name } } userErrors { code } } }""", id=target["id"])["closeConversation"]
    assert closed == {"conversation": {"status": "CLOSED", "assignee": None}, "userErrors": []}
    reopened = server.gql(admin, """mutation($id: UUID!) { reopenConversation(id: $id) {
        conversation { status assignee { name } } userErrors { code } } }""", id=target["id"])["reopenConversation"]
    assert reopened == {"conversation": {"status": "OPEN", "assignee": {"name": "cy"}}, "userErrors": []}
    missing = server.gql(admin, ASSIGN, c=target["id"], a=group)["assignConversation"]
    assert missing["userErrors"] == [{"code": "NOT_FOUND", "field": ["agentId"]}]


def test_auditors_cannot_assign(desk: dict[str, Any], start_server: Callable[..., Server]) -> None:
    server = desk["server"]
    auditor = cli_token(server.env, server.dir, "AUDITOR", "auditor")
    target = nodes(server, desk["admin"], {"groupId": desk["group"]})[0]
    body = server.gql_raw(auditor, """mutation($id: UUID!) { closeConversation(id: $id) { userErrors { code } } }""",
                          id=target["id"])
    assert error_codes(body) == ["FORBIDDEN"]
    assert conversations(server, auditor, {"groupId": desk["group"]})["totalCount"] == 4
