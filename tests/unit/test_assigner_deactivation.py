"""The assigner and a deactivated agent (issue 8, finding 6), on the fold alone (no I/O; the events
are instances of the real classes, as in test_assigner_properties.py): Agent.Deactivated is a
trigger, and each of the agent's open conversations is decided again at its position, exactly
once: assigned to an eligible agent of its rule's groups, queued, or (no rule covers it) left
unrouted. The agent is never a candidate again (queues, reopens, new mail), holds nothing, and a
conversation assigned to it by hand as it was being deactivated is decided again too. Rebuilding
from the recorded decisions gives the same state, deciding again over the log the same
decisions, and a snapshot carries the deactivation."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from domain.assigner import Arrived, Assigner, Outcome
from domain.conditions import MessageFacts
from domain.routing import RuleSpec
from domain.values import AgentStatus, AssignmentStrategy
from tests.unit.test_assigner_properties import START, ZONE, Facts, decision_event, is_decision, make

M1, M2 = UUID(int=1), UUID(int=2)  # M2: no rule covers it
RULE = UUID(int=3)
G1 = UUID(int=10)
ANN, BOB = UUID(int=100), UUID(int=101)


def cid(n: int) -> UUID:
    return UUID(int=1000 + n)


class Desk:
    """A log with the assigner following it, its decisions recorded after their triggers."""

    def __init__(self) -> None:
        self.facts = Facts()
        self.assigner = Assigner(ZONE, self.facts.load)
        self.log: list[Any] = []
        self.decided: list[tuple[Outcome, datetime]] = []
        self.at = START

    def emit(self, topic: str, **attrs: Any) -> list[Outcome]:
        self.at += timedelta(minutes=1)
        event = make(topic, timestamp=self.at, **attrs)
        self.log.append(event)
        outcomes = self.assigner.observe(len(self.log), event)
        self.facts.record(outcomes)
        for outcome in outcomes:
            self.decided.append((outcome, event.timestamp))
            self.log.append(decision_event(outcome, event.timestamp))
            assert self.assigner.observe(len(self.log), self.log[-1]) == []  # its own: skipped
        return outcomes

    def arrive(self, n: int, mailbox: UUID = M1) -> list[Outcome]:
        email = f"c{n}@customer.example"
        self.facts.arrived[cid(n)] = Arrived(mailbox, email, MessageFacts(email, ["support@example.com"], [],
                                                                          "Help", "", {}, False))
        self.emit("mailroom:Conversation.Opened", originator_id=cid(n), originator_version=1, mailbox_id=mailbox,
                  customer_email=email)
        return self.emit("mailroom:Conversation.MessageReceived", originator_id=cid(n), originator_version=2)

    def by_hand(self, n: int, agent: UUID, previous: UUID | None) -> list[Outcome]:
        return self.emit("mailroom:Conversation.Assigned", originator_id=cid(n), agent_id=agent,
                         previous_id=previous, strategy=None, reason="by hand", decided_by="admin",
                         decided_at=None, rule_id=None)


def summary(outcomes: list[Outcome]) -> list[tuple[UUID, str, UUID | None]]:
    return [(o.conversation_id, o.kind, o.agent_id) for o in outcomes]


def desk_with_ann_deactivated() -> tuple[Desk, list[Outcome]]:
    d = Desk()
    for agent, name in ((ANN, "ann"), (BOB, "bob")):
        d.emit("mailroom:Agent.Created", originator_id=agent, name=name, status=AgentStatus.ONLINE,
               capacity=2 if agent == BOB else None)
    d.emit("mailroom:AgentGroup.Created", originator_id=G1, member_ids=[ANN, BOB])
    d.emit("mailroom:RoutingRule.Created", originator_id=RULE, spec=RuleSpec(
        name="All", mailbox_ids=[M1], group_ids=[G1], strategy=AssignmentStrategy.ROUND_ROBIN))
    assert [summary(d.arrive(n))[-1][2] for n in (1, 2, 3, 6)] == [ANN, BOB, ANN, BOB]
    d.emit("mailroom:Conversation.Closed", originator_id=cid(6), assignee_id=BOB)
    assert summary(d.arrive(7))[-1] == (cid(7), "assigned", ANN)
    d.emit("mailroom:Conversation.Closed", originator_id=cid(7), assignee_id=ANN)
    assert summary(d.arrive(4, M2)) == [(cid(4), "unrouted", None)]
    d.by_hand(4, ANN, None)  # an admin's override: it has no groups
    s = d.assigner.state
    assert (s.agents[ANN].active, s.agents[BOB].active, s.cursor[RULE]) == (3, 1, ANN)
    return d, d.emit("mailroom:Agent.Deactivated", originator_id=ANN)


def test_each_open_conversation_of_the_agent_is_decided_again_once() -> None:
    d, outcomes = desk_with_ann_deactivated()
    # c1: to bob by its rule (ann, the cursor, is no candidate); c3: bob is full now, queued;
    # c4 (no rule covers its mailbox): left unrouted, waiting for one.
    assert summary(outcomes) == [(cid(1), "assigned", BOB), (cid(3), "queued", None), (cid(4), "unrouted", None)]
    assert outcomes[0].reason == "ROUND_ROBIN: cursor ann (deactivated) not a member: bob -> bob"
    assert outcomes[1].reason == "no eligible agent: bob at capacity 2/2 -> queued"
    trigger = next(p for p, e in enumerate(d.log, start=1) if e.TOPIC == "mailroom:Agent.Deactivated")
    assert {o.decided_at for o in outcomes} == {trigger}
    s = d.assigner.state
    assert s.agents[ANN].deactivated and s.agents[ANN].active == 0 and ANN not in s.assignee.values()
    assert s.assignee == {cid(2): BOB, cid(1): BOB} and list(s.queued) == [cid(3)] and cid(4) in s.unrouted


def test_the_deactivated_agent_is_never_a_candidate_again() -> None:
    d, _ = desk_with_ann_deactivated()
    # a reopened conversation does not go back to it: routed again, and queued (bob is full)
    reopened = d.emit("mailroom:Conversation.Reopened", originator_id=cid(7), previous_assignee_id=ANN)
    assert summary(reopened) == [(cid(7), "routed", None), (cid(7), "queued", None)]
    # capacity frees up: the queue drains to bob only, oldest first
    drained = d.emit("mailroom:Agent.CapacityChanged", originator_id=BOB, capacity=4)
    assert summary(drained) == [(cid(3), "assigned", BOB), (cid(7), "assigned", BOB)]
    # new mail while only ann could take it: queued, not given to ann
    assert summary(d.arrive(8)) == [(cid(8), "routed", None), (cid(8), "queued", None)]
    # assigned to it by hand as it was being deactivated (a command that read it active): decided again
    assert summary(d.by_hand(8, ANN, None)) == [(cid(8), "queued", None)]
    assert summary(d.by_hand(4, ANN, None)) == [(cid(4), "unrouted", None)]
    s = d.assigner.state
    assert s.agents[ANN].active == 0 and ANN not in s.assignee.values()
    assert all(o.agent_id != ANN for o, _ in d.decided[-8:])


def test_rebuilding_and_deciding_again_give_the_same_state_and_decisions() -> None:
    d, _ = desk_with_ann_deactivated()
    d.emit("mailroom:Conversation.Reopened", originator_id=cid(7), previous_assignee_id=ANN)
    d.emit("mailroom:Agent.CapacityChanged", originator_id=BOB, capacity=4)
    d.arrive(8)
    d.by_hand(8, ANN, None)
    # rebuilt from the recorded decisions (as a restart does)
    rebuilt = Assigner(ZONE, d.facts.load)
    rebuilt.replaying = True
    recorded: dict[int, list[Outcome]] = {}
    for outcome, _ in d.decided:
        recorded.setdefault(outcome.decided_at, []).append(outcome)
    for position, event in enumerate(d.log, start=1):
        if is_decision(event):
            continue
        assert rebuilt.observe(position, event) == []
        for outcome in recorded.get(position, []):
            rebuilt.apply(outcome, event.timestamp)
    assert json.dumps(rebuilt.snapshot(), sort_keys=True) == json.dumps(d.assigner.snapshot(), sort_keys=True)
    # decided again over the log without its decisions (an auditor's check)
    again = Assigner(ZONE, d.facts.load)
    decided = [o for position, event in enumerate(d.log, start=1) if not is_decision(event)
               for o in again.observe(position, event)]
    assert decided == [o for o, _ in d.decided]


def test_a_snapshot_carries_the_deactivation() -> None:
    d, _ = desk_with_ann_deactivated()
    data = json.loads(json.dumps(d.assigner.snapshot()))
    restored = Assigner.restore(ZONE, d.facts.load, data)
    assert restored.state.agents[ANN].deactivated and not restored.state.agents[BOB].deactivated
    assert json.dumps(restored.snapshot(), sort_keys=True) == json.dumps(d.assigner.snapshot(), sort_keys=True)
    d.assigner = restored
    d.emit("mailroom:Agent.CapacityChanged", originator_id=BOB, capacity=None)
    assert summary(d.arrive(9))[-1] == (cid(9), "assigned", BOB)
