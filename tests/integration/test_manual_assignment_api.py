"""assignConversation as each role sees it (issue 8, finding 5), in-process on both backends: an
agent assigns its groups' conversations to agents of those groups only; an admin may go outside
them (or assign an unrouted conversation) only with `override: true`, which the Assigned event
records for auditors; an agent asking for the override is FORBIDDEN."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID

from api.bootstrap import Services
from api.graphql.common import Context
from api.graphql.schema import schema
from domain.commands.tokens import Principal
from domain.values import Role
from tests.integration.test_graphql_reads import ADMIN, Desk, agent, following, run

ASSIGN = """mutation($c: UUID!, $a: UUID!, $o: Boolean) {
    assignConversation(conversationId: $c, agentId: $a, override: $o) {
        conversation { status assignee { name } } userErrors { field code message } } }"""
AUDITOR = Principal(Role.AUDITOR, None, None)


def assign(services: Services, who: Principal, conversation: str, agent_id: UUID,
           override: bool | None = None) -> dict[str, Any]:
    with following(services):
        return dict(run(services, ASSIGN, who, c=conversation, a=str(agent_id), o=override)["assignConversation"])


def error_codes(services: Services, who: Principal, query: str, **variables: Any) -> list[str]:
    async def execute() -> Any:
        return await schema.execute(query, variable_values=variables,
                                    context_value=Context(services=services, principal=who))

    result = asyncio.run(execute())
    return [str((e.extensions or {}).get("code")) for e in result.errors or []]


def assignee(services: Services, conversation: str) -> str | None:
    node = run(services, "query($id: UUID!) { conversation(id: $id) { assignee { name } } }", id=conversation)
    return (node["conversation"]["assignee"] or {}).get("name")


def test_an_agent_cannot_assign_its_conversation_to_an_agent_of_another_group(services: Services) -> None:
    desk = Desk(services, alpha=2, beta=0, gamma=0)
    conversation = desk.ids["alpha0"]
    before = assignee(services, conversation)
    refused = assign(services, agent(desk, "ann"), conversation, desk.agents["cid"])  # cid: group B only
    assert refused["conversation"] is None
    [error] = refused["userErrors"]
    assert (error["field"], error["code"]) == (["agentId"], "NOT_IN_GROUPS")
    assert assignee(services, conversation) == before
    # within the conversation's groups it is fine
    moved = assign(services, agent(desk, "ann"), conversation, desk.agents["bob"])
    assert moved == {"conversation": {"status": "OPEN", "assignee": {"name": "bob"}}, "userErrors": []}


def test_an_agent_asking_for_the_override_is_forbidden(services: Services) -> None:
    desk = Desk(services, alpha=1, beta=0, gamma=1)
    for conversation in (desk.ids["alpha0"], desk.ids["gamma1"]):
        for who in (agent(desk, "ann"), AUDITOR):
            assert error_codes(services, who, ASSIGN, c=conversation, a=str(desk.agents["cid"]), o=True) == [
                "FORBIDDEN"]
    assert assignee(services, desk.ids["gamma1"]) is None


def test_an_admin_needs_the_override_outside_the_groups_and_it_is_recorded(services: Services) -> None:
    desk = Desk(services, alpha=1, beta=0, gamma=0)
    conversation = desk.ids["alpha0"]
    refused = assign(services, ADMIN, conversation, desk.agents["cid"])
    assert [(e["field"], e["code"]) for e in refused["userErrors"]] == [(["agentId"], "NOT_IN_GROUPS")]
    moved = assign(services, ADMIN, conversation, desk.agents["cid"], override=True)
    assert moved == {"conversation": {"status": "OPEN", "assignee": {"name": "cid"}}, "userErrors": []}
    # the auditor's feed shows the override on the Assigned event
    feed = run(services, "query($id: UUID!) { events(aggregateId: $id) { events { type data } } }", AUDITOR,
               id=conversation)["events"]["events"]
    manual = [e["data"] for e in feed if e["type"] == "Assigned" and e["data"]["decided_by"] == "admin"]
    assert [(d["override"], d["agent_id"]) for d in manual] == [(True, str(desk.agents["cid"]))]
    automatic = [e["data"] for e in feed if e["type"] == "Assigned" and e["data"]["decided_by"] != "admin"]
    assert [d["override"] for d in automatic] == [False]


def test_an_unrouted_conversation_is_assigned_only_by_an_admin_with_the_override(services: Services) -> None:
    desk = Desk(services, alpha=0, beta=0, gamma=1)
    conversation = desk.ids["gamma0"]
    refused = assign(services, ADMIN, conversation, desk.agents["ann"])
    assert [(e["field"], e["code"]) for e in refused["userErrors"]] == [(["agentId"], "NO_GROUPS")]
    # an agent cannot even see it (no groups): not found, as for any conversation outside its groups
    hidden = assign(services, agent(desk, "ann"), conversation, desk.agents["ann"])
    assert [e["code"] for e in hidden["userErrors"]] == ["NOT_FOUND"]
    moved = assign(services, ADMIN, conversation, desk.agents["ann"], override=True)
    assert moved == {"conversation": {"status": "OPEN", "assignee": {"name": "ann"}}, "userErrors": []}
