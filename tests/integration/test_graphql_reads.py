"""GraphQL reads whose cost does not grow with the page or the history, run in-process on both
backends: a page of conversations with nested fields runs a fixed number of statements
(per-request DataLoaders), totalCount comes from maintained counts that stay equal to
COUNT(*) through assign, close and reopen, and an agent still sees only its groups'
conversations on every path the loaders serve."""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from adapters.database import Tx
from api.bootstrap import Services
from api.graphql.common import Context
from api.graphql.schema import schema
from api.graphql.types import FROM_ROW, _FromRow
from domain.commands.intake import Arrival
from domain.commands.tokens import Principal
from domain.mail import InboundMail
from domain.routing import RuleSpec
from domain.values import (
    AgentStatus,
    AssignmentStrategy,
    Condition,
    ConditionField,
    ConditionOperator,
    Role,
    ServerSettings,
    TransportSecurity,
)
from projections.counts import Counts
from projections.rebuild import verify
from tests.conftest import GOOD_PASSWORD

ADMIN = Principal(Role.ADMIN, None, None)
STATUSES = (None, "UNROUTED", "QUEUED", "OPEN", "CLOSED")
PAGE = """query($first: Int, $filter: ConversationFilter) { conversations(first: $first, filter: $filter) {
  totalCount pageInfo { hasNextPage endCursor }
  edges { cursor node {
    id subject status customerEmail reference createdAt lastMessageAt
    mailbox { address lastSyncedAt lastError inWorkspace quarantinedCount }
    contact { name owner { name } account { name owner { name } } }
    assignee { name activeConversations receivedToday groups { name members { name } } }
    groups { name members { name activeConversations } }
    rule { name mailboxes { address } groups { name } }
    messages { subject from html attachments { url } }
    assignments { agent { name } strategy reason }
  } } } }"""
# The same page as an AGENT token asks it: other agents' figures are not for agents (FORBIDDEN;
# see tests/integration/test_visibility.py), and `rule` answers null to them.
AGENT_PAGE = PAGE.replace("name activeConversations receivedToday groups", "name groups").replace(
    "members { name activeConversations }", "members { name }")


# ----------------------------------------------------------------- a desk with mail


def _mail(n: int, subject: str, sender: str) -> Arrival:
    message_id = f"m{n}.{hashlib.sha256(subject.encode()).hexdigest()[:8]}@customer.example"
    date = datetime(2025, 3, 1, tzinfo=UTC) + timedelta(minutes=n)
    mail = InboundMail(message_id=message_id, source=f"imap:INBOX:1:{n + 1}", from_address=sender,
                       from_name="Customer", to=["support@desk.example"], cc=[], subject=subject, date=date,
                       text=f"Hello, about {subject}", html_blob=None, raw_blob=hashlib.sha256(message_id.encode())
                       .hexdigest(), size=100)
    return Arrival(source=mail.source, size=mail.size, raw_blob=mail.raw_blob, mail=mail)


def settle(services: Services, position: int | None = None) -> None:
    assert services.assigner.wait_for(position if position is not None else services.projections.head())
    assert services.projections.wait_for(services.projections.head())


class Desk:
    """Group A (ann, bob) takes "alpha" mail round robin; group B (cid, AWAY) "beta" mail, which
    queues; "gamma" mail matches no rule. Every customer is a contact with an owner and an account."""

    def __init__(self, services: Services, alpha: int, beta: int, gamma: int) -> None:
        app = services.app
        self.services = services
        written, _ = app.bind_mailbox("support@desk.example", GOOD_PASSWORD, "Support", None,
                                      ServerSettings("imap.desk.example", 993, TransportSecurity.TLS, "support"))
        self.mailbox = written.id
        self.agents = {n: app.create_agent(n, f"{n}@desk.example").id for n in ("ann", "bob", "cid", "dee")}
        app.set_agent_status(self.agents["cid"], AgentStatus.AWAY)
        self.group_a = app.create_agent_group("A", [self.agents["ann"], self.agents["bob"]]).id
        self.group_b = app.create_agent_group("B", [self.agents["cid"], self.agents["dee"]]).id
        app.set_agent_status(self.agents["dee"], AgentStatus.AWAY)
        for word, group in (("alpha", self.group_a), ("beta", self.group_b)):
            app.create_routing_rule(RuleSpec(
                name=word, mailbox_ids=[self.mailbox], group_ids=[group], strategy=AssignmentStrategy.ROUND_ROBIN,
                conditions=[Condition(ConditionField.SUBJECT, ConditionOperator.CONTAINS, word)]))
        account = app.upsert_account(None, "Customer Inc", ["customer.example"], self.agents["bob"]).id
        words = ["alpha"] * alpha + ["beta"] * beta + ["gamma"] * gamma
        for n, _ in enumerate(words):
            app.upsert_contact(f"c{n}@customer.example", f"Customer {n}", account, self.agents["ann"])
        for word in ("gamma", "beta", "alpha"):  # alpha, the one with everything, newest: first in the list
            arrivals = [_mail(n, f"{w} question {n}", f"c{n}@customer.example") for n, w in enumerate(words)
                        if w == word]
            if arrivals:
                assert app.take_in(self.mailbox, arrivals).taken == len(arrivals)
                settle(services)
        self.ids = {r["subject"].split()[0] + r["subject"].split()[-1]: r["id"]
                    for r in services.database.query("SELECT id, subject FROM rm_conversations")}


# ----------------------------------------------------------------- running queries


def run(services: Services, query: str, principal: Principal = ADMIN, **variables: Any) -> dict[str, Any]:
    async def execute() -> Any:
        return await schema.execute(query, variable_values=variables,
                                    context_value=Context(services=services, principal=principal))

    result = asyncio.run(execute())
    assert result.errors is None, result.errors
    return dict(result.data or {})


@contextmanager
def statements() -> Iterator[list[str]]:
    """The SQL statements run through the read models' Tx meanwhile."""
    seen: list[str] = []
    execute, executemany = Tx.execute, Tx.executemany

    def counted_execute(tx: Tx, sql: str, params: Sequence[Any] = ()) -> Tx:
        seen.append(sql)
        return execute(tx, sql, params)

    def counted_executemany(tx: Tx, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        seen.append(sql)
        executemany(tx, sql, rows)

    Tx.execute = counted_execute  # type: ignore[method-assign,assignment]
    Tx.executemany = counted_executemany  # type: ignore[method-assign,assignment]
    try:
        yield seen
    finally:
        Tx.execute = execute  # type: ignore[method-assign]
        Tx.executemany = executemany  # type: ignore[method-assign]


@contextmanager
def following(services: Services) -> Iterator[None]:
    """The views and the assigner follow the log in a thread, as `mailroom serve` runs them."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            services.assigner.catch_up()
            services.projections.catch_up()
            stop.wait(0.01)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(10)


def counted_rows(seen: list[str]) -> bool:
    """Whether totalCount counted conversation rows (not read a maintained count)."""
    return any("COUNT(*) AS n FROM rm_conversations" in sql for sql in seen)


def agent(desk: Desk, name: str) -> Principal:
    return Principal(Role.AGENT, desk.agents[name], None)


# ----------------------------------------------------------------- statements


def test_a_page_runs_the_same_few_statements_whatever_its_size(services: Services) -> None:
    desk = Desk(services, alpha=16, beta=4, gamma=4)
    with statements() as small:
        page = run(services, PAGE, first=3)["conversations"]
    assert len(page["edges"]) == 3
    with statements() as large:  # the 16 alpha ones: the same kinds of lookups as the first 3
        page = run(services, PAGE, first=16)["conversations"]
    assert {e["node"]["subject"].split()[0] for e in page["edges"]} == {"alpha"} and page["totalCount"] == 24
    node = page["edges"][0]["node"]
    assert node["assignee"]["groups"][0]["members"] and node["contact"]["account"]["owner"]["name"] == "bob"
    assert node["mailbox"]["inWorkspace"] and node["rule"]["mailboxes"][0]["address"] == "support@desk.example"
    # the page, its count, then one statement per kind of lookup at each depth it is asked at
    assert len(large) == len(small), (small, large)
    with statements() as everything:
        page = run(services, PAGE, first=24)["conversations"]
    assert len(page["edges"]) == 24
    assert len(everything) <= 20, everything
    assert max(everything.count(sql) for sql in everything) <= 2, everything
    assert not counted_rows(everything), "totalCount without a filter is maintained"
    assert desk.ids


def test_a_page_answers_as_single_conversations_do_through_fragments_and_aliases(services: Services) -> None:
    desk = Desk(services, alpha=3, beta=2, gamma=1)
    fields = "id subject mailbox { address } assignee { name } groups { name } messages { subject from }"
    listed = run(services, """query { conversations(first: 10) { ... on ConversationConnection { totalCount }
        edges { node { id ...more ... on Conversation { groups { id } } box: mailbox { displayName } } } } }
        fragment more on Conversation { subject mailbox { address } assignee { name } groups { name }
                                        messages { subject from } }""")["conversations"]
    page = listed["edges"]
    assert len(page) == 6 == listed["totalCount"]
    for edge in page:
        one = run(services, f"query($id: UUID!) {{ conversation(id: $id) {{ {fields} groups {{ id }} "
                            "box: mailbox { displayName } } }", id=edge["node"]["id"])["conversation"]
        assert edge["node"] == one
    assert {e["node"]["assignee"]["name"] for e in page if e["node"]["assignee"]} == {"ann", "bob"}
    assert desk.ids


def test_totalcount_is_only_computed_when_asked_for(services: Services) -> None:
    Desk(services, alpha=2, beta=1, gamma=1)
    with statements() as seen:
        run(services, "{ conversations(filter: {mailboxId: null, customerEmail: \"c0@customer.example\"}) "
                      "{ edges { node { id } } } }")
    assert len(seen) == 1 and "COUNT" not in seen[0]


def test_workloads_and_daily_totals_take_two_statements_for_any_number_of_agents(services: Services) -> None:
    Desk(services, alpha=6, beta=0, gamma=0)
    for i in range(30):
        services.app.create_agent(f"extra {i}", f"extra{i}@desk.example")
    settle(services)
    with statements() as seen:
        loads = run(services, "{ agentWorkloads { agent { name receivedToday } activeConversations } }")
    assert len(loads["agentWorkloads"]) == 34 and len(seen) <= 3, seen
    assert sorted(w["activeConversations"] for w in loads["agentWorkloads"] if w["activeConversations"]) == [3, 3]
    day = services.database.query("SELECT day FROM rm_daily_totals")[0]["day"]
    with statements() as seen:
        totals = run(services, "query($d: Date!) { dailyTotals(date: $d) { agent { name } received } }", d=day)
    assert sorted((t["agent"]["name"], t["received"]) for t in totals["dailyTotals"]) == [("ann", 3), ("bob", 3)]
    assert len(seen) <= 2, seen  # one since agents and figures are joined


def test_every_plain_field_is_served_from_the_row() -> None:
    """A plain() field needs @from_row on its type, else it is never set."""
    for definition in schema.schema_converter.type_map.values():
        cls = getattr(definition.definition, "origin", None)
        for field in getattr(definition.definition, "fields", []):
            if FROM_ROW in (field.metadata or {}):
                assert isinstance(cls.__dict__.get(field.python_name), _FromRow), (cls, field.python_name)


# ----------------------------------------------------------------- totalCount


def _check_counts(services: Services, desk: Desk) -> None:
    """totalCount for each status, alone and with each group, is COUNT(*), from the counts."""
    for status in STATUSES:
        for group in (None, desk.group_a, desk.group_b):
            where, params = [], []
            if status:
                where.append("status = ?")
                params.append(status)
            if group:
                where.append("id IN (SELECT conversation_id FROM rm_conversation_groups WHERE group_id = ?)")
                params.append(str(group))
            expected = services.database.query("SELECT COUNT(*) AS n FROM rm_conversations"
                                               + (f" WHERE {' AND '.join(where)}" if where else ""), params)[0]["n"]
            given = {k: v for k, v in (("status", status), ("groupId", str(group) if group else None)) if v}
            with statements() as seen:
                page = run(services, PAGE, first=200, filter=given)["conversations"]
            assert page["totalCount"] == expected == len(page["edges"]), (status, group)
            assert not counted_rows(seen), (status, group)


def test_totalcount_per_status_and_group_follows_assign_close_and_reopen(services: Services) -> None:
    desk = Desk(services, alpha=5, beta=3, gamma=2)
    app = services.app
    _check_counts(services, desk)
    assert run(services, PAGE, filter={"status": "QUEUED"})["conversations"]["totalCount"] == 3
    settle(services, app.assign_conversation(UUID(desk.ids["beta5"]), desk.agents["ann"], override=True).position)
    _check_counts(services, desk)
    for key in ("alpha0", "alpha1", "beta6"):
        settle(services, app.close_conversation(UUID(desk.ids[key])).position)
    _check_counts(services, desk)
    assert run(services, PAGE, filter={"status": "CLOSED"})["conversations"]["totalCount"] == 3
    for key in ("alpha0", "beta6"):
        settle(services, app.reopen_conversation(UUID(desk.ids[key])).position)
    _check_counts(services, desk)
    statuses = {r["id"]: r["status"] for r in services.database.query("SELECT id, status FROM rm_conversations")}
    assert statuses[desk.ids["alpha0"]] == "OPEN" and statuses[desk.ids["beta6"]] == "QUEUED"
    # a covering rule routes the unrouted ones: they leave UNROUTED, group counts follow
    settle(services, app.create_routing_rule(RuleSpec(
        name="rest", mailbox_ids=[desk.mailbox], group_ids=[desk.group_a],
        strategy=AssignmentStrategy.LOAD_BALANCED)).position)
    _check_counts(services, desk)
    assert run(services, PAGE, filter={"status": "UNROUTED"})["conversations"]["totalCount"] == 0
    assert verify(services.projections, services.projections.views[Counts.name]) == []


def test_other_filters_and_lagging_counts_fall_back_to_counting_rows(services: Services) -> None:
    desk = Desk(services, alpha=4, beta=2, gamma=1)
    with statements() as seen:
        page = run(services, PAGE, filter={"assigneeId": str(desk.agents["ann"])})["conversations"]
    assert page["totalCount"] == 2 == len(page["edges"])
    assert counted_rows(seen)
    # the counts view behind the list: totalCount still matches the list
    with services.database.transaction() as tx:
        tx.execute("UPDATE rm_positions SET position = position - 1 WHERE view = ?", (Counts.name,))
        tx.execute("UPDATE rm_conversation_counts SET n = n + 100")
    assert run(services, PAGE)["conversations"]["totalCount"] == 7


# ----------------------------------------------------------------- visibility


def test_an_agent_sees_only_its_groups_conversations_on_every_path(services: Services) -> None:
    desk = Desk(services, alpha=3, beta=2, gamma=1)
    ann = agent(desk, "ann")
    page = run(services, AGENT_PAGE, ann, first=50)["conversations"]
    assert {e["node"]["subject"].split()[0] for e in page["edges"]} == {"alpha"}
    assert page["totalCount"] == 3
    assert run(services, AGENT_PAGE, ann, filter={"groupId": str(desk.group_b)})["conversations"] == {
        "totalCount": 0, "pageInfo": {"hasNextPage": False, "endCursor": None}, "edges": []}
    # one request, both conversations: the batched group lookup decides each on its own
    both = run(services, """query($a: UUID!, $b: UUID!) {
        a: conversation(id: $a) { subject messages { subject attachments { url } } }
        b: conversation(id: $b) { subject messages { subject } }
        c: conversation(id: $b, asOf: "2100-01-01T00:00:00Z") { subject } }""", ann,
               a=desk.ids["alpha0"], b=desk.ids["beta3"])
    assert both["a"]["messages"][0]["subject"] == "alpha question 0"
    assert both["b"] is None and both["c"] is None
    assert run(services, "query($b: UUID!) { conversation(id: $b) { subject } }", ADMIN,
               b=desk.ids["beta3"])["conversation"] == {"subject": "beta question 3"}
    # nested paths that reach agents and figures do not reach conversations
    me = run(services, "{ me { agent { name groups { name members { name } } } } }", ann)
    assert [g["name"] for g in me["me"]["agent"]["groups"]] == ["A"]
    # an agent in one group (counted), in two (the union, counted over the rows), in none
    assert run(services, AGENT_PAGE, agent(desk, "cid"))["conversations"]["totalCount"] == 2
    settle(services, services.app.create_agent_group("C", [desk.agents["ann"]]).position)
    with statements() as seen:
        page = run(services, AGENT_PAGE, ann)["conversations"]
    assert page["totalCount"] == 3 == len(page["edges"]) and counted_rows(seen)
    lone = Principal(Role.AGENT, services.app.create_agent("eve", "eve@desk.example").id, None)
    settle(services)
    assert run(services, AGENT_PAGE, lone)["conversations"] == {
        "totalCount": 0, "pageInfo": {"hasNextPage": False, "endCursor": None}, "edges": []}


def test_a_mutation_answers_with_what_it_wrote_not_what_the_request_read_before(services: Services) -> None:
    desk = Desk(services, alpha=0, beta=2, gamma=0)
    query = """mutation($a: UUID!, $b: UUID!, $ann: UUID!) {
        a: assignConversation(conversationId: $a, agentId: $ann, override: true) {
            conversation { status assignee { activeConversations } } userErrors { code } }
        b: assignConversation(conversationId: $b, agentId: $ann, override: true) {
            conversation { status assignee { activeConversations } } userErrors { code } } }"""
    with following(services):
        done = run(services, query, a=desk.ids["beta0"], b=desk.ids["beta1"], ann=str(desk.agents["ann"]))
    assert done["a"] == {"conversation": {"status": "OPEN", "assignee": {"activeConversations": 1}}, "userErrors": []}
    assert done["b"] == {"conversation": {"status": "OPEN", "assignee": {"activeConversations": 2}}, "userErrors": []}


@pytest.mark.parametrize("first", [0, 1])
def test_an_empty_or_tiny_page(services: Services, first: int) -> None:
    Desk(services, alpha=1, beta=0, gamma=0)
    page = run(services, PAGE, first=first)["conversations"]
    assert len(page["edges"]) == first and page["totalCount"] == 1
