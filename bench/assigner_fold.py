"""The assigner fold alone (domain/assigner.py, no database): events per second and the size of
its state over synthetic histories, and the cost of a snapshot.

A seeded history of real event objects: 200 agents in 20 groups, 20 rules over 8 mailboxes (one
mailbox no rule covers: its conversations stay unrouted until closed), every strategy, 2,000
contacts with owners, 300 accounts with domains. Arrivals (opened + first message), follow-ups,
closes (about 1,500 conversations open at a time: with the default capacities, more than the
agents can take, so a queue forms), reopens of recently closed ones, hand assignments, agents
going away and coming back, a rule changed every 20,000 events. Every
decision is recorded as its event and read back, as the worker does; those count as events too.
The loader derives a conversation's facts from its number and knows its routes (kept only for
conversations that can still be reopened), so nothing outside the fold grows with history.

Only the time inside `observe()` is counted; the first and the last 100,000 events of a run are
timed apart too (under the same load: whether the cost per event grows with history).
`--module` measures another implementation of the same interface (e.g.
`tests.unit.assigner_reference`, the fold before bounded memory).
`--memory` runs again under tracemalloc: memory held at the end, and its peak.

    .venv/bin/python -m bench.assigner_fold [--events 100000,1000000] [--module domain.assigner]
        [--capacities 4,6,8,10] [--memory]
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import random
import sys
import time
import tracemalloc
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from domain.agents import Agent, AgentGroup
from domain.conditions import MessageFacts
from domain.conversation import ASSIGNER, Conversation
from domain.customers import Account, Contact
from domain.routing import RoutingRule, RuleSpec
from domain.values import AgentStatus, AssignmentStrategy, Condition, ConditionField, ConditionOperator

S = AssignmentStrategy
ZONE = ZoneInfo("Europe/Berlin")
START = datetime(2024, 1, 1, 8, 0, tzinfo=UTC)
AGENTS, GROUPS, RULES, MAILBOXES, CONTACTS, ACCOUNTS, CUSTOMERS = 200, 20, 20, 8, 2_000, 300, 5_000
OPEN_TARGET, REOPENABLE = 1_500, 500
WINDOW = 100_000
WORDS = ["refund", "invoice", "login", "delivery", "hello"]


def made_by_event(aggregate: type[Any], name: str) -> Any:
    """An event class made by eventsourcing's @event decorator (named at run time only)."""
    return getattr(aggregate, name)


ASSIGNED = made_by_event(Conversation, "Assigned")
CHANGED = made_by_event(RoutingRule, "Changed")
CLOSED = made_by_event(Conversation, "Closed")
LEFT_UNROUTED = made_by_event(Conversation, "LeftUnrouted")
MESSAGE_RECEIVED = made_by_event(Conversation, "MessageReceived")
QUEUED = made_by_event(Conversation, "Queued")
REOPENED = made_by_event(Conversation, "Reopened")
ROUTED = made_by_event(Conversation, "Routed")
STATUS_CHANGED = made_by_event(Agent, "StatusChanged")


def uid(kind: int, n: int) -> UUID:
    return UUID(int=(kind << 64) + n)


def customer(n: int) -> str:
    return f"c{n}@d{n % 400}.example"


def ev(cls: Any, oid: UUID, version: int, at: datetime, **attrs: Any) -> Any:
    """An event of `cls` with every field given (None for those the fold does not read)."""
    names = {f.name for f in fields(cls)}
    values = {name: None for name in names} | {"originator_id": oid, "originator_version": version, "timestamp": at}
    if "originator_topic" in names:
        values["originator_topic"] = "bench"
    return cls(**(values | attrs))


@dataclass
class World:
    """The history, generated as it is folded (choices depend on what was decided)."""

    module: ModuleType
    capacities: list[int | None]
    rng: random.Random = field(default_factory=lambda: random.Random(7))
    at: datetime = START
    conversations: int = 0
    versions: dict[UUID, int] = field(default_factory=dict)  # live or reopenable conversation -> last version
    live: dict[UUID, None] = field(default_factory=dict)  # not closed, oldest first
    assignee: dict[UUID, UUID] = field(default_factory=dict)
    closed: deque[tuple[UUID, UUID | None]] = field(default_factory=lambda: deque(maxlen=REOPENABLE))
    routes: dict[UUID, list[tuple[int, UUID]]] = field(default_factory=dict)
    away: deque[UUID] = field(default_factory=deque)
    specs: dict[UUID, RuleSpec] = field(default_factory=dict)

    def load(self, conversation_id: UUID) -> Any:
        n = conversation_id.int & ((1 << 64) - 1)
        email = customer(n % CUSTOMERS)
        facts = MessageFacts(email, ["support@example.com"], [], f"About my {WORDS[n % len(WORDS)]}", "", {}, False)
        arrived = {"mailbox_id": uid(1, n % MAILBOXES), "customer_email": email, "facts": facts}
        if any(f.name == "routes" for f in fields(self.module.Arrived)):
            arrived["routes"] = tuple(self.routes.get(conversation_id, ()))
        return self.module.Arrived(**arrived)

    def tick(self) -> datetime:
        self.at += timedelta(seconds=self.rng.randint(1, 40))
        return self.at

    def setup(self) -> list[Any]:
        rng, at = self.rng, self.at
        out: list[Any] = []
        agents = [uid(2, i) for i in range(AGENTS)]
        for i, agent_id in enumerate(agents):
            out.append(ev(Agent.Created, agent_id, 1, at, name=f"agent{i}", email=f"a{i}@example.com",
                          status=AgentStatus.ONLINE, capacity=rng.choice(self.capacities)))
        for g in range(GROUPS):
            out.append(ev(AgentGroup.Created, uid(3, g), 1, at, name=f"g{g}",
                          member_ids=rng.sample(agents, rng.randint(10, 20))))
        for a in range(ACCOUNTS):
            out.append(ev(Account.Created, uid(5, a), 1, at, name=f"acc{a}", domains=[f"d{a}.example"],
                          owner_id=rng.choice(agents)))
        for n in rng.sample(range(CUSTOMERS), CONTACTS):
            out.append(ev(Contact.Created, uid(6, n), 1, at, email=customer(n), name=None,
                          account_id=uid(5, n % ACCOUNTS) if n % 3 else None, owner_id=rng.choice(agents)))
        strategies = [S.LOAD_BALANCED, S.ROUND_ROBIN, S.IDLE_FIRST, S.CONTACT_OWNER, S.ACCOUNT_OWNER]
        for r in range(RULES):
            spec = RuleSpec(name=f"r{r}", mailbox_ids=[uid(1, r % (MAILBOXES - 1))],
                            group_ids=[uid(3, r % GROUPS), uid(3, (r + 7) % GROUPS)],
                            strategy=strategies[r % len(strategies)], priority=10 if r < 10 else 100,
                            conditions=[Condition(ConditionField.SUBJECT, ConditionOperator.CONTAINS, WORDS[r % 4])]
                            if r < 10 else [])
            self.specs[uid(4, r)] = spec
            out.append(ev(RoutingRule.Created, uid(4, r), 1, at, spec=spec))
        return out

    def next_events(self) -> list[Any]:
        rng, roll = self.rng, self.rng.random()
        at = self.tick()
        if roll < 0.45 or not self.live:
            self.conversations += 1
            cid = uid(7, self.conversations)
            self.versions[cid], self.live[cid] = 2, None
            arrived = self.load(cid)
            out = [ev(Conversation.Opened, cid, 1, at, mailbox_id=arrived.mailbox_id,
                      customer_email=arrived.customer_email, subject="", ref=str(cid)),
                   ev(MESSAGE_RECEIVED, cid, 2, at, mailbox_id=arrived.mailbox_id)]
            if len(self.live) > OPEN_TARGET:  # about as many closed as opened: the oldest one
                out.append(self._close(next(iter(self.live)), at))
            return out
        if roll < 0.55:
            if len(self.live) < OPEN_TARGET // 2:
                return []
            return [self._close(rng.choice(list(self.live)), at)]
        if roll < 0.59 and self.closed:
            cid, previous = self.closed.popleft()
            self.live[cid] = None
            return [ev(REOPENED, cid, self._version(cid), at, previous_assignee_id=previous)]
        if roll < 0.94:
            cid = rng.choice(list(self.live))
            return [ev(MESSAGE_RECEIVED, cid, self._version(cid), at)]
        if roll < 0.96:
            cid = rng.choice(list(self.live))
            agent_id = uid(2, rng.randrange(AGENTS))
            if self.assignee.get(cid) == agent_id:
                return []
            return [ev(ASSIGNED, cid, self._version(cid), at, agent_id=agent_id,
                       previous_id=self.assignee.get(cid), strategy=None, reason="by hand", decided_by="admin",
                       decided_at=None, rule_id=None)]
        if len(self.away) > AGENTS // 10 or (self.away and rng.random() < 0.5):
            agent_id = self.away.popleft()
            return [ev(STATUS_CHANGED, agent_id, 2, at, status=AgentStatus.ONLINE)]
        agent_id = uid(2, rng.randrange(AGENTS))
        if agent_id in self.away:
            return []
        self.away.append(agent_id)
        return [ev(STATUS_CHANGED, agent_id, 2, at, status=rng.choice([AgentStatus.AWAY, AgentStatus.OFFLINE]))]

    def change_rule(self, n: int) -> Any:
        rule_id = uid(4, n % RULES)
        spec = self.specs[rule_id]
        self.specs[rule_id] = spec = RuleSpec(**{f.name: getattr(spec, f.name) for f in fields(spec)}
                                              | {"priority": spec.priority + 1})
        return ev(CHANGED, rule_id, 2, self.tick(), spec=spec)

    def _version(self, cid: UUID) -> int:
        self.versions[cid] += 1
        return self.versions[cid]

    def _close(self, cid: UUID, at: datetime) -> Any:
        del self.live[cid]
        previous = self.assignee.pop(cid, None)
        if len(self.closed) == self.closed.maxlen:  # no longer reopenable: the loader forgets it
            gone, _ = self.closed[0]
            self.routes.pop(gone, None)
            self.versions.pop(gone, None)
        self.closed.append((cid, previous))
        return ev(CLOSED, cid, self._version(cid), at, assignee_id=previous)

    def recorded(self, outcome: Any, at: datetime) -> Any:
        """The decision event the worker records (the fold reads it back and skips it); the
        bench's own bookkeeping of assignees and routes follows it."""
        cid = outcome.conversation_id
        version = self._version(cid) if cid in self.versions else 99
        if outcome.kind == "routed":
            self.routes.setdefault(cid, []).append((outcome.decided_at, outcome.rule_id))
            return ev(ROUTED, cid, version, at, rule_id=outcome.rule_id,
                      group_ids=list(outcome.group_ids), decided_at=outcome.decided_at)
        if outcome.kind == "unrouted":
            return ev(LEFT_UNROUTED, cid, version, at, reason=outcome.reason,
                      decided_at=outcome.decided_at)
        if outcome.kind == "queued":
            self.assignee.pop(cid, None)
            return ev(QUEUED, cid, version, at, strategy=outcome.strategy,
                      reason=outcome.reason, decided_at=outcome.decided_at)
        if cid in self.live:
            self.assignee[cid] = outcome.agent_id
        return ev(ASSIGNED, cid, version, at, agent_id=outcome.agent_id, previous_id=outcome.previous_id,
                  strategy=outcome.strategy, reason=outcome.reason, decided_by=ASSIGNER,
                  decided_at=outcome.decided_at, rule_id=outcome.rule_id)


@dataclass
class Result:
    events: int
    seconds: float
    decisions: int
    sizes: dict[str, int]
    windows: list[float]  # seconds spent in each WINDOW of events: is the cost per event flat?
    snapshot_s: float | None = None
    snapshot_kb: float | None = None
    restore_s: float | None = None


def fold(module: ModuleType, events: int, capacities: list[int | None],
         progress: Callable[[int], None] | None = None) -> tuple[Any, Result]:
    world = World(module, capacities)
    assigner = module.Assigner(ZONE, world.load)
    position, spent, decisions = 0, 0.0, 0
    windows: list[float] = []
    pending = world.setup()
    while position < events:
        if not pending:
            pending = world.next_events()
            if position and position % 20_000 < len(pending):
                pending.append(world.change_rule(position // 20_000))
            continue
        event = pending.pop(0)
        position += 1
        began = time.perf_counter()
        outcomes = assigner.observe(position, event)
        spent += time.perf_counter() - began
        decisions += len(outcomes)
        for outcome in outcomes:
            pending.append(world.recorded(outcome, event.timestamp))
        if position % WINDOW == 0:
            windows.append(spent - sum(windows))
            if progress is not None:
                progress(position)
    s = assigner.state
    sizes = {name: len(value) for name, value in vars(s).items() if isinstance(value, dict)}
    return assigner, Result(position, spent, decisions, sizes, windows)


def snapshot_cost(module: ModuleType, assigner: Any, result: Result) -> None:
    if not hasattr(assigner, "snapshot"):
        return
    began = time.perf_counter()
    text = json.dumps(assigner.snapshot(), separators=(",", ":"))
    result.snapshot_s = time.perf_counter() - began
    result.snapshot_kb = len(text) / 1024
    began = time.perf_counter()
    module.Assigner.restore(assigner.zone, assigner.load, json.loads(text))
    result.restore_s = time.perf_counter() - began


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", default="100000,1000000")
    parser.add_argument("--module", default="domain.assigner")
    parser.add_argument("--capacities", default="4,6,8,10",
                        help="agents' capacities, drawn from these ('none' = no limit); the default keeps a queue, "
                             "'none,8,12,20' does not")
    parser.add_argument("--memory", action="store_true", help="also run under tracemalloc (slower)")
    args = parser.parse_args(argv)
    module = importlib.import_module(args.module)
    capacities = [None if c == "none" else int(c) for c in args.capacities.split(",")]
    print(f"assigner fold: {args.module}, {AGENTS} agents (capacities {args.capacities}), {GROUPS} groups, "
          f"{RULES} rules, {MAILBOXES} mailboxes")
    rows = []
    for events in [int(n) for n in args.events.split(",")]:
        assigner, result = fold(module, events, capacities)
        snapshot_cost(module, assigner, result)
        tracked = len(gc.get_objects())
        del assigner
        line: dict[str, Any] = {"events": result.events, "events/s": round(result.events / result.seconds),
                                **({"first 100k /s": round(WINDOW / result.windows[0]),
                                    "last 100k /s": round(WINDOW / result.windows[-1])} if result.windows else {}),
                "decisions": result.decisions, "gc objects": tracked, **result.sizes}
        if result.snapshot_s is not None:
            line |= {"snapshot ms": round(result.snapshot_s * 1e3, 1), "snapshot KB": round(result.snapshot_kb or 0),
                     "restore ms": round((result.restore_s or 0) * 1e3, 1)}
        if args.memory:
            gc.collect()
            tracemalloc.start()
            base = tracemalloc.get_traced_memory()[0]
            held, _ = fold(module, events, capacities)
            current, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            del held
            line |= {"held MB": round((current - base) / 2**20, 1), "peak MB": round((peak - base) / 2**20, 1)}
        rows.append(line)
        print(json.dumps(line), flush=True)
    keys = list(dict.fromkeys(k for row in rows for k in row))
    width = {k: max(len(k), *(len(f"{row.get(k, '')}") for row in rows)) for k in keys}
    print("  ".join(k.rjust(width[k]) for k in keys))
    for row in rows:
        print("  ".join(f"{row.get(k, '')}".rjust(width[k]) for k in keys))


if __name__ == "__main__":
    main(sys.argv[1:])
