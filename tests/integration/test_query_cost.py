"""The cost limit (issue 8, query amplification), in-process on both backends: nested lists are
priced before anything runs (QUERY_TOO_COSTLY naming the limit and the computed cost), page
sizes come from the arguments and the variables, every legitimate query of the tests and the
web front end fits the budget, and data larger than the declared sizes is stopped while the
answer is built."""

from __future__ import annotations

import asyncio
import time
from typing import Any
from uuid import UUID

import pytest
from graphql import get_introspection_query, parse

from api.bootstrap import Services
from api.graphql import cost
from api.graphql.common import Context
from api.graphql.schema import COST, schema
from domain.agents import Agent, AgentGroup
from domain.claims import Claim
from domain.commands.agents import EMAIL_CLAIM
from domain.commands.tokens import Principal
from domain.values import AgentStatus, Role
from tests.e2e.intake_helpers import CONVERSATION, CONVERSATIONS
from tests.integration.test_graphql_reads import PAGE, Desk

ADMIN = Principal(Role.ADMIN, None, None)

# The report's query: 6 levels of members under an AGENT token (N^6 with the group's size N).
NESTED = ("{agentGroups{members{groups{members{groups{members{groups{members{groups{members{groups{"
          "members{name}}}}}}}}}}}}}")
ALIASED = "{" + " ".join(f"a{i}: " + NESTED[1:-1] for i in range(3)) + "}"

# What the web front end and the benchmarks ask (bench/graphql_reads.py), and the tests' pages.
WORKSPACE_LIST = ("query($filter: ConversationFilter) { conversations(first: 50, filter: $filter) { totalCount "
                  "pageInfo { hasNextPage endCursor } edges { cursor node { id subject status customerEmail "
                  "lastMessageAt assignee { name } groups { name } mailbox { address } messages { subject } } } } }")
LEGITIMATE: dict[str, tuple[str, dict[str, Any]]] = {
    "workspace list": (WORKSPACE_LIST, {}),
    "workspace list, OPEN": (WORKSPACE_LIST, {"filter": {"status": "OPEN"}}),
    "every nested field, first 200": (PAGE, {"first": 200}),
    "every nested field, first 50": (PAGE, {"first": 50}),
    "every nested field, default page": (PAGE, {}),
    "e2e conversations page": (CONVERSATIONS, {"first": 50}),
    "e2e conversation": (CONVERSATION, {"id": "00000000-0000-0000-0000-000000000000"}),
    "agentWorkloads": ("{ agentWorkloads { agent { name } activeConversations } }", {}),
    "dailyTotals": ("query($d: Date!) { dailyTotals(date: $d) { agent { name } received } }", {"d": "2026-01-01"}),
    "routingRules": ("{ routingRules { id name priority enabled version match strategy fallbackStrategy "
                     "mailboxes { id address } groups { id name members { id name } } "
                     "conditions { field operator value headerName } } }", {}),
    "mailboxes": ("{ mailboxes { id address displayName protocol status lastSyncedAt lastError inWorkspace "
                  "quarantinedCount createdAt folders incoming { host port security username } "
                  "outgoing { host port security username } replySettings { subjectTemplate footer } } }", {}),
    "agents": ("{ agents { id name email status capacity activeConversations receivedToday groups { id name } } }", {}),
    "agentGroups": ("{ agentGroups { id name members { id name status activeConversations } } }", {}),
    "events": ("{ events(first: 500) { events { position aggregateId aggregateType version type occurredAt data } "
               "nextPosition } }", {}),
    "GraphiQL introspection": (get_introspection_query(descriptions=True), {}),
    "me": ("{ me { role agent { name groups { name } } } }", {}),
}


def execute(services: Services, query: str, principal: Principal = ADMIN, **variables: Any) -> Any:
    async def run() -> Any:
        return await schema.execute(query, variable_values=variables,
                                    context_value=Context(services=services, principal=principal))

    return asyncio.run(run())


def codes(result: Any) -> list[str]:
    return [str((e.extensions or {}).get("code")) for e in result.errors or []]


def seed_group(services: Services, name: str, size: int) -> list[UUID]:
    """`size` new agents in one new group, saved in bulk as the commands would write them."""
    made: list[Any] = []
    agents = []
    for i in range(size):
        email = f"{name.lower()}{i}@cost.example"
        agent = Agent(name=f"{name} {i}", email=email, status=AgentStatus.ONLINE, capacity=None)
        claim = Claim(EMAIL_CLAIM, email)
        claim.take(agent.id)
        agents.append(agent.id)
        made += [agent, claim]
    made.append(AgentGroup(name=name, member_ids=agents))
    for start in range(0, len(made), 500):
        services.app.save(*made[start:start + 500])
    assert services.projections.wait_for(services.projections.head())
    return agents


def test_the_reported_nested_query_is_refused_before_it_runs(services: Services) -> None:
    six = seed_group(services, "Six", 6)
    token_agent = Principal(Role.AGENT, six[0], None)
    for query in (NESTED, ALIASED):
        started = time.monotonic()
        result = execute(services, query, token_agent)
        assert time.monotonic() - started < 2.0  # 9.2 s (24 s aliased) when it ran
        assert result.data is None
        assert codes(result) == ["QUERY_TOO_COSTLY"]
        error = result.errors[0]
        computed = COST.estimate(parse(query), None, None)
        assert computed > cost.BUDGET
        assert error.extensions == {"code": "QUERY_TOO_COSTLY", "cost": computed, "limit": cost.BUDGET}
        assert f"query cost {computed} is over the limit of {cost.BUDGET}" in error.message


@pytest.mark.parametrize("name", sorted(LEGITIMATE))
def test_every_legitimate_query_fits_the_budget(services: Services, name: str) -> None:
    query, variables = LEGITIMATE[name]
    assert COST.estimate(parse(query), None, variables) <= cost.BUDGET
    result = execute(services, query, **variables)
    assert "QUERY_TOO_COSTLY" not in codes(result), result.errors


def test_the_page_sizes_come_from_the_arguments_and_the_variables() -> None:
    def estimate(query: str, **variables: Any) -> int:
        return COST.estimate(parse(query), None, variables)

    node = "{ edges { node { messages { id } } } }"
    literal = "{ conversations(first: %d) " + node + " }"
    assert estimate(literal % 10) == estimate("query($n: Int) { conversations(first: $n) " + node + " }", n=10)
    # conversations, edges, then per edge: node, messages, and per message: id
    assert estimate(literal % 10) == 1 + 1 + 10 * (1 + 1 + 10 * 1)
    assert estimate("{ conversations " + node + " }") == estimate(literal % 50)  # the argument's default
    assert estimate("query($n: Int = 7) { conversations(first: $n) " + node + " }") == estimate(literal % 7)
    assert estimate(literal % 100000) == estimate(literal % 200)  # clamped to the resolver's maximum
    assert estimate("query($n: Int) { conversations(first: $n) " + node + " }", n="many") == estimate(literal % 200)
    # Repeated through fragments and aliases: counted as execution merges them.
    merged = ("{ conversations(first: 10) { ...E edges { node { messages { id } } } } } "
              "fragment E on ConversationConnection " + node)
    assert estimate(merged) == estimate(literal % 10)
    # Remembered by text and the sizing variables' values, never across them.
    sized = "query($n: Int) { conversations(first: $n) " + node + " }"
    document = parse(sized)
    for n in (10, 100, 10, True, 1, None, 100):
        assert COST.cost(sized, document, None, {"n": n}) == estimate(sized, n=n)
    assert COST.cost(sized, document, None, {}) == estimate(literal % 50)


def test_the_limit_follows_the_variables(services: Services) -> None:
    deep = ("query($n: Int) { conversations(first: $n) { edges { node { groups { members { groups { members { "
            "name email } } } } } } } }")
    assert codes(execute(services, deep, n=200)) == ["QUERY_TOO_COSTLY"]
    assert codes(execute(services, deep, n=2)) == []


def test_data_larger_than_the_declared_sizes_is_stopped_while_the_answer_is_built(
        services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    """A group of 40 where the model expects 20, against a budget of 1,000 for the answer:
    40 agents x 1 group x 40 members' names is 1,600 fields."""
    seed_group(services, "Everyone", 40)
    query = "{ agents { groups { members { name } } } }"
    monkeypatch.setattr(cost.BudgetedExecutor, "budget", 1000)
    result = execute(services, query)
    assert result.data is None
    assert set(codes(result)) == {"QUERY_TOO_COSTLY"}
    assert "answer over the limit of 1000" in result.errors[0].message
    monkeypatch.setattr(cost.BudgetedExecutor, "budget", 2000)
    result = execute(services, query)
    assert result.errors is None
    assert sum(len(g["members"]) for a in result.data["agents"] for g in a["groups"]) == 1600


def test_a_small_desk_answers_the_workspace_page_in_full(services: Services) -> None:
    desk = Desk(services, alpha=3, beta=1, gamma=1)
    result = execute(services, PAGE, first=200)
    assert result.errors is None
    assert len(result.data["conversations"]["edges"]) == len(desk.ids)
