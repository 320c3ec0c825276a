"""Assignment strategies (DESIGN 4.3-4.4): eligibility, each strategy and tie-break, owner fallbacks, reasons."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

import pytest

from domain.strategies import AgentFigures, Decision, candidates, decide, eligible
from domain.values import AgentStatus, AssignmentStrategy

S = AssignmentStrategy
ONLINE, AWAY, OFFLINE = AgentStatus.ONLINE, AgentStatus.AWAY, AgentStatus.OFFLINE
NAMES = ["ann", "bob", "carl", "dora", "eve"]
ID = {name: UUID(int=i + 1) for i, name in enumerate(NAMES)}
NAME = {v: k for k, v in ID.items()}
STRANGER = UUID(int=99)
EARLY = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
LATE = datetime(2024, 5, 1, 15, 30, tzinfo=UTC)


def fig(
    name: str,
    active: int = 0,
    today: int = 0,
    last: datetime | None = None,
    status: AgentStatus = ONLINE,
    cap: int | None = None,
) -> AgentFigures:
    return AgentFigures(ID[name], name, status, cap, active, today, last)


def team(*agents: AgentFigures) -> dict[UUID, AgentFigures]:
    return {a.agent_id: a for a in agents}


def run(
    strategy: AssignmentStrategy,
    agents: list[AgentFigures],
    cursor: str | None = None,
    order: list[str] | None = None,
    fallback: AssignmentStrategy = S.LOAD_BALANCED,
    owner: str | None = None,
    last: str | None = None,
) -> Decision:
    ids = [ID[n] for n in order] if order is not None else [a.agent_id for a in agents]
    return decide(
        strategy,
        fallback,
        ids,
        team(*agents),
        ID.get(cursor) if cursor else None,
        owner_id=ID.get(owner, STRANGER) if owner else None,
        last_handler_id=ID.get(last, STRANGER) if last else None,
    )


def chosen(decision: Decision) -> str | None:
    return NAME[decision.agent_id] if decision.agent_id else None


# --- candidates and eligibility -----------------------------------------------------------


@pytest.mark.parametrize(
    ("groups", "expected"),
    [
        pytest.param([], [], id="no-groups"),
        pytest.param([[], []], [], id="empty-groups"),
        pytest.param([["bob", "ann"]], ["bob", "ann"], id="joining-order"),
        pytest.param([["bob", "ann"], ["carl", "ann", "dora"]], ["bob", "ann", "carl", "dora"], id="dedup-first-pos"),
        pytest.param([["carl"], ["bob", "carl"], ["ann", "bob"]], ["carl", "bob", "ann"], id="group-order"),
        pytest.param([["ann", "ann"]], ["ann"], id="dup-in-one-group"),
    ],
)
def test_candidates(groups: list[list[str]], expected: list[str]) -> None:
    assert candidates([[ID[n] for n in g] for g in groups]) == [ID[n] for n in expected]


@pytest.mark.parametrize(
    ("agent", "ok"),
    [
        pytest.param(fig("ann"), True, id="online-no-limit"),
        pytest.param(fig("ann", active=500), True, id="capacity-none-any-load"),
        pytest.param(fig("ann", cap=0), False, id="capacity-0"),
        pytest.param(fig("ann", active=2, cap=3), True, id="below-capacity"),
        pytest.param(fig("ann", active=3, cap=3), False, id="at-capacity"),
        pytest.param(fig("ann", active=4, cap=3), False, id="over-capacity"),
        pytest.param(fig("ann", status=AWAY), False, id="away"),
        pytest.param(fig("ann", status=OFFLINE), False, id="offline"),
    ],
)
def test_eligibility(agent: AgentFigures, ok: bool) -> None:
    assert eligible([agent.agent_id], team(agent)) == ([agent] if ok else [])


def test_eligible_follows_order_skips_missing_and_duplicates() -> None:
    figures = team(fig("ann"), fig("bob", status=AWAY), fig("carl"), fig("dora"))
    order = [ID["dora"], ID["bob"], STRANGER, ID["ann"], ID["dora"]]
    assert [f.name for f in eligible(order, figures)] == ["dora", "ann"]


# --- ROUND_ROBIN --------------------------------------------------------------------------

THREE = [fig("ann"), fig("bob"), fig("carl")]


@pytest.mark.parametrize(
    ("agents", "cursor", "expected"),
    [
        pytest.param(THREE, None, "ann", id="no-cursor-first"),
        pytest.param([fig("ann", status=AWAY), fig("bob"), fig("carl")], None, "bob", id="no-cursor-first-eligible"),
        pytest.param(THREE, "ann", "bob", id="after-cursor"),
        pytest.param(THREE, "bob", "carl", id="after-cursor-2"),
        pytest.param(THREE, "carl", "ann", id="wrap-around"),
        pytest.param([fig("ann"), fig("bob", status=AWAY), fig("carl")], "ann", "carl", id="skip-ineligible"),
        pytest.param([fig("ann"), fig("bob", status=AWAY), fig("carl", cap=0)], "bob", "ann", id="skip-and-wrap"),
        pytest.param([fig("ann"), fig("bob", status=OFFLINE), fig("carl")], "bob", "carl", id="cursor-ineligible"),
        pytest.param([fig("ann"), fig("bob"), fig("carl", status=AWAY)], "carl", "ann", id="cursor-inelig-wrap"),
        pytest.param([fig("ann", status=AWAY), fig("bob"), fig("carl", cap=0)], "bob", "bob", id="only-cursor-left"),
        pytest.param(THREE, "dora", "ann", id="cursor-not-in-order"),
    ],
)
def test_round_robin(agents: list[AgentFigures], cursor: str | None, expected: str) -> None:
    decision = run(S.ROUND_ROBIN, agents, cursor)
    assert (chosen(decision), decision.strategy) == (expected, S.ROUND_ROBIN)


def test_round_robin_cursor_only_in_figures_is_not_a_member() -> None:
    decision = run(S.ROUND_ROBIN, [*THREE, fig("dora")], "dora", order=["ann", "bob", "carl"])
    assert decision.reason == "ROUND_ROBIN: cursor dora not a member: ann bob carl -> ann"


# --- LOAD_BALANCED and IDLE_FIRST: the main figure and each tie-break step ----------------


@pytest.mark.parametrize(
    ("agents", "cursor", "expected"),
    [
        pytest.param([fig("ann", active=3), fig("bob", active=1), fig("carl", active=2)], None, "bob", id="fewest"),
        pytest.param(
            [fig("ann", active=0, today=9, last=LATE), fig("bob", active=1)], None, "ann", id="active-beats-today"
        ),
        pytest.param([fig("ann", active=1, today=4), fig("bob", active=1, today=2)], None, "bob", id="tie-today"),
        pytest.param(
            [fig("ann", active=1, today=2, last=EARLY), fig("bob", active=1, today=2)], None, "bob", id="tie-never"
        ),
        pytest.param(
            [fig("ann", active=1, today=2, last=LATE), fig("bob", active=1, today=2, last=EARLY)],
            None,
            "bob",
            id="tie-earliest-last",
        ),
        pytest.param([fig("ann", active=1), fig("bob", active=1), fig("carl", active=1)], None, "ann", id="rr-none"),
        pytest.param([fig("ann", active=1), fig("bob", active=1), fig("carl", active=1)], "ann", "bob", id="rr"),
        pytest.param([fig("ann", active=1), fig("bob", active=1), fig("carl", active=5)], "bob", "ann", id="rr-wrap"),
        pytest.param(
            [fig("ann", last=EARLY), fig("bob", last=EARLY), fig("carl", last=LATE)], "ann", "bob", id="rr-same-last"
        ),
        pytest.param([fig("ann", active=0, status=AWAY), fig("bob", active=2)], None, "bob", id="away-skipped"),
        pytest.param([fig("ann", active=2, cap=2), fig("bob", active=3)], None, "bob", id="full-skipped"),
    ],
)
def test_load_balanced(agents: list[AgentFigures], cursor: str | None, expected: str) -> None:
    decision = run(S.LOAD_BALANCED, agents, cursor)
    assert (chosen(decision), decision.strategy) == (expected, S.LOAD_BALANCED)


@pytest.mark.parametrize(
    ("agents", "cursor", "expected"),
    [
        pytest.param([fig("ann", today=3), fig("bob", today=1), fig("carl", today=2)], None, "bob", id="fewest-today"),
        pytest.param([fig("ann", today=0, active=9), fig("bob", today=1)], None, "ann", id="today-beats-active"),
        pytest.param([fig("ann", today=1, active=2), fig("bob", today=1, active=1)], None, "bob", id="tie-active"),
        pytest.param([fig("ann", today=1), fig("bob", today=1)], None, "ann", id="rr-no-cursor"),
        pytest.param([fig("ann", today=1), fig("bob", today=1)], "ann", "bob", id="rr-after-cursor"),
        pytest.param([fig("ann"), fig("bob"), fig("carl", today=1)], "bob", "ann", id="rr-wrap"),
        # DESIGN's IDLE_FIRST chain has no last-assignment step: round-robin decides, not "never assigned".
        pytest.param([fig("ann", last=EARLY), fig("bob")], None, "ann", id="no-last-assigned-step"),
        pytest.param([fig("ann", last=LATE), fig("bob", last=EARLY)], None, "ann", id="no-last-assigned-step-2"),
        pytest.param([fig("ann", today=0, status=OFFLINE), fig("bob", today=5)], None, "bob", id="offline-skipped"),
    ],
)
def test_idle_first(agents: list[AgentFigures], cursor: str | None, expected: str) -> None:
    decision = run(S.IDLE_FIRST, agents, cursor)
    assert (chosen(decision), decision.strategy) == (expected, S.IDLE_FIRST)


# --- owner strategies ---------------------------------------------------------------------

# Each fallback picks someone else here: LOAD_BALANCED bob, IDLE_FIRST carl, ROUND_ROBIN (no cursor) ann.
OWNER_TEAM = [fig("ann", active=5, today=1), fig("bob", active=1, today=3), fig("carl", active=2, today=0)]
OWNER_TEAM_BOB_AWAY = [fig("ann", active=5), fig("bob", status=AWAY), fig("carl", active=2)]


@pytest.mark.parametrize("strategy", [S.ACCOUNT_OWNER, S.CONTACT_OWNER])
@pytest.mark.parametrize(
    ("agents", "owner", "last", "fallback", "expected", "by"),
    [
        pytest.param(OWNER_TEAM, "ann", "bob", S.LOAD_BALANCED, "ann", None, id="owner-even-if-busiest"),
        pytest.param(OWNER_TEAM_BOB_AWAY, "bob", "ann", S.LOAD_BALANCED, "ann", None, id="owner-away->last"),
        pytest.param(OWNER_TEAM, None, "ann", S.LOAD_BALANCED, "ann", None, id="no-owner->last"),
        pytest.param(OWNER_TEAM, "stranger", "carl", S.LOAD_BALANCED, "carl", None, id="owner-not-member->last"),
        pytest.param(OWNER_TEAM, "dora", "carl", S.LOAD_BALANCED, "carl", None, id="owner-no-figures->last"),
        pytest.param(OWNER_TEAM_BOB_AWAY, "bob", "bob", S.LOAD_BALANCED, "carl", S.LOAD_BALANCED, id="both-away-lb"),
        pytest.param(OWNER_TEAM, None, None, S.LOAD_BALANCED, "bob", S.LOAD_BALANCED, id="none->lb"),
        pytest.param(OWNER_TEAM, None, None, S.ROUND_ROBIN, "ann", S.ROUND_ROBIN, id="none->rr"),
        pytest.param(OWNER_TEAM, None, "stranger", S.IDLE_FIRST, "carl", S.IDLE_FIRST, id="none->idle"),
        pytest.param(OWNER_TEAM_BOB_AWAY, None, "bob", S.ROUND_ROBIN, "ann", S.ROUND_ROBIN, id="last-away->rr"),
    ],
)
def test_owner_steps(
    strategy: AssignmentStrategy,
    agents: list[AgentFigures],
    owner: str | None,
    last: str | None,
    fallback: AssignmentStrategy,
    expected: str,
    by: AssignmentStrategy | None,
) -> None:
    order = ["ann", "bob", "carl", "dora"] if owner == "dora" else None
    decision = run(strategy, agents, fallback=fallback, owner=owner, last=last, order=order)
    assert (chosen(decision), decision.strategy) == (expected, by or strategy)
    assert decision.reason.startswith(f"{strategy.value}: ")


def test_owner_fallback_round_robin_uses_the_cursor() -> None:
    decision = run(S.CONTACT_OWNER, OWNER_TEAM, cursor="ann", fallback=S.ROUND_ROBIN)
    assert (chosen(decision), decision.strategy) == ("bob", S.ROUND_ROBIN)


@pytest.mark.parametrize("fallback", [S.ACCOUNT_OWNER, S.CONTACT_OWNER])
def test_owner_fallback_cannot_be_an_owner_strategy(fallback: AssignmentStrategy) -> None:
    with pytest.raises(ValueError, match="cannot be"):
        run(S.ACCOUNT_OWNER, OWNER_TEAM, fallback=fallback)


# --- queueing -----------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", list(S))
def test_no_eligible_agent_queues_under_the_rules_strategy(strategy: AssignmentStrategy) -> None:
    agents = [fig("ann", status=AWAY), fig("bob", active=3, cap=3)]
    decision = run(strategy, agents, cursor="ann", owner="ann", last="bob")
    assert decision == Decision(None, strategy, "no eligible agent: ann AWAY, bob at capacity 3/3 -> queued")


@pytest.mark.parametrize(
    ("agents", "order", "reason"),
    [
        pytest.param([], [], "no eligible agent: the rule's groups have no members -> queued", id="no-members"),
        pytest.param(
            [fig("ann", status=OFFLINE, active=2, cap=1), fig("bob", cap=0)],
            ["ann", "bob", "carl"],
            "no eligible agent: ann OFFLINE and at capacity 2/1, bob at capacity 0/0, "
            f"{ID['carl']} no figures -> queued",
            id="every-reason",
        ),
    ],
)
def test_queue_reasons(agents: list[AgentFigures], order: list[str], reason: str) -> None:
    assert run(S.LOAD_BALANCED, agents, order=order) == Decision(None, S.LOAD_BALANCED, reason)


# --- exact reasons ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("strategy", "agents", "cursor", "owner", "last", "reason"),
    [
        pytest.param(
            S.LOAD_BALANCED,
            [fig("ann", active=1), fig("bob", active=3)],
            None,
            None,
            None,
            "LOAD_BALANCED: ann=1 bob=3 -> ann",
            id="lb",
        ),
        pytest.param(
            S.LOAD_BALANCED,
            [fig("ann", active=1, today=2), fig("bob", active=1), fig("carl", active=3, status=AWAY)],
            None,
            None,
            None,
            "LOAD_BALANCED: ann=1 bob=1; tied on today: ann=2 bob=0 -> bob",
            id="lb-today",
        ),
        pytest.param(
            S.LOAD_BALANCED,
            [fig("ann", active=1, last=LATE), fig("bob", active=1, last=EARLY), fig("carl", active=1)],
            "carl",
            None,
            None,
            "LOAD_BALANCED: ann=1 bob=1 carl=1; tied on today: ann=0 bob=0 carl=0; tied on last assigned: "
            "ann=2024-05-01T15:30:00+00:00 bob=2024-05-01T09:00:00+00:00 carl=never -> carl",
            id="lb-last",
        ),
        pytest.param(
            S.LOAD_BALANCED,
            [fig("ann", last=EARLY), fig("bob", last=EARLY), fig("carl", active=4)],
            "ann",
            None,
            None,
            "LOAD_BALANCED: ann=0 bob=0 carl=4; tied on today: ann=0 bob=0; tied on last assigned: "
            "ann=2024-05-01T09:00:00+00:00 bob=2024-05-01T09:00:00+00:00; tied, round-robin after ann: bob ann -> bob",
            id="lb-rr",
        ),
        pytest.param(
            S.IDLE_FIRST,
            [fig("ann", today=2), fig("bob", today=0)],
            None,
            None,
            None,
            "IDLE_FIRST: ann=2 bob=0 -> bob",
            id="idle",
        ),
        pytest.param(
            S.IDLE_FIRST,
            [fig("ann", active=1), fig("bob", active=1), fig("carl", active=1)],
            "carl",
            None,
            None,
            "IDLE_FIRST: ann=0 bob=0 carl=0; tied on active: ann=1 bob=1 carl=1; "
            "tied, round-robin after carl: ann bob carl -> ann",
            id="idle-rr",
        ),
        pytest.param(
            S.ROUND_ROBIN,
            [fig("ann"), fig("bob", status=AWAY), fig("carl")],
            "ann",
            None,
            None,
            "ROUND_ROBIN: after ann: carl ann -> carl",
            id="rr",
        ),
        pytest.param(S.ROUND_ROBIN, THREE, None, None, None, "ROUND_ROBIN: no cursor: ann bob carl -> ann", id="rr-0"),
        pytest.param(
            S.CONTACT_OWNER,
            [fig("ann"), fig("bob", status=AWAY)],
            None,
            "ann",
            None,
            "CONTACT_OWNER: owner ann eligible -> ann",
            id="owner",
        ),
        pytest.param(
            S.CONTACT_OWNER,
            [fig("ann"), fig("bob", status=AWAY)],
            None,
            "bob",
            "ann",
            "CONTACT_OWNER: owner bob not eligible (AWAY); last handler ann eligible -> ann",
            id="owner-last",
        ),
        pytest.param(
            S.ACCOUNT_OWNER,
            [fig("ann", active=2), fig("bob", active=2, cap=2), fig("carl", active=1)],
            None,
            "stranger",
            "bob",
            f"ACCOUNT_OWNER: owner {STRANGER} not eligible (not a member of the rule's groups); "
            "last handler bob not eligible (at capacity 2/2) -> LOAD_BALANCED: ann=2 carl=1 -> carl",
            id="owner-fallback",
        ),
        pytest.param(
            S.ACCOUNT_OWNER,
            [fig("ann"), fig("bob")],
            None,
            None,
            None,
            "ACCOUNT_OWNER: no owner; no last handler -> LOAD_BALANCED: ann=0 bob=0; tied on today: ann=0 bob=0; "
            "tied on last assigned: ann=never bob=never; tied, round-robin no cursor: ann bob -> ann",
            id="owner-none",
        ),
    ],
)
def test_exact_reasons(
    strategy: AssignmentStrategy,
    agents: list[AgentFigures],
    cursor: str | None,
    owner: str | None,
    last: str | None,
    reason: str,
) -> None:
    assert run(strategy, agents, cursor, owner=owner, last=last).reason == reason


@pytest.mark.parametrize("strategy", list(S))
def test_same_inputs_same_decision(strategy: AssignmentStrategy) -> None:
    def agents() -> list[AgentFigures]:
        return [fig("ann", active=1, last=EARLY), fig("bob", active=1, last=EARLY), fig("carl", status=AWAY)]

    assert run(strategy, agents(), "carl", owner="carl", last="dora") == run(
        strategy, agents(), "carl", owner="carl", last="dora"
    )
