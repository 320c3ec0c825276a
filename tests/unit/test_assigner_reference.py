"""The assigner fold (domain/assigner.py) against the fold as it was before it kept only live
conversations, indexed unrouted conversations and account domains, and skipped full group sets
in a drain (tests/unit/assigner_reference.py): over random histories of several mailboxes,
rules (created, changed, disabled, deleted; conditions; every strategy), groups (deleted too),
contacts and accounts (domains changing), both make exactly the same decisions, reasons
included, and keep the same figures after every event. The new fold is also snapshotted through
JSON and restored at a random point; at the end, rebuilt from its recorded decisions it has the
same state, and deciding again over the log (the loader then knows every later routing, which a
reopen must ignore) gives the same decisions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

import tests.unit.assigner_reference as reference
from domain.assigner import Arrived, Assigner, Outcome
from domain.conditions import MessageFacts
from domain.routing import RuleSpec
from domain.values import AgentStatus, AssignmentStrategy, Condition, ConditionField, ConditionMatch, ConditionOperator
from tests.unit.test_assigner_properties import (
    Facts,
    assert_queue_index,
    decision_event,
    is_decision,
    key,
    make,
    through_json,
)

S = AssignmentStrategy
ZONE = ZoneInfo("Europe/Berlin")
START = datetime(2024, 3, 30, 20, 0, tzinfo=UTC)  # a DST change on 2024-03-31
MAILBOXES = [UUID(int=1 + i) for i in range(3)]
AGENTS = [UUID(int=100 + i) for i in range(6)]
GROUPS = [UUID(int=10 + i) for i in range(3)]
ACCOUNTS = [UUID(int=300 + i) for i in range(3)]
DOMAINS = ["acme.example", "beta.example", "gamma.example"]
CUSTOMERS = ["ann@acme.example", "bob@acme.example", "cy@beta.example", "di@gamma.example", "ed@Acme.Example",
             "fay@nowhere.example"]
WORDS = ["refund", "help", "invoice"]
CONDITIONS = [
    [],
    [Condition(ConditionField.SUBJECT, ConditionOperator.CONTAINS, "refund")],
    [Condition(ConditionField.FROM_DOMAIN, ConditionOperator.EQUALS, "beta.example")],
    [Condition(ConditionField.SUBJECT, ConditionOperator.CONTAINS, "help"),
     Condition(ConditionField.FROM_DOMAIN, ConditionOperator.EQUALS, "acme.example")],
]
STATUSES = [AgentStatus.ONLINE, AgentStatus.ONLINE, AgentStatus.AWAY, AgentStatus.OFFLINE]
PLAIN = [S.LOAD_BALANCED, S.ROUND_ROBIN, S.IDLE_FIRST]
RUNS = settings(max_examples=250, derandomize=True, deadline=None, database=None)


class World:
    """Emits events to both folds and checks they agree, event by event."""

    def __init__(self, cut: int) -> None:
        self.facts = Facts()
        self.new = Assigner(ZONE, self.facts.load)
        self.old = reference.Assigner(ZONE, self.facts.load)  # type: ignore[arg-type]
        self.cut = cut  # the new fold is snapshotted and restored after this many events
        self.log: list[tuple[int, Any]] = []
        self.decisions: list[Outcome] = []
        self.at = START
        self.live: dict[UUID, bool] = {}  # conversation -> not closed
        self.closed_by: dict[UUID, UUID | None] = {}  # closed conversation -> its assignee then
        self.conversations = 0
        self.rules: list[UUID | None] = [None, None, None]  # rule slot -> its id while it exists
        self.rule_ids = 0
        self.contacts: dict[str, UUID] = {}
        self.accounts: set[UUID] = set()
        self.groups = set(GROUPS)

    def emit(self, topic: str, minutes: int, **attrs: Any) -> None:
        self.at += timedelta(minutes=minutes)
        event = make(topic, timestamp=self.at, **attrs)
        position = len(self.log) + 1
        self.log.append((position, event))
        if position == self.cut:
            self.new = through_json(self.new)
        new, old = self.new.observe(position, event), self.old.observe(position, event)
        assert list(map(key, new)) == list(map(key, old)), f"at {position} ({topic})"
        self.decisions += new
        self.facts.record(new)
        for outcome in new:
            recorded = decision_event(outcome, self.at)
            self.log.append((len(self.log) + 1, recorded))
            assert self.new.observe(len(self.log), recorded) == []
            assert self.old.observe(len(self.log), recorded) == []
        assert figures(self.new) == figures(self.old), f"at {position} ({topic})"
        assert_queue_index(self.new)

    # ------------------------------------------------------------------ operations

    def arrive(self, mailbox: int, customer: int, word: int, minutes: int) -> None:
        self.conversations += 1
        cid = UUID(int=10_000 + self.conversations)
        email = CUSTOMERS[customer]
        self.facts.arrived[cid] = Arrived(MAILBOXES[mailbox], email, MessageFacts(
            email, ["support@example.com"], [], f"Need {WORDS[word]}", "", {}, False))
        self.live[cid] = True
        self.emit("mailroom:Conversation.Opened", minutes, originator_id=cid, originator_version=1,
                  mailbox_id=MAILBOXES[mailbox], customer_email=email)
        self.emit("mailroom:Conversation.MessageReceived", 0, originator_id=cid, originator_version=2)

    def _pick(self, live: bool, pick: int) -> UUID | None:
        found = [c for c, v in self.live.items() if v is live]
        return found[pick % len(found)] if found else None

    def follow_up(self, pick: int, minutes: int) -> None:
        if (cid := self._pick(True, pick)) is not None:
            self.emit("mailroom:Conversation.MessageReceived", minutes, originator_id=cid, originator_version=3)

    def close(self, pick: int, minutes: int) -> None:
        if (cid := self._pick(True, pick)) is not None:
            self.live[cid] = False
            self.closed_by[cid] = self.new.state.assignee.get(cid)
            self.emit("mailroom:Conversation.Closed", minutes, originator_id=cid, assignee_id=self.closed_by[cid])

    def reopen(self, pick: int, minutes: int) -> None:
        if (cid := self._pick(False, pick)) is not None:
            self.live[cid] = True
            self.emit("mailroom:Conversation.Reopened", minutes, originator_id=cid,
                      previous_assignee_id=self.closed_by.get(cid))

    def hand_assign(self, pick: int, agent: int, minutes: int) -> None:
        cid = self._pick(True, pick)
        if cid is not None and self.new.state.assignee.get(cid) != AGENTS[agent]:
            self.emit("mailroom:Conversation.Assigned", minutes, originator_id=cid, agent_id=AGENTS[agent],
                      previous_id=self.new.state.assignee.get(cid), strategy=None, reason="by hand",
                      decided_by="admin", decided_at=None, rule_id=None)

    def status(self, agent: int, status: AgentStatus, minutes: int) -> None:
        self.emit("mailroom:Agent.StatusChanged", minutes, originator_id=AGENTS[agent], status=status)

    def capacity(self, agent: int, capacity: int | None, minutes: int) -> None:
        self.emit("mailroom:Agent.CapacityChanged", minutes, originator_id=AGENTS[agent], capacity=capacity)

    def rename(self, agent: int, minutes: int) -> None:
        self.emit("mailroom:Agent.Edited", minutes, originator_id=AGENTS[agent], name=f"n{minutes}",
                  email="x@example.com")

    def join(self, group: int, agent: int, minutes: int) -> None:
        members = self.new.state.groups.get(GROUPS[group], [])
        if AGENTS[agent] not in members:
            self.emit("mailroom:AgentGroup.MembersAdded", minutes, originator_id=GROUPS[group],
                      agent_ids=[AGENTS[agent]])

    def leave(self, group: int, agent: int, minutes: int) -> None:
        if AGENTS[agent] in self.new.state.groups.get(GROUPS[group], []):
            self.emit("mailroom:AgentGroup.MembersRemoved", minutes, originator_id=GROUPS[group],
                      agent_ids=[AGENTS[agent]])

    def delete_group(self, group: int, minutes: int) -> None:
        if GROUPS[group] in self.groups and minutes % 3 == 0:  # rarer
            self.groups.discard(GROUPS[group])
            self.emit("mailroom:AgentGroup.Deleted", minutes, originator_id=GROUPS[group])

    def write_rule(self, slot: int, spec: RuleSpec, minutes: int) -> None:
        rule_id = self.rules[slot]
        if rule_id is None:
            self.rule_ids += 1
            rule_id = self.rules[slot] = UUID(int=200 + self.rule_ids)
            self.emit("mailroom:RoutingRule.Created", minutes, originator_id=rule_id, spec=spec)
        else:
            self.emit("mailroom:RoutingRule.Changed", minutes, originator_id=rule_id, spec=spec)

    def delete_rule(self, slot: int, minutes: int) -> None:
        rule_id = self.rules[slot]
        if rule_id is not None:
            self.rules[slot] = None
            self.emit("mailroom:RoutingRule.Deleted", minutes, originator_id=rule_id)

    def contact(self, customer: int, owner: int | None, account: int | None, minutes: int) -> None:
        email = CUSTOMERS[customer]
        owner_id = None if owner is None else AGENTS[owner]
        account_id = None if account is None else ACCOUNTS[account]
        contact_id = self.contacts.get(email)
        if contact_id is None:
            contact_id = self.contacts[email] = UUID(int=400 + len(self.contacts))
            self.emit("mailroom:Contact.Created", minutes, originator_id=contact_id, email=email, name=None,
                      account_id=account_id, owner_id=owner_id)
        elif minutes % 2:
            self.emit("mailroom:Contact.Updated", minutes, originator_id=contact_id, name=None,
                      account_id=account_id)
        else:
            self.emit("mailroom:Contact.OwnerChanged", minutes, originator_id=contact_id, owner_id=owner_id)

    def account(self, index: int, domains: list[int], owner: int | None, minutes: int) -> None:
        account_id = ACCOUNTS[index]
        names = [DOMAINS[d] if d % 2 else DOMAINS[d].upper() for d in domains]
        owner_id = None if owner is None else AGENTS[owner]
        if account_id not in self.accounts:
            self.accounts.add(account_id)
            self.emit("mailroom:Account.Created", minutes, originator_id=account_id, name="A", domains=names,
                      owner_id=owner_id)
        elif minutes % 2:
            self.emit("mailroom:Account.Updated", minutes, originator_id=account_id, name="A", domains=names)
        else:
            self.emit("mailroom:Account.OwnerChanged", minutes, originator_id=account_id, owner_id=owner_id)


def figures(assigner: Any) -> tuple[Any, ...]:
    s = assigner.state
    return (
        {a: (x.name, x.status, x.capacity, x.active, x.day, x.today, x.last_assigned_at) for a, x in s.agents.items()},
        list(s.assignee.items()), dict(s.cursor), dict(s.last_handler), list(s.unrouted.items()),
        [(c, w.rule_id, w.spec, w.customer_email) for c, w in s.queued.items()], dict(s.groups),
        {r: (e.spec, e.order) for r, e in s.rules.items()}, assigner._rule_order,
    )


# ---------------------------------------------------------------------- hypothesis

minutes = st.integers(0, 300)
agent = st.integers(0, len(AGENTS) - 1)
maybe_agent = st.none() | agent
specs = st.builds(
    RuleSpec,
    name=st.just("R"),
    mailbox_ids=st.lists(st.sampled_from(MAILBOXES), min_size=1, max_size=3, unique=True),
    group_ids=st.lists(st.sampled_from(GROUPS), min_size=1, max_size=3, unique=True),
    strategy=st.sampled_from(list(S)),
    priority=st.sampled_from([0, 10, 10]),
    enabled=st.sampled_from([True, True, True, False]),
    match=st.sampled_from(list(ConditionMatch)),
    conditions=st.sampled_from(CONDITIONS),
    fallback_strategy=st.sampled_from(PLAIN),
)
ARGUMENTS: dict[str, st.SearchStrategy[tuple[Any, ...]]] = {
    "arrive": st.tuples(st.integers(0, 2), st.integers(0, len(CUSTOMERS) - 1), st.integers(0, 2), minutes),
    "close": st.tuples(st.integers(0, 60), minutes),
    "reopen": st.tuples(st.integers(0, 60), minutes),
    "follow_up": st.tuples(st.integers(0, 60), minutes),
    "hand_assign": st.tuples(st.integers(0, 60), agent, minutes),
    "status": st.tuples(agent, st.sampled_from(STATUSES), minutes),
    "capacity": st.tuples(agent, st.none() | st.integers(0, 3), minutes),
    "rename": st.tuples(agent, minutes),
    "join": st.tuples(st.integers(0, 2), agent, minutes),
    "leave": st.tuples(st.integers(0, 2), agent, minutes),
    "delete_group": st.tuples(st.integers(0, 2), minutes),
    "write_rule": st.tuples(st.integers(0, 2), specs, minutes),
    "delete_rule": st.tuples(st.integers(0, 2), minutes),
    "contact": st.tuples(st.integers(0, len(CUSTOMERS) - 1), maybe_agent, st.none() | st.integers(0, 2), minutes),
    "account": st.tuples(st.integers(0, 2), st.lists(st.integers(0, 2), max_size=3), maybe_agent, minutes),
}
WEIGHTS = {"arrive": 8, "close": 5, "reopen": 3, "status": 5, "capacity": 2, "join": 2, "leave": 2, "hand_assign": 2,
           "follow_up": 1, "rename": 1, "write_rule": 2, "delete_rule": 1, "delete_group": 1, "contact": 1,
           "account": 1}
operation = st.sampled_from([n for n, w in WEIGHTS.items() for _ in range(w)]).flatmap(
    lambda name: ARGUMENTS[name].map(lambda args: (name, *args)))


@dataclass(frozen=True)
class History:
    agents: list[tuple[AgentStatus, int | None]]
    groups: list[list[int]]
    setup: list[tuple[Any, ...]]  # rules, contacts and accounts before the first arrival
    operations: list[tuple[Any, ...]]


@st.composite
def histories(draw: st.DrawFn) -> History:
    agents = [(draw(st.sampled_from(STATUSES[:2] + STATUSES)), draw(st.none() | st.integers(1, 3)))
              for _ in AGENTS]
    groups = [draw(st.lists(st.integers(0, len(AGENTS) - 1), min_size=1, max_size=4, unique=True)) for _ in GROUPS]
    rules = [("write_rule", slot, draw(specs), 1) for slot in range(draw(st.integers(1, 3)))]
    contacts = [("contact", c, draw(maybe_agent), draw(st.none() | st.integers(0, 2)), 1)
                for c in draw(st.lists(st.integers(0, len(CUSTOMERS) - 1), max_size=4, unique=True))]
    accounts = [("account", a, draw(st.lists(st.integers(0, 2), max_size=2)), draw(maybe_agent), 1)
                for a in draw(st.lists(st.integers(0, 2), max_size=3, unique=True))]
    return History(agents, groups, [*rules, *contacts, *accounts],
                   draw(st.lists(operation, min_size=40, max_size=120)))


def start(history: History, cut: int) -> World:
    world = World(cut)
    for i, (status, capacity) in enumerate(history.agents):
        world.emit("mailroom:Agent.Created", 1, originator_id=AGENTS[i], name=f"a{i}", status=status,
                   capacity=capacity)
    for group_id, members in zip(GROUPS, history.groups, strict=True):
        world.emit("mailroom:AgentGroup.Created", 1, originator_id=group_id, name="g",
                   member_ids=[AGENTS[m] for m in members])
    return world


@RUNS
@given(histories(), st.integers(0, 400))
def test_the_fold_decides_exactly_as_before(history: History, cut: int) -> None:
    world = start(history, cut)
    for name, *args in [*history.setup, *history.operations]:
        getattr(world, name)(*args)

    # Rebuilt from the recorded decisions, the new fold has the same state.
    decided: dict[int, list[Outcome]] = {}
    for outcome in world.decisions:
        decided.setdefault(outcome.decided_at, []).append(outcome)
    rebuilt = Assigner(ZONE, world.facts.load)
    rebuilt.replaying = True
    for position, event in world.log:
        assert rebuilt.observe(position, event) == []
        for outcome in decided.get(position, []):
            rebuilt.apply(outcome, event.timestamp)
    rebuilt.replaying = False
    assert rebuilt.snapshot() == world.new.snapshot()

    # The auditor's check: deciding again over the log, the loader knowing every later routing.
    again = Assigner(ZONE, world.facts.load)
    derived = [o for position, event in world.log if not is_decision(event) for o in again.observe(position, event)]
    assert list(map(key, derived)) == list(map(key, world.decisions))
    assert again.snapshot() == world.new.snapshot()

    # Closing everything leaves nothing per conversation in the new fold.
    for _ in range(len(world.live)):
        world.close(0, 1)
    s = world.new.state
    assert (s.conversations, s.assignee, s.queued, s.unrouted, s.unrouted_in, s.queued_in) == ({}, {}, {}, {}, {}, {})
