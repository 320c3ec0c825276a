"""The audit feed `events`: one global order, complete paging, per-aggregate filter."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest

from tests.e2e.conftest import Server, cli_token

EVENT_FIELDS = "position aggregateId aggregateType version type occurredAt data"
PAGE = f"""query($after: Int, $first: Int, $aggregate: UUID) {{
  events(afterPosition: $after, first: $first, aggregateId: $aggregate) {{
    events {{ {EVENT_FIELDS} }} nextPosition }} }}"""


@dataclass
class Feed:
    server: Server
    auditor: str
    agent_id: str
    group_id: str


@pytest.fixture(scope="module")
def feed(start_server: Callable[..., Server]) -> Feed:
    server = start_server()
    admin = cli_token(server.env, server.dir, "ADMIN", "admin")
    auditor = cli_token(server.env, server.dir, "AUDITOR", "auditor")
    ids = []
    for name in ("ann", "bob", "cid"):
        payload = server.gql(admin, """mutation($input: CreateAgentInput!) {
            createAgent(input: $input) { agent { id } userErrors { code } } }""",
                             input={"name": name, "email": f"{name}@desk.example"})
        ids.append(payload["createAgent"]["agent"]["id"])
    ann = ids[0]
    group = server.gql(admin, """mutation($m: [UUID!]) { createAgentGroup(input: {name: "All", memberIds: $m})
        { group { id } } }""", m=ids[1:])["createAgentGroup"]["group"]["id"]
    # Interleave changes to one agent with other aggregates' events.
    for status in ("AWAY", "OFFLINE", "ONLINE"):
        server.gql(admin, """mutation($id: UUID!, $s: AgentStatus!) { setAgentStatus(agentId: $id, status: $s)
            { agent { id } } }""", id=ann, s=status)
        server.gql(admin, """mutation($g: UUID!, $a: [UUID!]!) { addGroupMembers(groupId: $g, agentIds: $a)
            { group { id } } }""", g=group, a=[ann])
        server.gql(admin, """mutation($g: UUID!, $a: [UUID!]!) { removeGroupMembers(groupId: $g, agentIds: $a)
            { group { id } } }""", g=group, a=[ann])
    server.gql(admin, """mutation($id: UUID!) { updateAgent(input: {id: $id, name: "Ann B."}) { agent { id } } }""",
               id=ann)
    return Feed(server, auditor, ann, group)


def page(feed: Feed, after: int | None = 0, first: int | None = 100,
         aggregate: str | None = None) -> dict[str, Any]:
    return dict(feed.server.gql(feed.auditor, PAGE, after=after, first=first, aggregate=aggregate)["events"])


def everything(feed: Feed, aggregate: str | None = None) -> list[dict[str, Any]]:
    whole = page(feed, first=500, aggregate=aggregate)
    assert whole["nextPosition"] is None, "the test data should fit one page of 500"
    return list(whole["events"])


def test_events_are_in_one_strictly_increasing_global_order(feed: Feed) -> None:
    events = everything(feed)

    positions = [e["position"] for e in events]
    assert len(events) >= 20
    assert positions == sorted(set(positions)), "positions must be strictly increasing"
    assert positions[0] >= 1
    for event in events:
        assert event["type"] and event["aggregateType"]
        assert isinstance(event["data"], dict)
        datetime.fromisoformat(event["occurredAt"])
    # Within one aggregate, versions count up in the same order.
    by_aggregate: dict[str, list[int]] = {}
    for event in events:
        by_aggregate.setdefault(event["aggregateId"], []).append(event["version"])
    for versions in by_aggregate.values():
        assert versions == list(range(versions[0], versions[0] + len(versions)))


@pytest.mark.parametrize("size", [1, 4, 7])
def test_paging_covers_every_event_exactly_once(feed: Feed, size: int) -> None:
    expected = everything(feed)
    seen: list[dict[str, Any]] = []
    after: int | None = 0
    pages = 0
    while after is not None:
        current = page(feed, after=after, first=size)
        assert 1 <= len(current["events"]) <= size
        if current["nextPosition"] is not None:
            assert len(current["events"]) == size
            assert current["nextPosition"] == current["events"][-1]["position"]
        seen += current["events"]
        after = current["nextPosition"]
        pages += 1
        assert pages <= len(expected), "paging does not end"

    assert seen == expected


def test_paging_past_the_end_is_empty(feed: Feed) -> None:
    last = everything(feed)[-1]["position"]

    assert page(feed, after=last) == {"events": [], "nextPosition": None}


def test_filter_by_aggregate_returns_only_that_aggregates_events(feed: Feed) -> None:
    events = everything(feed, aggregate=feed.agent_id)

    assert {e["aggregateId"] for e in events} == {feed.agent_id}
    assert [e["version"] for e in events] == list(range(1, len(events) + 1))
    assert [e["type"] for e in events] == ["Created", "StatusChanged", "StatusChanged", "StatusChanged", "Edited"]
    assert [e["data"].get("status") for e in events[1:4]] == ["AWAY", "OFFLINE", "ONLINE"]
    assert events[-1]["data"]["name"] == "Ann B."
    global_positions = {e["position"] for e in everything(feed) if e["aggregateId"] == feed.agent_id}
    assert [e["position"] for e in events] == sorted(global_positions)


def test_filtered_feed_pages_too(feed: Feed) -> None:
    expected = everything(feed, aggregate=feed.group_id)
    assert len(expected) == 7  # created, then 3x (members added, members removed)
    seen: list[dict[str, Any]] = []
    after: int | None = 0
    while after is not None:
        current = page(feed, after=after, first=2, aggregate=feed.group_id)
        seen += current["events"]
        after = current["nextPosition"]

    assert seen == expected
