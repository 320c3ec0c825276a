"""Properties of the assignment strategies over random teams, orders and cursors."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.strategies import AgentFigures, Decision, decide, eligible
from domain.values import AgentStatus, AssignmentStrategy

S = AssignmentStrategy
OWNERS = [S.ACCOUNT_OWNER, S.CONTACT_OWNER]
PLAIN = [S.LOAD_BALANCED, S.ROUND_ROBIN, S.IDLE_FIRST]
BASE = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
STRANGER = UUID(int=999)
STATUSES = [AgentStatus.ONLINE] * 4 + [AgentStatus.AWAY, AgentStatus.OFFLINE]  # mostly someone to choose
FAST = settings(max_examples=200, derandomize=True, deadline=None, database=None)


@dataclass(frozen=True)
class Case:
    order: list[UUID]
    figures: dict[UUID, AgentFigures]
    cursor: UUID | None
    owner: UUID | None
    last: UUID | None
    fallback: AssignmentStrategy

    def decide(self, strategy: AssignmentStrategy) -> Decision:
        return decide(strategy, self.fallback, self.order, self.figures, self.cursor, self.owner, self.last)

    def pool(self) -> list[AgentFigures]:
        """Eligible members, computed here independently of the module under test."""
        found = [self.figures[a] for a in self.order if a in self.figures]
        return [f for f in found if f.status is AgentStatus.ONLINE and (f.capacity is None or f.active < f.capacity)]


@st.composite
def agent(draw: st.DrawFn, number: int) -> AgentFigures:
    last = draw(st.none() | st.integers(0, 3).map(lambda h: BASE + timedelta(hours=h)))
    return AgentFigures(
        agent_id=UUID(int=number + 1),
        name=f"a{number}",
        status=draw(st.sampled_from(STATUSES)),
        capacity=draw(st.none() | st.integers(0, 6)),
        active=draw(st.integers(0, 4)),
        today=draw(st.integers(0, 4)),
        last_assigned_at=last,
    )


@st.composite
def cases(draw: st.DrawFn) -> Case:
    n = draw(st.integers(0, 7))
    agents = [draw(agent(i)) for i in range(n)]
    figures = {a.agent_id: a for a in agents}
    # The rule's members: any subset, any order, possibly someone without figures.
    pool = [a.agent_id for a in agents] + [UUID(int=500)]
    left = draw(st.sets(st.sampled_from(pool), max_size=2))
    order = [member for member in draw(st.permutations(pool)) if member not in left]
    # Mostly a member of the rule's groups; sometimes nobody, a stranger, or a non-member with figures.
    someone = st.sampled_from([*order, *order, *order, None, STRANGER, *pool])
    return Case(order, figures, draw(someone), draw(someone), draw(someone), draw(st.sampled_from(PLAIN)))


@FAST
@given(cases())
def test_eligible_is_online_below_capacity_in_order(case: Case) -> None:
    assert eligible(case.order, case.figures) == case.pool()


@FAST
@given(cases(), st.sampled_from(list(S)))
def test_choice_is_eligible_member_or_none_when_nobody_is(case: Case, strategy: AssignmentStrategy) -> None:
    decision = case.decide(strategy)
    pool = case.pool()
    if decision.agent_id is None:
        assert pool == []
        assert decision.strategy is strategy
        assert decision.reason.startswith("no eligible agent: ") and decision.reason.endswith(" -> queued")
    else:
        assert decision.agent_id in case.order
        assert decision.agent_id in [f.agent_id for f in pool]
        assert decision.strategy in (strategy, case.fallback)
        assert case.figures[decision.agent_id].name in decision.reason


@FAST
@given(cases())
def test_load_balanced_picks_the_least_loaded_then_follows_the_tie_chain(case: Case) -> None:
    decision = case.decide(S.LOAD_BALANCED)
    if decision.agent_id is None:
        return
    chosen = case.figures[decision.agent_id]
    assert all(chosen.active <= f.active for f in case.pool())

    def chain(f: AgentFigures) -> tuple[int, int, int, datetime]:
        last = f.last_assigned_at
        return (f.active, f.today, last is not None, last or BASE)

    assert chain(chosen) == min(chain(f) for f in case.pool())


@FAST
@given(cases())
def test_idle_first_picks_the_least_busy_today_then_least_active(case: Case) -> None:
    decision = case.decide(S.IDLE_FIRST)
    if decision.agent_id is None:
        return
    chosen = case.figures[decision.agent_id]
    assert all(chosen.today <= f.today for f in case.pool())
    assert (chosen.today, chosen.active) == min((f.today, f.active) for f in case.pool())


@FAST
@given(st.integers(1, 7), st.data())
def test_round_robin_fed_its_own_choices_cycles_through_order(n: int, data: st.DataObject) -> None:
    ids = [UUID(int=i + 1) for i in range(n)]
    order = data.draw(st.permutations(ids))
    figures = {i: AgentFigures(i, f"a{i.int}", AgentStatus.ONLINE, None, 0, 0, None) for i in ids}
    cursor = data.draw(st.none() | st.sampled_from(order))
    start = 0 if cursor is None else order.index(cursor) + 1
    for step in range(2 * n + 1):
        decision = decide(S.ROUND_ROBIN, S.LOAD_BALANCED, order, figures, cursor)
        assert decision.agent_id == order[(start + step) % n]
        cursor = decision.agent_id


@FAST
@given(cases(), st.sampled_from(list(S)))
def test_decide_is_deterministic(case: Case, strategy: AssignmentStrategy) -> None:
    shuffled = dict(reversed(case.figures.items()))  # the mapping's own order plays no part
    again = Case(list(case.order), shuffled, case.cursor, case.owner, case.last, case.fallback)
    assert case.decide(strategy) == case.decide(strategy) == again.decide(strategy)


@FAST
@given(cases(), st.sampled_from(OWNERS))
def test_owner_strategies_prefer_the_owner_then_the_last_handler(case: Case, strategy: AssignmentStrategy) -> None:
    decision = case.decide(strategy)
    pool = [f.agent_id for f in case.pool()]
    if case.owner in pool:
        assert decision == Decision(case.owner, strategy, decision.reason)
    elif case.last in pool:
        assert decision == Decision(case.last, strategy, decision.reason)
    elif pool:
        assert decision.strategy is case.fallback
        assert decision.agent_id == case.decide(case.fallback).agent_id
