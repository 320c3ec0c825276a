"""API tokens and agent deactivation through GraphQL, in-process on both backends (issue 8,
finding 6): tokens are listed to admins without their value or hash, revoked, expire; when they
were last used is noted at most once a minute, never as an event; deactivating an agent refuses
its tokens, keeps it listed (inactive), and the in-process assigner decides each of its open
conversations again exactly once, which a replay of the log re-derives and a restart keeps."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from api.auth import token_usage, who
from api.bootstrap import Services
from domain.commands.tokens import Principal
from domain.tokens import hash_token
from domain.values import Role
from tests.integration.assign_support import replay
from tests.integration.test_graphql_reads import Desk, agent, following, run, settle
from tests.integration.test_manual_assignment_api import error_codes

TOKEN = "id name role agent { name } createdAt expiresAt lastUsedAt revokedAt"
CREATE = ("mutation($i: CreateApiTokenInput!) { createApiToken(input: $i) { token apiToken { " + TOKEN
          + " } userErrors { field code } } }")
LIST = "{ apiTokens { " + TOKEN + " } }"
REVOKE = "mutation($id: UUID!) { revokeApiToken(id: $id) { deletedId userErrors { field code } } }"
DEACTIVATE = """mutation($id: UUID!) { deactivateAgent(id: $id) {
    agent { name active activeConversations } userErrors { field code message } } }"""


def create(services: Services, **given: Any) -> dict[str, Any]:
    with following(services):
        return dict(run(services, CREATE, i=given)["createApiToken"])


def listed(services: Services) -> dict[str, dict[str, Any]]:
    return {t["name"]: t for t in run(services, LIST)["apiTokens"]}


# ----------------------------------------------------------------- tokens


def test_tokens_are_listed_to_admins_without_value_or_hash_and_revoked(services: Services) -> None:
    desk = Desk(services, alpha=0, beta=0, gamma=0)
    expires = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    ops = create(services, name="ops", role="ADMIN", expiresAt=expires.isoformat())
    laptop = create(services, name="ann's laptop", role="AGENT", agentId=str(desk.agents["ann"]))
    assert ops["userErrors"] == [] and ops["token"].startswith("mr_")
    assert ops["apiToken"]["expiresAt"] == expires.isoformat() and ops["apiToken"]["revokedAt"] is None
    assert laptop["apiToken"]["agent"] == {"name": "ann"} and laptop["apiToken"]["expiresAt"] is None
    answer = json.dumps(run(services, LIST))
    for value in (ops["token"], laptop["token"]):
        assert value not in answer and hash_token(value) not in answer
    assert set(listed(services)) == {"ops", "ann's laptop"}

    assert who(services, ops["token"]) == Principal(Role.ADMIN, None, token_id(ops))
    with following(services):
        revoked = run(services, REVOKE, id=str(token_id(ops)))["revokeApiToken"]
    assert revoked == {"deletedId": str(token_id(ops)), "userErrors": []}
    assert who(services, ops["token"]) is None
    assert listed(services)["ops"]["revokedAt"] is not None
    assert who(services, laptop["token"]) is not None  # only that one


def token_id(payload: dict[str, Any]) -> UUID:
    return UUID(payload["apiToken"]["id"])


def test_only_admins_see_and_revoke_tokens(services: Services) -> None:
    desk = Desk(services, alpha=0, beta=0, gamma=0)
    ops = create(services, name="ops", role="ADMIN")
    for principal in (agent(desk, "ann"), Principal(Role.AUDITOR, None, None)):
        assert error_codes(services, principal, LIST) == ["FORBIDDEN"]
        assert error_codes(services, principal, REVOKE, id=str(token_id(ops))) == ["FORBIDDEN"]
        assert error_codes(services, principal, DEACTIVATE, id=str(desk.agents["bob"])) == ["FORBIDDEN"]
    assert who(services, ops["token"]) is not None


def test_an_expiry_in_the_past_is_refused_and_an_expired_token_is_nobody(services: Services) -> None:
    Desk(services, alpha=0, beta=0, gamma=0)
    past = create(services, name="old", role="ADMIN", expiresAt="2020-01-01T00:00:00Z")
    assert (past["token"], past["userErrors"]) == (None, [{"field": ["input", "expiresAt"], "code": "INVALID"}])
    soon = create(services, name="soon", role="AUDITOR",
                  expiresAt=(datetime.now(UTC) + timedelta(seconds=60)).isoformat())
    assert who(services, soon["token"]) is not None
    assert services.app.authenticate(soon["token"], now=datetime.now(UTC) + timedelta(seconds=61)) is None


def test_last_used_is_noted_at_most_once_a_minute_and_never_as_an_event(services: Services) -> None:
    Desk(services, alpha=0, beta=0, gamma=0)
    ops = create(services, name="ops", role="ADMIN")
    assert listed(services)["ops"]["lastUsedAt"] is None
    head = services.projections.head()
    usage = token_usage(services)
    writes: list[bool] = []
    real = usage.used

    def counted(*args: Any, **kwargs: Any) -> bool:
        writes.append(real(*args, **kwargs))
        return writes[-1]

    usage.used = counted  # type: ignore[method-assign]
    try:
        for _ in range(5):
            assert who(services, ops["token"]) is not None
    finally:
        usage.used = real  # type: ignore[method-assign]
    assert writes == [True, False, False, False, False]
    first = listed(services)["ops"]["lastUsedAt"]
    assert first is not None and datetime.fromisoformat(first) <= datetime.now(UTC)
    assert services.projections.head() == head  # no event per request
    # a minute later (another process's clock: a fresh TokenUsage), the time moves once
    later = datetime.now(UTC) + timedelta(seconds=61)
    again = type(usage)(services.database)
    assert again.used(token_id(ops), now=later) and again.last_used(token_id(ops)) == later
    assert not again.used(token_id(ops), now=later + timedelta(seconds=5))


# ----------------------------------------------------------------- deactivation


def test_deactivating_an_agent_routes_its_open_conversations_again_once(
    services: Services, make_services: Callable[..., Services]
) -> None:
    desk = Desk(services, alpha=4, beta=0, gamma=0)  # group A, round robin: ann, bob, ann, bob
    app = services.app
    ann, bob = desk.agents["ann"], desk.agents["bob"]
    settle(services, app.update_agent(bob, capacity=3).position)
    laptop = create(services, name="ann's laptop", role="AGENT", agentId=str(ann))
    held = {r["id"] for r in services.database.query("SELECT id FROM rm_conversations WHERE assignee_id = ?",
                                                     (str(ann),))}
    assert len(held) == 2

    with following(services):
        done = run(services, DEACTIVATE, id=str(ann))["deactivateAgent"]
    assert done == {"agent": {"name": "ann", "active": False, "activeConversations": 0}, "userErrors": []}
    settle(services)
    rows = {r["id"]: r for r in services.database.query("SELECT * FROM rm_conversations")}
    assert all(r["assignee_id"] != str(ann) for r in rows.values())
    moved = sorted((rows[c]["status"], rows[c]["assignee_id"]) for c in held)
    assert moved == [("OPEN", str(bob)), ("QUEUED", None)]  # bob reached his capacity of 3
    assert {(r["status"], r["assignee_id"]) for c, r in rows.items() if c not in held} == {("OPEN", str(bob))}
    # still listed, inactive; its token refused; its figures gone
    agents = {a["name"]: a["active"] for a in run(services, "{ agents { name active } }")["agents"]}
    assert agents == {"ann": False, "bob": True, "cid": True, "dee": True}
    assert who(services, laptop["token"]) is None
    assert listed(services)["ann's laptop"]["revokedAt"] is not None
    workloads = run(services, "{ agentWorkloads { agent { name } activeConversations } }")["agentWorkloads"]
    assert {w["agent"]["name"]: w["activeConversations"] for w in workloads}["ann"] == 0
    # deactivating again changes nothing; the agent is never picked again
    with following(services):
        assert run(services, DEACTIVATE, id=str(ann))["deactivateAgent"]["userErrors"] == []
    settle(services, app.update_agent(bob, capacity=None).position)
    assert {r["status"] for r in services.database.query("SELECT status FROM rm_conversations")} == {"OPEN"}

    # each decision once, at the deactivation's position; a replay of the log re-derives them all
    recorded, replayed, _ = replay(services)
    assert recorded == replayed
    deactivated_at = max(n.id for n in app.recorder.select_notifications(1, 100_000)
                         if n.topic == "mailroom:Agent.Deactivated")
    again = [k for k in recorded if k[2] == deactivated_at]  # (conversation, kind, decided_at, ...)
    assert sorted(k[1] for k in again) == ["assigned", "queued"] and {k[0] for k in again} == {
        str(UUID(c)) for c in held}
    # a restarted process rebuilds the same state from the log (and its snapshots)
    restarted = make_services()
    assert json.dumps(restarted.assigner.consumer.current().snapshot(), sort_keys=True) == json.dumps(
        services.assigner.consumer.current().snapshot(), sort_keys=True)
    assert restarted.assigner.consumer.current().state.agents[ann].deactivated
