"""The assigner fold as it was before snapshots and bounded memory (domain/assigner.py at 93e10ad),
kept verbatim below this docstring as the oracle of tests/unit/test_assigner_reference.py: the new
fold must make exactly the same decisions. Not used by the application."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from domain.conditions import MessageFacts, RuleEntry, first_matching_rule
from domain.conversation import ASSIGNER
from domain.routing import RuleSpec
from domain.strategies import AgentFigures, candidates, decide, why_not
from domain.values import AgentStatus, AssignmentStrategy

FactsLoader = Callable[[UUID], "Arrived | None"]


@dataclass(frozen=True)
class Arrived:
    """What routing needs of a conversation: where it came in, from whom, its first message."""

    mailbox_id: UUID
    customer_email: str
    facts: MessageFacts


@dataclass(frozen=True)
class Outcome:
    """A decision to record on a conversation."""

    conversation_id: UUID
    kind: str  # "routed", "unrouted", "queued", "assigned"
    decided_at: int
    rule_id: UUID | None = None
    group_ids: tuple[UUID, ...] = ()
    agent_id: UUID | None = None
    previous_id: UUID | None = None
    strategy: AssignmentStrategy | None = None
    reason: str = ""


@dataclass
class _Agent:
    name: str
    status: AgentStatus
    capacity: int | None
    active: int = 0
    day: date | None = None
    today: int = 0
    last_assigned_at: datetime | None = None


@dataclass
class _Waiting:
    rule_id: UUID
    spec: RuleSpec
    customer_email: str


@dataclass
class State:
    agents: dict[UUID, _Agent] = field(default_factory=dict)
    groups: dict[UUID, list[UUID]] = field(default_factory=dict)
    rules: dict[UUID, RuleEntry] = field(default_factory=dict)
    contact_owner: dict[str, UUID | None] = field(default_factory=dict)
    contact_account: dict[str, UUID | None] = field(default_factory=dict)
    account_owner: dict[UUID, UUID | None] = field(default_factory=dict)
    account_domains: dict[UUID, list[str]] = field(default_factory=dict)
    last_handler: dict[str, UUID] = field(default_factory=dict)
    cursor: dict[UUID, UUID] = field(default_factory=dict)
    unrouted: dict[UUID, int] = field(default_factory=dict)  # conversation -> position opened (oldest first)
    queued: dict[UUID, _Waiting] = field(default_factory=dict)  # insertion order = oldest first
    assignee: dict[UUID, UUID] = field(default_factory=dict)  # open conversation -> agent
    customer: dict[UUID, str] = field(default_factory=dict)  # conversation -> customer email
    rule_of: dict[UUID, UUID] = field(default_factory=dict)  # routed conversation -> its rule
    contact_emails: dict[UUID, str] = field(default_factory=dict)  # contact id -> email


class Assigner:
    def __init__(self, zone: ZoneInfo, load: FactsLoader) -> None:
        self.zone = zone
        self.load = load
        self.state = State()
        self._rule_order = 0
        self.replaying = False  # rebuilding: recorded decisions are applied, none are made

    # ------------------------------------------------------------------ the fold

    def observe(self, position: int, event: Any) -> list[Outcome]:
        """Applies one event of the log; returns the decisions it triggered (already applied)."""
        topic: str = type(event).TOPIC
        handler = _HANDLERS.get(topic)
        return [] if handler is None else handler(self, position, event)

    def apply(self, outcome: Outcome, at: datetime) -> None:
        """Applies a decision (made now, or recorded earlier and replayed) to the figures."""
        s = self.state
        if outcome.kind == "unrouted":
            s.unrouted.setdefault(outcome.conversation_id, outcome.decided_at)
        elif outcome.kind == "routed" and outcome.rule_id is not None:
            s.unrouted.pop(outcome.conversation_id, None)
            s.rule_of[outcome.conversation_id] = outcome.rule_id
        elif outcome.kind == "queued":
            rule_id = outcome.rule_id or s.rule_of.get(outcome.conversation_id)
            rule = s.rules.get(rule_id) if rule_id else None
            if rule_id is not None and rule is not None and outcome.conversation_id not in s.queued:
                s.queued[outcome.conversation_id] = _Waiting(
                    rule_id, rule.spec, s.customer.get(outcome.conversation_id, ""))
        elif outcome.kind == "assigned" and outcome.agent_id is not None:
            s.queued.pop(outcome.conversation_id, None)
            self._assigned(outcome.conversation_id, outcome.agent_id, at, outcome.rule_id)

    def _assigned(self, conversation_id: UUID, agent_id: UUID, at: datetime, rule_id: UUID | None) -> None:
        s = self.state
        previous = s.assignee.pop(conversation_id, None)
        if previous is not None and previous in s.agents:
            s.agents[previous].active = max(0, s.agents[previous].active - 1)
        agent = s.agents.get(agent_id)
        if agent is not None:
            day = at.astimezone(self.zone).date()
            if agent.day != day:
                agent.day, agent.today = day, 0
            agent.today += 1
            agent.active += 1
            agent.last_assigned_at = at
        s.assignee[conversation_id] = agent_id
        if rule_id is not None:
            s.cursor[rule_id] = agent_id
        customer = s.customer.get(conversation_id)
        if customer:
            s.last_handler[customer] = agent_id

    # ------------------------------------------------------------------ decisions

    def figures(self, at: datetime, only: Iterable[UUID | None] | None = None) -> dict[UUID, AgentFigures]:
        """Figures of every agent, or of those in `only` (the ones a decision can look at)."""
        day = at.astimezone(self.zone).date()
        agents = self.state.agents
        ids = agents if only is None else [i for i in dict.fromkeys(only) if i is not None and i in agents]
        return {
            agent_id: AgentFigures(agent_id=agent_id, name=a.name, status=a.status, capacity=a.capacity,
                                   active=a.active, today=a.today if a.day == day else 0,
                                   last_assigned_at=a.last_assigned_at)
            for agent_id in ids
            for a in (agents[agent_id],)
        }

    def route(self, conversation_id: UUID, arrived: Arrived, position: int, at: datetime,
              already_unrouted: bool = False) -> list[Outcome]:
        match = first_matching_rule(list(self.state.rules.values()), arrived.mailbox_id, arrived.facts)
        if match is None:
            if already_unrouted:
                return []
            outcome = Outcome(conversation_id, "unrouted", position, reason="no enabled rule covers and matches it")
            self.apply(outcome, at)
            return [outcome]
        routed = Outcome(conversation_id, "routed", position, rule_id=match.rule_id,
                         group_ids=tuple(match.spec.group_ids))
        self.apply(routed, at)
        self.state.customer.setdefault(conversation_id, arrived.customer_email)
        self.state.queued.pop(conversation_id, None)
        return [routed, *self.assign(conversation_id, match.rule_id, match.spec, arrived.customer_email,
                                     position, at)]

    def assign(self, conversation_id: UUID, rule_id: UUID, spec: RuleSpec, customer: str, position: int,
               at: datetime) -> list[Outcome]:
        s = self.state
        order = candidates([s.groups.get(g, []) for g in spec.group_ids])
        owner = self._owner(spec.strategy, customer)
        cursor, last_handler = s.cursor.get(rule_id), s.last_handler.get(customer)
        figures = self.figures(at, [*order, owner, last_handler, cursor])  # all that decide() reads or names
        decision = decide(spec.strategy, spec.fallback_strategy, order, figures, cursor,
                          owner_id=owner, last_handler_id=last_handler)
        if decision.agent_id is None:
            s.queued[conversation_id] = _Waiting(rule_id, spec, customer)
            return [Outcome(conversation_id, "queued", position, rule_id=rule_id, strategy=decision.strategy,
                            reason=decision.reason)]
        outcome = Outcome(conversation_id, "assigned", position, rule_id=rule_id, agent_id=decision.agent_id,
                          previous_id=s.assignee.get(conversation_id), strategy=decision.strategy,
                          reason=decision.reason)
        s.queued.pop(conversation_id, None)
        self._assigned(conversation_id, decision.agent_id, at, rule_id)
        return [outcome]

    def _owner(self, strategy: AssignmentStrategy, customer: str) -> UUID | None:
        s = self.state
        if strategy is AssignmentStrategy.CONTACT_OWNER:
            return s.contact_owner.get(customer)
        if strategy is AssignmentStrategy.ACCOUNT_OWNER:
            account = s.contact_account.get(customer) or self._account_by_domain(customer)
            return s.account_owner.get(account) if account else None
        return None

    def _account_by_domain(self, customer: str) -> UUID | None:
        domain = customer.rpartition("@")[2].lower()
        for account_id, domains in self.state.account_domains.items():  # oldest account first
            if domain in domains:
                return account_id
        return None

    def in_rule_groups(self, conversation_id: UUID, agent_id: UUID) -> bool:
        """Whether the agent is a member of the groups of the conversation's rule (eligibility,
        DESIGN 4.3). A conversation never routed (assigned by hand) has no groups to check; one
        whose rule was deleted has none to be a member of."""
        rule_id = self.state.rule_of.get(conversation_id)
        if rule_id is None:
            return True
        rule = self.state.rules.get(rule_id)
        return rule is not None and agent_id in candidates([self.state.groups.get(g, []) for g in rule.spec.group_ids])

    def drain_queue(self, position: int, at: datetime) -> list[Outcome]:
        """Assigns queued conversations, oldest first, while agents are eligible for them."""
        out: list[Outcome] = []
        if self.replaying:
            return out
        for conversation_id, waiting in list(self.state.queued.items()):
            rule = self.state.rules.get(waiting.rule_id)
            spec = rule.spec if rule is not None else waiting.spec
            decided = self.assign(conversation_id, waiting.rule_id, spec, waiting.customer_email, position, at)
            out.extend(o for o in decided if o.kind == "assigned")
            if decided and decided[0].kind == "queued":
                self.state.queued[conversation_id] = waiting  # keeps its place in the queue
        return out

    def route_unrouted(self, position: int, at: datetime) -> list[Outcome]:
        out: list[Outcome] = []
        if self.replaying:
            return out
        for conversation_id in list(self.state.unrouted):
            arrived = self.load(conversation_id)
            if arrived is None:
                self.state.unrouted.pop(conversation_id, None)
                continue
            out.extend(self.route(conversation_id, arrived, position, at, already_unrouted=True))
        return out


# ---------------------------------------------------------------------- event handlers

def _at(event: Any) -> datetime:
    return event.timestamp  # type: ignore[no-any-return]


def _agent_created(a: Assigner, p: int, e: Any) -> list[Outcome]:
    a.state.agents[e.originator_id] = _Agent(e.name, e.status, e.capacity)
    return a.drain_queue(p, _at(e))


def _agent_changed(field_name: str) -> Callable[[Assigner, int, Any], list[Outcome]]:
    def handler(a: Assigner, p: int, e: Any) -> list[Outcome]:
        agent = a.state.agents.get(e.originator_id)
        if agent is None:
            return []
        if field_name == "edited":
            agent.name = e.name
            return []
        setattr(agent, field_name, getattr(e, field_name))
        return a.drain_queue(p, _at(e))
    return handler


def _group_created(a: Assigner, p: int, e: Any) -> list[Outcome]:
    a.state.groups[e.originator_id] = list(e.member_ids)
    return a.drain_queue(p, _at(e))


def _members_added(a: Assigner, p: int, e: Any) -> list[Outcome]:
    a.state.groups.setdefault(e.originator_id, []).extend(e.agent_ids)
    return a.drain_queue(p, _at(e))


def _members_removed(a: Assigner, p: int, e: Any) -> list[Outcome]:
    leaving = set(e.agent_ids)
    a.state.groups[e.originator_id] = [m for m in a.state.groups.get(e.originator_id, []) if m not in leaving]
    return []


def _group_deleted(a: Assigner, p: int, e: Any) -> list[Outcome]:
    a.state.groups.pop(e.originator_id, None)
    return []


def _rule_written(a: Assigner, p: int, e: Any) -> list[Outcome]:
    old = a.state.rules.get(e.originator_id)
    if old is None:
        a._rule_order += 1
    order = old.order if old is not None else a._rule_order
    a.state.rules[e.originator_id] = RuleEntry(rule_id=e.originator_id, spec=e.spec, order=order)
    return [*a.route_unrouted(p, _at(e)), *a.drain_queue(p, _at(e))]


def _rule_deleted(a: Assigner, p: int, e: Any) -> list[Outcome]:
    a.state.rules.pop(e.originator_id, None)
    a.state.cursor.pop(e.originator_id, None)
    return []


def _account_written(a: Assigner, p: int, e: Any) -> list[Outcome]:
    a.state.account_domains[e.originator_id] = [d.lower() for d in e.domains]
    if hasattr(e, "owner_id"):
        a.state.account_owner[e.originator_id] = e.owner_id
    return []


def _account_owner(a: Assigner, p: int, e: Any) -> list[Outcome]:
    a.state.account_owner[e.originator_id] = e.owner_id
    return []


def _contact_created(a: Assigner, p: int, e: Any) -> list[Outcome]:
    a.state.contact_emails[e.originator_id] = e.email
    a.state.contact_owner[e.email] = e.owner_id
    a.state.contact_account[e.email] = e.account_id
    return []


def _contact_updated(a: Assigner, p: int, e: Any) -> list[Outcome]:
    email = _contact_email(a, e)
    if email is not None:
        a.state.contact_account[email] = e.account_id
    return []


def _contact_owner(a: Assigner, p: int, e: Any) -> list[Outcome]:
    email = _contact_email(a, e)
    if email is not None:
        a.state.contact_owner[email] = e.owner_id
    return []


def _contact_email(a: Assigner, e: Any) -> str | None:
    return a.state.contact_emails.get(e.originator_id)


def _opened(a: Assigner, p: int, e: Any) -> list[Outcome]:
    a.state.customer[e.originator_id] = e.customer_email
    return []


def _message_received(a: Assigner, p: int, e: Any) -> list[Outcome]:
    if e.originator_version != 2 or a.replaying:  # only the opening message routes; follow-ups stay put
        return []
    arrived = a.load(e.originator_id)
    if arrived is None:
        return []
    return a.route(e.originator_id, arrived, p, _at(e))


def _assigned(a: Assigner, p: int, e: Any) -> list[Outcome]:
    if e.decided_by == ASSIGNER:
        return []  # applied when it was decided
    # Assigned by hand: it no longer waits, for an agent or for a covering rule.
    a.state.queued.pop(e.originator_id, None)
    a.state.unrouted.pop(e.originator_id, None)
    a._assigned(e.originator_id, e.agent_id, _at(e), None)
    return a.drain_queue(p, _at(e))


def _closed(a: Assigner, p: int, e: Any) -> list[Outcome]:
    s = a.state
    agent_id = s.assignee.pop(e.originator_id, None)
    s.queued.pop(e.originator_id, None)
    s.unrouted.pop(e.originator_id, None)
    if agent_id is not None and agent_id in s.agents:
        s.agents[agent_id].active = max(0, s.agents[agent_id].active - 1)
        return a.drain_queue(p, _at(e))
    return []


def _reopened(a: Assigner, p: int, e: Any) -> list[Outcome]:
    """Back to the previous assignee if still eligible, else routed again."""
    if a.replaying:
        return []
    previous = e.previous_assignee_id
    figures = a.figures(_at(e))
    agent = figures.get(previous) if previous is not None else None
    if agent is not None and why_not(agent) is None and a.in_rule_groups(e.originator_id, agent.agent_id):
        outcome = Outcome(e.originator_id, "assigned", p, agent_id=previous, strategy=None,
                          reason=f"reopened: back to previous assignee {agent.name}")
        a._assigned(e.originator_id, previous, _at(e), None)
        return [outcome]
    arrived = a.load(e.originator_id)
    return [] if arrived is None else a.route(e.originator_id, arrived, p, _at(e))


_HANDLERS: dict[str, Callable[[Assigner, int, Any], list[Outcome]]] = {
    "mailroom:Agent.Created": _agent_created,
    "mailroom:Agent.Edited": _agent_changed("edited"),
    "mailroom:Agent.StatusChanged": _agent_changed("status"),
    "mailroom:Agent.CapacityChanged": _agent_changed("capacity"),
    "mailroom:AgentGroup.Created": _group_created,
    "mailroom:AgentGroup.MembersAdded": _members_added,
    "mailroom:AgentGroup.MembersRemoved": _members_removed,
    "mailroom:AgentGroup.Deleted": _group_deleted,
    "mailroom:RoutingRule.Created": _rule_written,
    "mailroom:RoutingRule.Changed": _rule_written,
    "mailroom:RoutingRule.Deleted": _rule_deleted,
    "mailroom:Account.Created": _account_written,
    "mailroom:Account.Updated": _account_written,
    "mailroom:Account.OwnerChanged": _account_owner,
    "mailroom:Contact.Created": _contact_created,
    "mailroom:Contact.Updated": _contact_updated,
    "mailroom:Contact.OwnerChanged": _contact_owner,
    "mailroom:Conversation.Opened": _opened,
    "mailroom:Conversation.MessageReceived": _message_received,
    "mailroom:Conversation.Assigned": _assigned,
    "mailroom:Conversation.Closed": _closed,
    "mailroom:Conversation.Reopened": _reopened,
}
