"""Properties of the assigner fold (domain/assigner.py) over random histories of one routing rule
and a few agents: arrivals, closes, reopens, hand assignments, status, capacity, membership and
rule changes. No I/O: the events are instances of the real event classes (the assigner dispatches
by class), carrying just what the handlers read.

After every event, checked against an independent model of the figures as they were just before
each decision: every assignee was eligible (ONLINE, below capacity, a member of the rule's
groups); LOAD_BALANCED / IDLE_FIRST / ROUND_ROBIN chose by their rules and tie-breaks; a queue
waits only while nobody is eligible, oldest first; no conversation is both queued and open;
each agent's active count is its open conversations; only live (not closed) conversations are
kept. At the end, rebuilding (a fresh assigner, `replaying`, the recorded decisions applied at
their `decided_at`) gives the same state, and deciding again over the log without the recorded
decisions gives the same decisions. A snapshot taken at any point (through JSON, restored),
while deciding or while rebuilding, carries on exactly like the fold that never stopped. After
every conversation is closed, nothing per conversation is left in the state.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest
from eventsourcing.utils import resolve_topic
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.assigner import SNAPSHOT_VERSION, Arrived, Assigner, Outcome
from domain.conditions import MessageFacts
from domain.routing import RuleSpec
from domain.values import (
    AgentStatus,
    AssignmentStrategy,
    Condition,
    ConditionField,
    ConditionMatch,
    ConditionOperator,
)

S = AssignmentStrategy
ZONE = ZoneInfo("America/New_York")  # local days differ from UTC days; a DST change on 2024-03-10
START = datetime(2024, 3, 9, 20, 0, tzinfo=UTC)
MAILBOX = UUID(int=1)
RULE = UUID(int=2)
GROUPS = [UUID(int=10), UUID(int=11)]
AGENTS = [UUID(int=100 + i) for i in range(5)]  # the last is never in a group (hand assignments only)
CUSTOMERS = ["ann@customer.example", "bob@customer.example", "cat@other.example"]
PLAIN = [S.LOAD_BALANCED, S.ROUND_ROBIN, S.IDLE_FIRST]
STATUSES = [AgentStatus.ONLINE, AgentStatus.ONLINE, AgentStatus.AWAY, AgentStatus.OFFLINE]
FAST = settings(max_examples=300, derandomize=True, deadline=None, database=None)


# ---------------------------------------------------------------------- events

_Event = Any  # an instance of a real event class, only some of its fields set


def make(topic: str, **attrs: Any) -> _Event:
    """An event of the class stored under `topic` with just `attrs` set: a handler that reads a
    field the test does not give fails with AttributeError (a test error)."""
    cls = resolve_topic(topic)
    unknown = set(attrs) - {f.name for f in fields(cls)}
    assert not unknown, f"{topic} has no {sorted(unknown)}"
    event = cls.__new__(cls)
    event.__dict__.update(attrs)
    return event


def decision_event(o: Outcome, at: datetime) -> _Event:
    """The event the worker records for a decision (read back by the assigner, and skipped)."""
    common = {"originator_id": o.conversation_id, "decided_at": o.decided_at, "timestamp": at}
    if o.kind == "routed":
        return make("mailroom:Conversation.Routed", rule_id=o.rule_id, group_ids=list(o.group_ids), **common)
    if o.kind == "unrouted":
        return make("mailroom:Conversation.LeftUnrouted", reason=o.reason, **common)
    if o.kind == "queued":
        return make("mailroom:Conversation.Queued", strategy=o.strategy, reason=o.reason, **common)
    return make("mailroom:Conversation.Assigned", agent_id=o.agent_id, previous_id=o.previous_id,
                strategy=o.strategy, reason=o.reason, decided_by="assigner", rule_id=o.rule_id, **common)


DECISION_TOPICS = {"mailroom:Conversation.Routed", "mailroom:Conversation.LeftUnrouted",
                   "mailroom:Conversation.Queued"}


def is_decision(e: _Event) -> bool:
    return e.TOPIC in DECISION_TOPICS or (
        e.TOPIC == "mailroom:Conversation.Assigned" and e.decided_by == "assigner")


class Facts:
    """The loader: each conversation's arrival, and the rules it was routed by (what the worker
    reads from the conversation's Routed events), as recorded so far."""

    def __init__(self) -> None:
        self.arrived: dict[UUID, Arrived] = {}
        self.routes: dict[UUID, list[tuple[int, UUID]]] = {}

    def record(self, outcomes: list[Outcome]) -> None:
        for o in outcomes:
            if o.kind == "routed" and o.rule_id is not None:
                self.routes.setdefault(o.conversation_id, []).append((o.decided_at, o.rule_id))

    def load(self, conversation_id: UUID) -> Arrived | None:
        arrived = self.arrived.get(conversation_id)
        if arrived is None:
            return None
        return replace(arrived, routes=tuple(self.routes.get(conversation_id, ())))


# ---------------------------------------------------------------------- the model


@dataclass
class Conv:
    customer: str
    status: str = "UNROUTED"
    assignee: UUID | None = None
    previous: UUID | None = None  # what the aggregate passes on reopen: the assignee when closed
    routed: bool = False  # ever routed by the rule (a reopen then checks its groups)


@dataclass
class Model:
    """What the figures are, derived independently of the code under test."""

    status: dict[UUID, AgentStatus] = field(default_factory=dict)
    capacity: dict[UUID, int | None] = field(default_factory=dict)
    members: dict[UUID, list[UUID]] = field(default_factory=dict)
    rule: RuleSpec | None = None
    cursor: UUID | None = None
    today: Counter[tuple[UUID, date]] = field(default_factory=Counter)
    last_at: dict[UUID, datetime] = field(default_factory=dict)
    convs: dict[UUID, Conv] = field(default_factory=dict)
    queue: list[UUID] = field(default_factory=list)

    def active(self, agent: UUID) -> int:
        return sum(1 for c in self.convs.values() if c.status == "OPEN" and c.assignee == agent)

    def order(self) -> list[UUID]:
        assert self.rule is not None
        return list(dict.fromkeys(m for g in self.rule.group_ids for m in self.members.get(g, [])))

    def eligible(self) -> list[UUID]:
        """Members of the rule's groups (rule group order, then join order), ONLINE, below capacity."""
        if self.rule is None:
            return []
        cap = self.capacity
        return [a for a in self.order() if self.status[a] is AgentStatus.ONLINE
                and (cap[a] is None or self.active(a) < cap[a])]  # type: ignore[operator]

    def available(self, agent: UUID) -> bool:
        """ONLINE and below capacity."""
        cap = self.capacity[agent]
        return self.status[agent] is AgentStatus.ONLINE and (cap is None or self.active(agent) < cap)

    def may_have_back(self, conv: Conv, agent: UUID) -> bool:
        """Whether a reopened conversation goes back to `agent`, its previous assignee: available,
        and a member of the rule's groups if the conversation was ever routed (DESIGN 4.5)."""
        return self.available(agent) and (not conv.routed or (self.rule is not None and agent in self.order()))

    def rank(self, agent: UUID) -> int:
        order = self.order()
        start = order.index(self.cursor) + 1 if self.cursor in order else 0
        return (order.index(agent) - start) % len(order)

    def expected(self, strategy: AssignmentStrategy, at: datetime) -> UUID:
        day = at.astimezone(ZONE).date()
        pool = self.eligible()

        def since(a: UUID) -> tuple[Any, ...]:
            return (0,) if a not in self.last_at else (1, self.last_at[a])

        if strategy is S.ROUND_ROBIN:
            return min(pool, key=self.rank)
        if strategy is S.LOAD_BALANCED:
            return min(pool, key=lambda a: (self.active(a), self.today[a, day], since(a), self.rank(a)))
        assert strategy is S.IDLE_FIRST
        return min(pool, key=lambda a: (self.today[a, day], self.active(a), self.rank(a)))

    def assign(self, conversation: UUID, agent: UUID, at: datetime, by_rule: bool) -> None:
        conv = self.convs[conversation]
        conv.status, conv.assignee = "OPEN", agent
        self.today[agent, at.astimezone(ZONE).date()] += 1
        self.last_at[agent] = at
        if by_rule:
            self.cursor = agent
        if conversation in self.queue:
            self.queue.remove(conversation)


# ---------------------------------------------------------------------- the run


class Run:
    def __init__(self, model: Model, facts: Facts) -> None:
        self.model = model
        self.facts = facts
        self.assigner = Assigner(ZONE, facts.load)
        self.log: list[tuple[int, _Event]] = []
        self.decisions: list[Outcome] = []
        self.at = START
        self.conversations = 0
        self.opening: UUID | None = None  # opened, its first message not taken in yet

    def tick(self, minutes: int) -> datetime:
        self.at += timedelta(minutes=minutes)
        return self.at

    def emit(self, event: _Event) -> None:
        """The event at the next position, the decisions it triggers checked against the model one
        by one (each sees the figures the earlier ones left), then recorded and read back."""
        position = len(self.log) + 1
        self.log.append((position, event))
        before_queue = list(self.model.queue)
        outcomes = self.assigner.observe(position, event)
        drained = []
        for outcome in outcomes:
            assert outcome.decided_at == position
            if outcome.kind == "assigned" and outcome.conversation_id in self.model.queue:
                drained.append(outcome.conversation_id)
            self.check(outcome, event)
        # Oldest first: what left the queue came from its front (a reopened one re-enters at the back).
        still = [c for c in before_queue if c in self.model.queue]
        assert all(before_queue.index(d) < before_queue.index(s) for d in drained for s in still if d in before_queue)
        self.decisions.extend(outcomes)
        self.facts.record(outcomes)
        for outcome in outcomes:
            recorded = decision_event(outcome, event.timestamp)
            self.log.append((len(self.log) + 1, recorded))
            assert self.assigner.observe(len(self.log), recorded) == []  # its own decisions: skipped
        self.invariants()

    def check(self, o: Outcome, trigger: _Event) -> None:
        m = self.model
        conv = m.convs[o.conversation_id]
        at = trigger.timestamp
        if o.kind == "unrouted":
            assert m.rule is None and conv.status == "UNROUTED"
        elif o.kind == "routed":
            assert m.rule is not None and o.rule_id == RULE and list(o.group_ids) == m.rule.group_ids
            conv.routed = True
        elif o.kind == "queued":
            assert m.rule is not None and m.eligible() == [], "queued while someone was eligible"
            assert o.strategy is m.rule.strategy
            conv.status, conv.assignee = "QUEUED", None
            if o.conversation_id not in m.queue:
                m.queue.append(o.conversation_id)
        else:
            assert o.kind == "assigned" and o.agent_id is not None
            eligible = m.eligible()
            assert o.previous_id == (conv.assignee if conv.status == "OPEN" else None)
            if o.strategy is None:  # a reopened conversation back to its previous assignee
                assert trigger.TOPIC == "mailroom:Conversation.Reopened"
                assert o.agent_id == conv.previous and o.reason.startswith("reopened")
                assert m.may_have_back(conv, o.agent_id), f"{o.agent_id} may not have it back: {o.reason}"
            else:
                assert o.agent_id in eligible, f"{o.agent_id} not eligible ({eligible}): {o.reason}"
                assert m.rule is not None and o.strategy is m.rule.strategy and o.rule_id == RULE
                if trigger.TOPIC == "mailroom:Conversation.Reopened":
                    assert conv.previous is None or not m.may_have_back(conv, conv.previous), \
                        "reopened: the previous assignee who may have it back was passed over"
                day = at.astimezone(ZONE).date()
                if o.strategy is S.LOAD_BALANCED:  # never more active than another eligible agent
                    assert m.active(o.agent_id) == min(m.active(a) for a in eligible)
                if o.strategy is S.IDLE_FIRST:
                    assert m.today[o.agent_id, day] == min(m.today[a, day] for a in eligible)
                if o.strategy is S.ROUND_ROBIN:  # the first eligible member after the cursor, in order
                    order = m.order()
                    start = order.index(m.cursor) + 1 if m.cursor in order else 0
                    rotation = order[start:] + order[:start]
                    assert o.agent_id == next(a for a in rotation if a in eligible)
                assert o.agent_id == m.expected(o.strategy, at), o.reason
            m.assign(o.conversation_id, o.agent_id, at, by_rule=o.rule_id is not None)

    def invariants(self) -> None:
        m, s = self.model, self.assigner.state
        agents = list(m.status)  # those created so far
        assert {a: s.agents[a].active for a in agents} == {a: m.active(a) for a in agents}
        assert s.assignee == {c: v.assignee for c, v in m.convs.items() if v.status == "OPEN"}
        assert list(s.queued) == m.queue
        assert not set(s.queued) & set(s.assignee), "a conversation both queued and open"
        assert all(m.convs[c].status == "QUEUED" for c in m.queue)
        assert s.cursor.get(RULE) == m.cursor
        figures = self.assigner.figures(self.at)
        day = self.at.astimezone(ZONE).date()
        assert {a: figures[a].today for a in agents} == {a: m.today[a, day] for a in agents}
        if m.rule is not None:
            assert not m.queue or not m.eligible(), "a queued conversation waits while an agent is eligible"
            assert not s.unrouted and all(c.status != "UNROUTED" for c in m.convs.values())
        # Only live conversations are kept; the unrouted index holds exactly the unrouted ones.
        live = {c for c, v in m.convs.items() if v.status != "CLOSED"}
        assert set(s.conversations) == live | ({self.opening} if self.opening else set())
        assert {c for bucket in s.unrouted_in.values() for c in bucket} == set(s.unrouted)
        assert all(s.unrouted_in.values()), "an empty bucket left in the unrouted index"
        assert_queue_index(self.assigner)

    # ------------------------------------------------------------------ the operations

    def arrive(self, customer: int, minutes: int) -> None:
        at = self.tick(minutes)
        self.conversations += 1
        cid = UUID(int=10_000 + self.conversations)
        email = CUSTOMERS[customer % len(CUSTOMERS)]
        self.facts.arrived[cid] = Arrived(MAILBOX, email, MessageFacts(email, ["support@example.com"], [], "Help",
                                                                       "", {}, False))
        self.opening = cid
        self.emit(make("mailroom:Conversation.Opened", originator_id=cid, originator_version=1,
                       mailbox_id=MAILBOX, customer_email=email, timestamp=at))
        self.opening = None
        self.model.convs[cid] = Conv(email)  # routed by its first message, next
        self.emit(make("mailroom:Conversation.MessageReceived", originator_id=cid, originator_version=2,
                       timestamp=at))

    def follow_up(self, pick: int, minutes: int) -> None:
        """A later message in a conversation that is not closed: it stays where it is."""
        live = [c for c, v in self.model.convs.items() if v.status != "CLOSED"]
        if live:
            cid = live[pick % len(live)]
            version = 3 + pick % 5
            self.emit(make("mailroom:Conversation.MessageReceived", originator_id=cid,
                           originator_version=version, timestamp=self.tick(minutes)))

    def close(self, pick: int, minutes: int) -> None:
        live = [c for c, v in self.model.convs.items() if v.status != "CLOSED"]
        if not live:
            return
        self.close_one(live[pick % len(live)], minutes)

    def close_one(self, cid: UUID, minutes: int) -> None:
        conv = self.model.convs[cid]
        conv.previous, conv.status, conv.assignee = conv.assignee, "CLOSED", None
        if cid in self.model.queue:
            self.model.queue.remove(cid)
        self.emit(make("mailroom:Conversation.Closed", originator_id=cid, assignee_id=conv.previous,
                       timestamp=self.tick(minutes)))

    def reopen(self, pick: int, minutes: int) -> None:
        closed = [c for c, v in self.model.convs.items() if v.status == "CLOSED"]
        if not closed:
            return
        cid = closed[pick % len(closed)]
        conv = self.model.convs[cid]
        conv.status = "UNROUTED" if self.model.rule is None else "QUEUED"
        self.emit(make("mailroom:Conversation.Reopened", originator_id=cid, previous_assignee_id=conv.previous,
                       timestamp=self.tick(minutes)))

    def hand_assign(self, pick: int, agent: int, minutes: int) -> None:
        live = [c for c, v in self.model.convs.items() if v.status != "CLOSED"]
        if not live:
            return
        cid = live[pick % len(live)]
        agent_id = AGENTS[agent % len(AGENTS)]
        conv = self.model.convs[cid]
        if conv.assignee == agent_id:
            return  # the command records nothing
        at = self.tick(minutes)
        previous = conv.assignee
        self.model.assign(cid, agent_id, at, by_rule=False)
        self.emit(make("mailroom:Conversation.Assigned", originator_id=cid, agent_id=agent_id,
                       previous_id=previous, strategy=None, reason="by hand", decided_by="admin",
                       decided_at=None, rule_id=None, timestamp=at))

    def set_status(self, agent: int, status: AgentStatus, minutes: int) -> None:
        agent_id = AGENTS[agent % len(AGENTS)]
        if self.model.status[agent_id] is not status:
            self.model.status[agent_id] = status
            self.emit(make("mailroom:Agent.StatusChanged", originator_id=agent_id, status=status,
                           timestamp=self.tick(minutes)))

    def set_capacity(self, agent: int, capacity: int | None, minutes: int) -> None:
        agent_id = AGENTS[agent % len(AGENTS)]
        if self.model.capacity[agent_id] != capacity:
            self.model.capacity[agent_id] = capacity
            self.emit(make("mailroom:Agent.CapacityChanged", originator_id=agent_id, capacity=capacity,
                           timestamp=self.tick(minutes)))

    def join(self, group: int, agent: int, minutes: int) -> None:
        group_id, agent_id = GROUPS[group % 2], AGENTS[agent % 4]
        if agent_id not in self.model.members[group_id]:
            self.model.members[group_id].append(agent_id)
            self.emit(make("mailroom:AgentGroup.MembersAdded", originator_id=group_id, agent_ids=[agent_id],
                           timestamp=self.tick(minutes)))

    def leave(self, group: int, agent: int, minutes: int) -> None:
        group_id, agent_id = GROUPS[group % 2], AGENTS[agent % 4]
        if agent_id in self.model.members[group_id]:
            self.model.members[group_id].remove(agent_id)
            self.emit(make("mailroom:AgentGroup.MembersRemoved", originator_id=group_id, agent_ids=[agent_id],
                           timestamp=self.tick(minutes)))

    def write_rule(self, strategy: AssignmentStrategy, groups: tuple[int, ...], minutes: int) -> None:
        spec = RuleSpec(name="All", mailbox_ids=[MAILBOX], group_ids=[GROUPS[g] for g in groups], strategy=strategy)
        topic = "mailroom:RoutingRule.Created" if self.model.rule is None else "mailroom:RoutingRule.Changed"
        if spec == self.model.rule:
            return
        if self.model.rule is None:  # the waiting conversations are routed now
            for conv in self.model.convs.values():
                if conv.status == "UNROUTED":
                    conv.status = "QUEUED"  # until the decisions say otherwise
        self.model.rule = spec
        self.emit(make(topic, originator_id=RULE, spec=spec, timestamp=self.tick(minutes)))


# ---------------------------------------------------------------------- hypothesis


minutes = st.integers(0, 240)
operation = st.one_of(
    st.tuples(st.just("arrive"), st.integers(0, 5), minutes),
    st.tuples(st.just("arrive"), st.integers(0, 5), minutes),
    st.tuples(st.just("arrive"), st.integers(0, 5), minutes),
    st.tuples(st.just("close"), st.integers(0, 60), minutes),
    st.tuples(st.just("close"), st.integers(0, 60), minutes),
    st.tuples(st.just("reopen"), st.integers(0, 60), minutes),
    st.tuples(st.just("follow_up"), st.integers(0, 60), minutes),
    st.tuples(st.just("hand_assign"), st.integers(0, 60), st.integers(0, 4), minutes),
    st.tuples(st.just("set_status"), st.integers(0, 4), st.sampled_from(STATUSES), minutes),
    st.tuples(st.just("set_capacity"), st.integers(0, 4), st.none() | st.integers(0, 3), minutes),
    st.tuples(st.just("join"), st.integers(0, 1), st.integers(0, 3), minutes),
    st.tuples(st.just("leave"), st.integers(0, 1), st.integers(0, 3), minutes),
    st.tuples(st.just("write_rule"), st.sampled_from(PLAIN), st.sampled_from([(0,), (1,), (0, 1), (1, 0)]), minutes),
)


@dataclass(frozen=True)
class History:
    agents: list[tuple[AgentStatus, int | None]]  # status and capacity of each of AGENTS
    groups: list[list[int]]  # initial members of each of GROUPS (indexes into AGENTS)
    rule: tuple[AssignmentStrategy, tuple[int, ...]] | None  # None: the first arrivals wait for a rule
    operations: list[tuple[Any, ...]]

    def start(self) -> Run:
        model = Model()
        run = Run(model, Facts())
        for i, (agent_id, (status, capacity)) in enumerate(zip(AGENTS, self.agents, strict=True)):
            model.status[agent_id], model.capacity[agent_id] = status, capacity
            run.emit(make("mailroom:Agent.Created", originator_id=agent_id, name=f"a{i}", status=status,
                          capacity=capacity, timestamp=run.tick(1)))
        for group_id, members in zip(GROUPS, self.groups, strict=True):
            model.members[group_id] = [AGENTS[m] for m in members]
            run.emit(make("mailroom:AgentGroup.Created", originator_id=group_id, name="g",
                          member_ids=list(model.members[group_id]), timestamp=run.tick(1)))
        if self.rule is not None:
            run.write_rule(*self.rule, 1)
        return run


@st.composite
def histories(draw: st.DrawFn) -> History:
    agents = [(draw(st.sampled_from(STATUSES)), draw(st.none() | st.integers(0, 3))) for _ in AGENTS]
    groups = [draw(st.permutations(range(4)).flatmap(lambda p: st.integers(1, 4).map(lambda n: list(p[:n]))))
              for _ in GROUPS]
    rule: tuple[AssignmentStrategy, tuple[int, ...]] | None = draw(
        st.tuples(st.sampled_from(PLAIN), st.sampled_from([(0,), (0, 1)])))
    if draw(st.integers(0, 3)) == 0:
        rule = None
    return History(agents, groups, rule, draw(st.lists(operation, min_size=10, max_size=50)))


def state_of(assigner: Assigner) -> dict[str, Any]:
    """All of the state, in order (the snapshot's lists keep every map's order)."""
    return assigner.snapshot()


def key(o: Outcome) -> tuple[Any, ...]:
    return (o.conversation_id, o.kind, o.decided_at, o.agent_id, o.previous_id, o.strategy, o.reason, o.rule_id,
            o.group_ids)


def play(history: History) -> Run:
    run = history.start()
    for name, *args in history.operations:
        getattr(run, name)(*args)
    return run


def decided_by_position(decisions: list[Outcome]) -> dict[int, list[Outcome]]:
    decided: dict[int, list[Outcome]] = {}
    for outcome in decisions:
        decided.setdefault(outcome.decided_at, []).append(outcome)
    return decided


def assert_queue_index(assigner: Assigner) -> None:
    """The queue index holds each queued conversation under its group set, in queue order."""
    s = assigner.state
    order = {c: i for i, c in enumerate(s.queued)}
    assert sorted(c for bucket in s.queued_in.values() for c in bucket) == sorted(s.queued)
    for group_set, bucket in s.queued_in.items():
        assert bucket, "an empty bucket left in the queue index"
        assert all(assigner._group_set(s.queued[c]) == group_set for c in bucket)
        assert list(bucket) == sorted(bucket, key=order.__getitem__)
        assert list(bucket.values()) == sorted(bucket.values())


def through_json(assigner: Assigner) -> Assigner:
    """Snapshot, JSON text and back, restored: what a restarted worker starts from."""
    data = assigner.snapshot()
    assert_plain_json(data)
    text = json.dumps(data)
    restored = Assigner.restore(assigner.zone, assigner.load, json.loads(text))
    assert restored.snapshot() == data
    assert restored._rule_order == assigner._rule_order
    assert restored.state.unrouted_in == assigner.state.unrouted_in
    assert restored.state.domain_accounts == assigner.state.domain_accounts
    assert {k: list(b) for k, b in restored.state.queued_in.items()} == {
        k: list(b) for k, b in assigner.state.queued_in.items()}
    assert_queue_index(restored)
    restored.replaying = assigner.replaying
    return restored


def assert_plain_json(value: Any) -> None:
    """Only str/int/float/bool/None, lists and dicts with str keys (no tuples, UUIDs or dates)."""
    if isinstance(value, dict):
        for k, v in value.items():
            assert isinstance(k, str), k
            assert_plain_json(v)
    elif isinstance(value, list):
        for v in value:
            assert_plain_json(v)
    else:
        assert value is None or type(value) in (str, int, float, bool), repr(value)


@FAST
@given(histories())
def test_every_decision_follows_the_rules_and_replaying_the_log_gives_the_same_figures(history: History) -> None:
    run = play(history)

    # Rebuilding, as a restarted worker does: recorded decisions applied at their decided_at.
    decided = decided_by_position(run.decisions)
    rebuilt = Assigner(ZONE, run.facts.load)
    rebuilt.replaying = True
    for position, event in run.log:
        assert rebuilt.observe(position, event) == []  # replaying decides nothing
        for outcome in decided.get(position, []):
            rebuilt.apply(outcome, event.timestamp)
    rebuilt.replaying = False
    assert state_of(rebuilt) == state_of(run.assigner)

    # The auditor's check: deciding again over the log without the recorded decisions.
    again = Assigner(ZONE, run.facts.load)
    derived = [o for position, event in run.log if not is_decision(event) for o in again.observe(position, event)]
    assert list(map(key, derived)) == list(map(key, run.decisions))
    assert state_of(again) == state_of(run.assigner)


@FAST
@given(histories())
def test_a_rebuilt_assigner_carries_on_exactly_like_the_one_that_never_stopped(history: History) -> None:
    """Stopped after any prefix of the history and rebuilt from the log, the assigner goes on to
    make the same decisions over the rest as the one that never stopped. (The loader already
    knows the routes decided later: they must not matter.)"""
    run, operations = history.start(), history.operations
    half = len(operations) // 2
    for name, *args in operations[:half]:
        getattr(run, name)(*args)
    cut = len(run.log)
    decided = decided_by_position(run.decisions)
    before = len(run.decisions)
    for name, *args in operations[half:]:
        getattr(run, name)(*args)
    rebuilt = Assigner(ZONE, run.facts.load)
    rebuilt.replaying = True
    for position, event in run.log[:cut]:
        rebuilt.observe(position, event)
        for outcome in decided.get(position, []):
            rebuilt.apply(outcome, event.timestamp)
    rebuilt.replaying = False
    resumed = [o for position, event in run.log[cut:] if not is_decision(event)
               for o in rebuilt.observe(position, event)]
    assert list(map(key, resumed)) == list(map(key, run.decisions[before:]))
    assert state_of(rebuilt) == state_of(run.assigner)


@FAST
@given(histories(), st.data())
def test_a_snapshot_at_any_point_carries_on_exactly_like_the_fold_that_never_stopped(
        history: History, data: st.DataObject) -> None:
    """Fold to any cut, snapshot -> JSON -> restore, fold the rest: the same decisions, the same
    state as folding the whole log in one go."""
    run = play(history)
    cut = data.draw(st.integers(0, len(run.log)), label="cut")
    first = Assigner(ZONE, run.facts.load)
    made = [o for position, event in run.log[:cut] for o in first.observe(position, event)]
    second = through_json(first)
    made += [o for position, event in run.log[cut:] for o in second.observe(position, event)]
    assert list(map(key, made)) == list(map(key, run.decisions))
    assert state_of(second) == state_of(run.assigner)


@FAST
@given(histories(), st.data())
def test_a_snapshot_taken_while_rebuilding_carries_on_like_the_one_that_never_stopped(
        history: History, data: st.DataObject) -> None:
    """A restart as the worker does it: restore the snapshot, replay the log after it with the
    recorded decisions up to where they stop, then decide."""
    run, operations = history.start(), history.operations
    half = data.draw(st.integers(0, len(operations)), label="decided up to")
    for name, *args in operations[:half]:
        getattr(run, name)(*args)
    cut = len(run.log)
    before = len(run.decisions)
    for name, *args in operations[half:]:
        getattr(run, name)(*args)
    snap_at = data.draw(st.integers(0, cut), label="snapshot at")
    decided = decided_by_position(run.decisions)
    rebuilt = Assigner(ZONE, run.facts.load)
    rebuilt.replaying = True
    for i, (position, event) in enumerate(run.log[:cut]):
        if i == snap_at:
            rebuilt = through_json(rebuilt)
        rebuilt.observe(position, event)
        for outcome in decided.get(position, []):
            rebuilt.apply(outcome, event.timestamp)
    if snap_at == cut:
        rebuilt = through_json(rebuilt)
    rebuilt.replaying = False
    resumed = [o for position, event in run.log[cut:] if not is_decision(event)
               for o in rebuilt.observe(position, event)]
    assert list(map(key, resumed)) == list(map(key, run.decisions[before:]))
    assert state_of(rebuilt) == state_of(run.assigner)


def assert_nothing_per_conversation(assigner: Assigner) -> None:
    s = assigner.state
    assert (s.conversations, s.assignee, s.queued, s.unrouted, s.unrouted_in, s.queued_in) == ({}, {}, {}, {}, {}, {})
    data = assigner.snapshot()
    assert (data["conversations"], data["assignee"], data["queued"], data["unrouted"]) == ([], [], [], [])


@FAST
@given(histories())
def test_closing_every_conversation_leaves_nothing_per_conversation(history: History) -> None:
    run = play(history)
    for cid, conv in list(run.model.convs.items()):
        if conv.status != "CLOSED":
            run.close_one(cid, 1)
    assert_nothing_per_conversation(run.assigner)
    assert all(a.active == 0 for a in run.assigner.state.agents.values())
    assert len(run.assigner.state.last_handler) <= len(CUSTOMERS)


def test_memory_is_bounded_by_live_conversations_not_history() -> None:
    """Many conversations opened, assigned (some queued, some reopened) and closed: the state's
    per-conversation maps are empty, whatever the length of the history."""
    run = History(agents=[(AgentStatus.ONLINE, 2)] * 5, groups=[[0, 1], [2]],
                  rule=(S.LOAD_BALANCED, (0, 1)), operations=[]).start()
    for i in range(400):
        run.arrive(i, 1)
        run.arrive(i + 1, 1)
        if i % 7 == 0:
            run.set_status(i, AgentStatus.AWAY, 1)
            run.set_status(i, AgentStatus.ONLINE, 1)
        for cid, conv in list(run.model.convs.items()):
            if conv.status != "CLOSED":
                run.close_one(cid, 1)
        if i % 5 == 0:
            run.reopen(i, 1)
            run.close(0, 1)
    assert run.conversations == 800
    assert_nothing_per_conversation(run.assigner)
    assert len(run.assigner.snapshot()["last_handler"]) <= len(CUSTOMERS)


def test_a_reopened_conversation_takes_its_rule_from_the_loader() -> None:
    """The rule of the latest routing decided before the reopen: its groups decide whether the
    previous assignee may have it back. Routes decided at or after the reopen do not count."""
    a, b = UUID(int=1), UUID(int=2)
    arrived = Arrived(MAILBOX, "x@y", MessageFacts("x@y", [], [], "", "", {}, False), routes=((5, a), (9, b)))
    assert arrived.rule_before(5) is None
    assert arrived.rule_before(6) == a
    assert arrived.rule_before(9) == a
    assert arrived.rule_before(10) == b
    assert replace(arrived, routes=((9, b), (5, a))).rule_before(100) == b


def test_events_of_other_classes_are_ignored() -> None:
    assigner = Assigner(ZONE, Facts().load)
    assert assigner.observe(1, object()) == []
    assert assigner.observe(2, make("mailroom:Conversation.Routed", originator_id=UUID(int=5))) == []
    assert state_of(assigner) == state_of(Assigner(ZONE, Facts().load))


def test_restore_refuses_another_version_or_what_is_not_a_snapshot() -> None:
    data = play(History(agents=[(AgentStatus.ONLINE, None)] * 5, groups=[[0], [1]], rule=(S.ROUND_ROBIN, (0,)),
                        operations=[("arrive", 0, 1), ("arrive", 1, 1)])).assigner.snapshot()
    assert data["version"] == SNAPSHOT_VERSION
    for bad in ({**data, "version": SNAPSHOT_VERSION + 1}, {k: v for k, v in data.items() if k != "version"},
                {"version": SNAPSHOT_VERSION}, {**data, "agents": [["not a uuid"]]}):
        with pytest.raises(ValueError):
            Assigner.restore(ZONE, Facts().load, bad)


def test_a_snapshot_keeps_every_field_of_a_rule() -> None:
    """If RuleSpec or Condition gains a field, the snapshot must carry it (and SNAPSHOT_VERSION
    be bumped): this lists what it carries."""
    assert [f.name for f in fields(RuleSpec)] == ["name", "mailbox_ids", "group_ids", "strategy", "priority",
                                                  "enabled", "match", "conditions", "fallback_strategy"]
    assert [f.name for f in fields(Condition)] == ["field", "operator", "value", "header_name"]
    spec = RuleSpec(name="VIP", mailbox_ids=[MAILBOX, UUID(int=7)], group_ids=[GROUPS[1], GROUPS[0]],
                    strategy=S.CONTACT_OWNER, priority=-3, enabled=False, match=ConditionMatch.ANY,
                    conditions=[Condition(ConditionField.HEADER, ConditionOperator.MATCHES_REGEX, "^a", "X-Tag"),
                                Condition(ConditionField.HAS_ATTACHMENT, ConditionOperator.IS_TRUE)],
                    fallback_strategy=S.IDLE_FIRST)
    assigner = Assigner(ZONE, Facts().load)
    assigner.observe(1, make("mailroom:RoutingRule.Created", originator_id=RULE, spec=spec, timestamp=START))
    restored = through_json(assigner)
    assert restored.state.rules == assigner.state.rules
    assert restored._rule_order == 1


def test_a_snapshot_keeps_dates_and_times_exactly() -> None:
    run = play(History(agents=[(AgentStatus.ONLINE, None)] * 5, groups=[[0, 1], [1]],
                       rule=(S.LOAD_BALANCED, (0,)), operations=[("arrive", i, 97) for i in range(6)]))
    restored = through_json(run.assigner)
    for agent_id, agent in run.assigner.state.agents.items():
        again = restored.state.agents[agent_id]
        assert (again.day, again.today, again.last_assigned_at) == (agent.day, agent.today, agent.last_assigned_at)
        assert again.last_assigned_at is None or (
            again.last_assigned_at.isoformat() == agent.last_assigned_at.isoformat())  # type: ignore[union-attr]
    assert isinstance(restored.state.agents[AGENTS[0]].day, date)
