"""One visibility rule per type, applied on every path to it (issue 8, finding 7): an AGENT token
reads neither routing rules through a conversation, nor other agents' figures through `agents`,
a group's members or an assignee, nor the last handler of a customer outside its groups."""

from __future__ import annotations

from typing import Any

from api.bootstrap import Services
from domain.commands.tokens import Principal
from domain.values import Role
from tests.integration.test_graphql_reads import ADMIN, Desk, agent, run
from tests.integration.test_manual_assignment_api import error_codes

AUDITOR = Principal(Role.AUDITOR, None, None)
FIGURES_PATHS = (
    "{ agents { name activeConversations } }",
    "{ agents { receivedToday } }",
    "{ agentGroups { members { activeConversations } } }",
    "query($id: UUID!) { agent(id: $id) { receivedToday } }",
    "query($id: UUID!) { conversation(id: $id) { assignee { groups { members { activeConversations } } } } }",
)


def variables(desk: Desk, query: str) -> dict[str, Any]:
    if "agent(id" in query:
        return {"id": str(desk.agents["cid"])}
    if "conversation(id" in query:
        return {"id": desk.ids["alpha0"]}
    return {}


def test_an_agent_reads_no_other_agents_figures_on_any_path(services: Services) -> None:
    desk = Desk(services, alpha=2, beta=0, gamma=0)
    ann = agent(desk, "ann")
    for query in FIGURES_PATHS:
        assert error_codes(services, ann, query, **variables(desk, query)) == ["FORBIDDEN"], query
        for reader in (ADMIN, AUDITOR):
            assert error_codes(services, reader, query, **variables(desk, query)) == [], query
    # its own figures it may read
    own = run(services, "query($id: UUID!) { agent(id: $id) { activeConversations receivedToday } }", ann,
              id=str(desk.agents["ann"]))["agent"]
    assert own["activeConversations"] >= 1 and own["receivedToday"] >= 1


def test_an_agent_sees_no_routing_rule_through_a_conversation(services: Services) -> None:
    desk = Desk(services, alpha=1, beta=0, gamma=0)
    query = "query($id: UUID!) { conversation(id: $id) { subject rule { name conditions { value } groups { name } } } }"
    seen = run(services, query, agent(desk, "ann"), id=desk.ids["alpha0"])["conversation"]
    assert seen["subject"].startswith("alpha") and seen["rule"] is None
    for reader in (ADMIN, AUDITOR):
        assert run(services, query, reader, id=desk.ids["alpha0"])["conversation"]["rule"]["name"] == "alpha"


def test_an_agent_gets_the_last_handler_only_of_its_groups_customers(services: Services) -> None:
    desk = Desk(services, alpha=1, beta=0, gamma=0)  # c0 writes "alpha": group A (ann, bob)
    query = "query($e: String!) { lastHandler(customerEmail: $e) { name } }"
    handler = run(services, query, ADMIN, e="c0@customer.example")["lastHandler"]
    assert handler is not None and handler["name"] in ("ann", "bob")
    assert run(services, query, agent(desk, "bob"), e="c0@customer.example")["lastHandler"] == handler
    assert run(services, query, agent(desk, "cid"), e="c0@customer.example")["lastHandler"] is None  # group B
    assert run(services, query, agent(desk, "cid"), e="C0@Customer.Example")["lastHandler"] is None


def test_an_agent_reads_a_contact_only_of_its_groups_customers(services: Services) -> None:
    desk = Desk(services, alpha=1, beta=0, gamma=0)  # c0 writes "alpha": group A (ann, bob)
    query = "query($e: String!) { contact(email: $e) { name owner { name } } }"
    shown = run(services, query, ADMIN, e="c0@customer.example")["contact"]
    assert shown is not None and shown["name"] == "Customer 0"
    assert run(services, query, agent(desk, "bob"), e="c0@customer.example")["contact"] == shown
    assert run(services, query, agent(desk, "cid"), e="c0@customer.example")["contact"] is None  # group B
