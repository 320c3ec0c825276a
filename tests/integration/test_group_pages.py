"""A page limited to groups (an AGENT token, a groupId filter) is read through the groups'
(group_id, sort_key) index: page after page it lists exactly the conversations routed to one of
the groups, newest first, each once (one routed to two of the agent's groups too), with any
other filter, on both backends; and the same as the general query would."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest

from api.services import Services
from domain.commands.tokens import Principal
from domain.routing import RuleSpec
from domain.values import AssignmentStrategy, Condition, ConditionField, ConditionOperator, Role, ServerSettings
from domain.values import TransportSecurity as Security
from projections import conversation_queries
from tests.conftest import GOOD_PASSWORD
from tests.integration.test_graphql_reads import ADMIN, _mail, run, settle

PAGE = """query($first: Int, $after: String, $filter: ConversationFilter) {
  conversations(first: $first, after: $after, filter: $filter) {
    totalCount pageInfo { hasNextPage endCursor } edges { cursor node { id status groups { name } } } } }"""


def desk(services: Services) -> dict[str, UUID]:
    """Groups A (x), B (x, y), C (y); "both" mail goes to A and B, "a"/"b"/"c" mail to its group."""
    app = services.app
    written, _ = app.bind_mailbox("support@desk.example", GOOD_PASSWORD, "Support", None,
                                  ServerSettings("imap.desk.example", 993, Security.TLS, "support"))
    x, y = (app.create_agent(n, f"{n}@desk.example").id for n in ("x", "y"))
    ids = {"x": x, "y": y, "A": app.create_agent_group("A", [x]).id, "B": app.create_agent_group("B", [x, y]).id,
           "C": app.create_agent_group("C", [y]).id}
    for word, groups in (("both", ["A", "B"]), ("aaa", ["A"]), ("bbb", ["B"]), ("ccc", ["C"])):
        app.create_routing_rule(RuleSpec(
            name=word, mailbox_ids=[written.id], group_ids=[ids[g] for g in groups],
            strategy=AssignmentStrategy.LOAD_BALANCED,
            conditions=[Condition(ConditionField.SUBJECT, ConditionOperator.CONTAINS, word)]))
    words = ["both", "aaa", "bbb", "ccc", "none"] * 5
    arrivals = [_mail(n, f"{w} question {n}", f"c{n}@customer.example") for n, w in enumerate(words)]
    assert app.take_in(written.id, arrivals).taken == len(arrivals)
    settle(services)
    return ids


def expected(services: Services, groups: list[UUID], status: str | None = None) -> list[str]:
    marks = ", ".join("?" for _ in groups)
    sql = (f"SELECT id FROM rm_conversations WHERE id IN (SELECT conversation_id FROM rm_conversation_groups "
           f"WHERE group_id IN ({marks}))" + (" AND status = ?" if status else "") + " ORDER BY sort_key DESC")
    return [r["id"] for r in services.database.query(sql, [*map(str, groups), *([status] if status else [])])]


def pages(services: Services, who: Principal, first: int, **filter: Any) -> list[str]:
    seen: list[str] = []
    after = None
    while True:
        page = run(services, PAGE, who, first=first, after=after, filter=filter)["conversations"]
        seen += [e["node"]["id"] for e in page["edges"]]
        assert page["totalCount"] >= len(seen)
        if not page["pageInfo"]["hasNextPage"]:
            assert page["totalCount"] == len(seen)
            return seen
        after = page["pageInfo"]["endCursor"]


@pytest.mark.parametrize("merged", [True, False])
def test_group_pages_list_each_routed_conversation_once_newest_first(
        services: Services, merged: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if not merged:  # the general query, for comparison
        monkeypatch.setattr(conversation_queries, "MERGED_GROUPS", 0)
    ids = desk(services)
    x, y = Principal(Role.AGENT, ids["x"], None), Principal(Role.AGENT, ids["y"], None)
    both = expected(services, [ids["A"], ids["B"]])
    assert len(both) == 15 and len(set(both)) == 15  # "both" mail is in two of x's groups, listed once
    for first in (1, 4, 50):
        assert pages(services, x, first) == both
        assert pages(services, y, first) == expected(services, [ids["B"], ids["C"]])
        assert pages(services, ADMIN, first, groupId=str(ids["B"])) == expected(services, [ids["B"]])
        assert pages(services, x, first, groupId=str(ids["A"])) == expected(services, [ids["A"]])
        assert pages(services, x, first, groupId=str(ids["C"])) == []  # not one of x's groups
    for status in ("OPEN", "QUEUED", "CLOSED"):
        assert pages(services, x, 2, status=status) == expected(services, [ids["A"], ids["B"]], status)
    sorted_keys = services.database.query(
        "SELECT COUNT(*) AS n FROM rm_conversation_groups g JOIN rm_conversations c ON c.id = g.conversation_id "
        "WHERE g.sort_key IS NULL OR g.sort_key <> c.sort_key")
    assert sorted_keys[0]["n"] == 0
