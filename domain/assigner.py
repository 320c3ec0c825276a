"""The assigner's state and decisions: a fold over the log, in log order (DESIGN 4).

It sees every earlier decision: a decision changes the figures the moment it is made, at
the position of the event that triggered it (`decided_at`); when the assigner later reads
its own decision events back from the log, it skips them. Rebuilding the state applies
recorded decisions at their `decided_at` instead of deciding again, so a restart resumes
exactly where it stopped; deciding again over the same log re-derives the same decisions.

Events are dispatched by their class (`_HANDLERS`), each handler typed with what it reads.

The state does not grow with history: it holds the configuration (agents, groups, rules,
contacts, accounts), one last handler per customer, one cursor per rule, and only the *live*
conversations (opened or reopened, not closed). A closed conversation leaves it entirely; when
it is reopened, what the decision needs comes from the event (the previous assignee) and from
the `FactsLoader` (the customer, the mailbox, and the rule it was routed by: `Arrived.routes`).

An agent's deactivation is a trigger too: the agent is never a candidate again, and each of its
open conversations is decided again at the Deactivated event's position (`redecide`): by its
rule if that still exists, else routed again like a new one.

`snapshot()` / `restore()` save and load the state as plain JSON data, so a start folds only
the log after the snapshot (DESIGN 3, "One follower").
"""

from __future__ import annotations

from bisect import insort
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from heapq import heapify, heappop, heappush
from typing import Any, TypeVar
from uuid import UUID
from zoneinfo import ZoneInfo

from domain.agents import Agent, AgentGroup
from domain.conditions import MessageFacts, RuleEntry, first_matching_rule
from domain.conversation import ASSIGNER, Conversation
from domain.customers import Account, Contact
from domain.events import (
    ACCOUNT_OWNER_CHANGED,
    ACCOUNT_UPDATED,
    AGENT_CAPACITY_CHANGED,
    AGENT_DEACTIVATED,
    AGENT_EDITED,
    AGENT_STATUS_CHANGED,
    ASSIGNED,
    CLOSED,
    CONTACT_OWNER_CHANGED,
    CONTACT_UPDATED,
    GROUP_DELETED,
    MEMBERS_ADDED,
    MEMBERS_REMOVED,
    REOPENED,
    RULE_CHANGED,
    RULE_DELETED,
    AccountUpdated,
    AgentCapacityChanged,
    AgentEdited,
    AgentStatusChanged,
    Assigned,
    Closed,
    ContactUpdated,
    Event,
    MembersChanged,
    OwnerChanged,
    Reopened,
    RuleChanged,
)
from domain.personal import Pseudonyms, erased_address, erased_domain, is_erased
from domain.reply import Reply
from domain.routing import RoutingRule, RuleSpec
from domain.strategies import AgentFigures, candidates, decide, why_not
from domain.values import AgentStatus, AssignmentStrategy, Condition, ConditionField, ConditionMatch, ConditionOperator

# Bump whenever the shape of `Assigner.snapshot()` (or the meaning of what it holds) changes:
# `restore` refuses any other version, and the caller folds the whole log instead.
SNAPSHOT_VERSION = 4  # 2: agents carry `deactivated`; 3: last handlers as columns; 4: customers by pseudonym

FactsLoader = Callable[[UUID], "Arrived | None"]


@dataclass(frozen=True)
class Arrived:
    """What routing needs of a conversation: where it came in, from whom, its first message, and
    the rules the assigner routed it by.

    `routes` holds (decided_at, rule_id) of every routing decision the assigner has made on the
    conversation (its `Conversation.Routed` events, and any it made and has not recorded yet), in
    any order. A reopen takes the rule of the latest one decided before the Reopened event's log
    position (`rule_before`); later ones are ignored, so a loader may read the whole stream.
    """

    mailbox_id: UUID
    customer_email: str
    facts: MessageFacts
    routes: tuple[tuple[int, UUID], ...] = ()
    erased: bool = False  # its customer was erased: the facts are tombstones, its routing is as recorded

    def rule_before(self, position: int) -> UUID | None:
        """The rule of the latest routing decided before `position` (None: never routed by then)."""
        found: tuple[int, UUID] | None = None
        for decided_at, rule_id in self.routes:
            if decided_at < position and (found is None or decided_at >= found[0]):
                found = (decided_at, rule_id)
        return None if found is None else found[1]


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
    deactivated: bool = False  # never a candidate again; holds no conversation


@dataclass(frozen=True, slots=True)
class _Conversation:
    """A live conversation: what its decisions need until it is closed."""

    customer_email: str
    mailbox_id: UUID | None  # None: not known (its facts could not be loaded)
    rule_id: UUID | None = None  # the rule it was last routed by


@dataclass(frozen=True, slots=True)
class _Waiting:
    rule_id: UUID
    spec: RuleSpec  # the rule as it was when queued (used if the rule is deleted meanwhile)
    customer_email: str


@dataclass
class State:
    agents: dict[UUID, _Agent] = field(default_factory=dict)
    groups: dict[UUID, list[UUID]] = field(default_factory=dict)
    rules: dict[UUID, RuleEntry] = field(default_factory=dict)
    contact_owner: dict[str, UUID | None] = field(default_factory=dict)
    contact_account: dict[str, UUID | None] = field(default_factory=dict)
    contact_emails: dict[UUID, str] = field(default_factory=dict)  # contact id -> email
    account_owner: dict[UUID, UUID | None] = field(default_factory=dict)
    account_domains: dict[UUID, list[str]] = field(default_factory=dict)  # creation order
    last_handler: dict[str, UUID] = field(default_factory=dict)  # customer email -> agent
    cursor: dict[UUID, UUID] = field(default_factory=dict)  # rule -> the last agent it assigned
    # Per live conversation; a closed conversation is in none of these.
    conversations: dict[UUID, _Conversation] = field(default_factory=dict)
    unrouted: dict[UUID, int] = field(default_factory=dict)  # -> position it was left unrouted (oldest first)
    queued: dict[UUID, _Waiting] = field(default_factory=dict)  # insertion order = oldest first
    assignee: dict[UUID, UUID] = field(default_factory=dict)  # open conversation -> agent
    # Indexes derived from the above (not in snapshots; `Assigner.restore` rebuilds them).
    unrouted_in: dict[UUID | None, dict[UUID, None]] = field(default_factory=dict)  # mailbox -> unrouted
    queued_in: dict[frozenset[UUID], dict[UUID, int]] = field(default_factory=dict)  # group set -> queued: seq
    domain_accounts: dict[str, list[UUID]] = field(default_factory=dict)  # domain -> accounts, oldest first
    account_rank: dict[UUID, int] = field(default_factory=dict)  # account -> creation order


class Assigner:
    def __init__(self, zone: ZoneInfo, load: FactsLoader) -> None:
        self.zone = zone
        self.load = load
        self.state = State()
        self._rule_order = 0
        self.replaying = False  # rebuilding: recorded decisions are applied, none are made
        self._rules_in: dict[UUID, list[RuleEntry]] = {}  # mailbox -> enabled rules covering it (a cache)
        self._seq = 0  # queue order across the group sets of `state.queued_in`
        self._ids: dict[UUID, UUID] = {}  # agent id -> the one object the state keeps for it
        self.pseudonyms: Pseudonyms | None = None  # erased customers' figures (domain/personal.py)
        self._erased_domains: dict[str, str] | None = None  # pseudonymous domain -> account domain (a cache)

    # ------------------------------------------------------------------ the fold

    def observe(self, position: int, event: Any) -> list[Outcome]:
        """Applies one event of the log; returns the decisions it triggered (already applied)."""
        handler = _HANDLERS.get(type(event))
        return [] if handler is None else handler(self, position, event)

    def apply(self, outcome: Outcome, at: datetime) -> None:
        """Applies a decision (made now, or recorded earlier and replayed) to the figures."""
        s = self.state
        conversation_id = outcome.conversation_id
        if outcome.kind == "unrouted":
            self._left_unrouted(conversation_id, outcome.decided_at)
        elif outcome.kind == "routed" and outcome.rule_id is not None:
            self._no_longer_unrouted(conversation_id)
            live = s.conversations.get(conversation_id)
            if live is not None:
                s.conversations[conversation_id] = replace(live, rule_id=outcome.rule_id)
        elif outcome.kind == "queued":
            live = s.conversations.get(conversation_id)
            rule_id = outcome.rule_id or (live.rule_id if live is not None else None)
            rule = s.rules.get(rule_id) if rule_id else None
            if rule_id is not None and rule is not None and conversation_id not in s.queued:
                self._enqueue(conversation_id, _Waiting(rule_id, rule.spec, live.customer_email if live else ""))
        elif outcome.kind == "assigned" and outcome.agent_id is not None:
            self._dequeue(conversation_id)
            self._assigned(conversation_id, outcome.agent_id, at, outcome.rule_id)

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
        live = s.conversations.get(conversation_id)
        if live is not None and live.customer_email:
            # the agents' own id objects (see _restored): not one per event
            s.last_handler[live.customer_email] = self._ids.setdefault(agent_id, agent_id)

    def _remember(self, conversation_id: UUID, arrived: Arrived) -> None:
        if conversation_id not in self.state.conversations:
            self.state.conversations[conversation_id] = _Conversation(self.customer(arrived.customer_email),
                                                                      arrived.mailbox_id)

    def _group_set(self, waiting: _Waiting) -> frozenset[UUID]:
        """The groups a queued conversation waits on: its rule's now, or as queued if it was deleted."""
        rule = self.state.rules.get(waiting.rule_id)
        return frozenset((rule.spec if rule is not None else waiting.spec).group_ids)

    def _enqueue(self, conversation_id: UUID, waiting: _Waiting) -> None:
        self.state.queued[conversation_id] = waiting
        self._seq += 1
        self.state.queued_in.setdefault(self._group_set(waiting), {})[conversation_id] = self._seq

    def _dequeue(self, conversation_id: UUID) -> None:
        s = self.state
        waiting = s.queued.pop(conversation_id, None)
        if waiting is None:
            return
        group_set = self._group_set(waiting)
        bucket = s.queued_in[group_set]
        del bucket[conversation_id]
        if not bucket:
            del s.queued_in[group_set]

    def _index_queue(self) -> None:
        """Indexes the queue by group set again (a rule changed: the group sets may have)."""
        s = self.state
        s.queued_in = {}
        for conversation_id, waiting in s.queued.items():
            self._seq += 1
            s.queued_in.setdefault(self._group_set(waiting), {})[conversation_id] = self._seq

    def _left_unrouted(self, conversation_id: UUID, position: int) -> None:
        s = self.state
        if conversation_id in s.unrouted:
            return
        s.unrouted[conversation_id] = position
        live = s.conversations.get(conversation_id)
        s.unrouted_in.setdefault(live.mailbox_id if live else None, {})[conversation_id] = None

    def _no_longer_unrouted(self, conversation_id: UUID) -> None:
        s = self.state
        if s.unrouted.pop(conversation_id, None) is None:
            return
        live = s.conversations.get(conversation_id)
        for mailbox_id in (live.mailbox_id if live else None, None):
            waiting = s.unrouted_in.get(mailbox_id)
            if waiting is not None and conversation_id in waiting:
                del waiting[conversation_id]
                if not waiting:
                    del s.unrouted_in[mailbox_id]
                return

    def _forget(self, conversation_id: UUID) -> None:
        """A conversation that can no longer be decided on leaves the state."""
        self._dequeue(conversation_id)
        self._no_longer_unrouted(conversation_id)
        self.state.conversations.pop(conversation_id, None)

    # ------------------------------------------------------------------ decisions

    def figures(self, at: datetime, only: Iterable[UUID | None] | None = None) -> dict[UUID, AgentFigures]:
        """Figures of every agent, or of those in `only` (the ones a decision can look at)."""
        day = at.astimezone(self.zone).date()
        agents = self.state.agents
        ids = agents if only is None else [i for i in dict.fromkeys(only) if i is not None and i in agents]
        return {
            agent_id: AgentFigures(agent_id=agent_id, name=f"{a.name} (deactivated)" if a.deactivated else a.name,
                                   status=a.status, capacity=a.capacity,
                                   active=a.active, today=a.today if a.day == day else 0,
                                   last_assigned_at=a.last_assigned_at)
            for agent_id in ids
            for a in (agents[agent_id],)
        }

    def _rules_covering(self, mailbox_id: UUID) -> list[RuleEntry]:
        """The enabled rules covering the mailbox, in routing order (cached until a rule changes)."""
        found = self._rules_in.get(mailbox_id)
        if found is None:
            found = self._rules_in[mailbox_id] = sorted(
                (r for r in self.state.rules.values() if r.spec.enabled and mailbox_id in r.spec.mailbox_ids),
                key=lambda r: (r.spec.priority, r.order))
        return found

    def route(self, conversation_id: UUID, arrived: Arrived, position: int, at: datetime,
              already_unrouted: bool = False) -> list[Outcome]:
        self._remember(conversation_id, arrived)
        if arrived.erased:
            match = self._routed_as_recorded(arrived, position)
        else:
            match = first_matching_rule(self._rules_covering(arrived.mailbox_id), arrived.mailbox_id, arrived.facts)
        if match is None:
            if already_unrouted:
                return []
            outcome = Outcome(conversation_id, "unrouted", position, reason="no enabled rule covers and matches it")
            self.apply(outcome, at)
            return [outcome]
        routed = Outcome(conversation_id, "routed", position, rule_id=match.rule_id,
                         group_ids=tuple(match.spec.group_ids))
        self.apply(routed, at)
        self._dequeue(conversation_id)
        return [routed, *self.assign(conversation_id, match.rule_id, match.spec, arrived.customer_email,
                                     position, at)]

    def _routed_as_recorded(self, arrived: Arrived, position: int) -> RuleEntry | None:
        """The rule an erased customer's conversation was routed by at `position` (None: left
        unrouted): its facts are gone, so the conditions cannot be evaluated again; what follows
        from the routing (the assignment) still is decided again."""
        for decided_at, rule_id in arrived.routes:
            if decided_at == position:
                return self.state.rules.get(rule_id)
        return None

    def assign(self, conversation_id: UUID, rule_id: UUID, spec: RuleSpec, customer: str, position: int,
               at: datetime) -> list[Outcome]:
        s = self.state
        customer = self.customer(customer)
        order = [m for m in candidates([s.groups.get(g, []) for g in spec.group_ids]) if self.active(m)]
        owner = self._owner(spec.strategy, customer)
        cursor, last_handler = s.cursor.get(rule_id), s.last_handler.get(customer)
        figures = self.figures(at, [*order, owner, last_handler, cursor])  # all that decide() reads or names
        decision = decide(spec.strategy, spec.fallback_strategy, order, figures, cursor,
                          owner_id=owner, last_handler_id=last_handler)
        if decision.agent_id is None:
            if conversation_id not in s.queued:  # one already queued keeps its place
                self._enqueue(conversation_id, _Waiting(rule_id, spec, customer))
            return [Outcome(conversation_id, "queued", position, rule_id=rule_id, strategy=decision.strategy,
                            reason=decision.reason)]
        outcome = Outcome(conversation_id, "assigned", position, rule_id=rule_id, agent_id=decision.agent_id,
                          previous_id=s.assignee.get(conversation_id), strategy=decision.strategy,
                          reason=decision.reason)
        self._dequeue(conversation_id)
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
        """The oldest account whose domains contain the email's domain (an erased customer's
        domain is a pseudonym: compared with the pseudonyms of the accounts' domains)."""
        domain = customer.rpartition("@")[2].lower()
        if is_erased(domain) and self.pseudonyms is not None:
            if self._erased_domains is None:
                self._erased_domains = {erased_domain(self.pseudonyms.domain_pseudonym(d)): d
                                        for d in self.state.domain_accounts}
            domain = self._erased_domains.get(domain, domain)
        accounts = self.state.domain_accounts.get(domain)
        return accounts[0] if accounts else None

    def customer(self, email: str) -> str:
        """How the figures key a customer: by the keyed pseudonym of the address (domain/personal.py),
        the same whether the address reads as itself or, once erased, as its tombstone; so the
        decisions come out the same before and after an erasure, and no address is kept here."""
        if self.pseudonyms is None or not email or is_erased(email):
            return email
        return erased_address(*self.pseudonyms.identity(email))

    def _set_account_domains(self, account_id: UUID, domains: list[str]) -> None:
        s = self.state
        self._erased_domains = None
        rank = s.account_rank.setdefault(account_id, len(s.account_rank))
        before = set(s.account_domains.get(account_id, ()))
        s.account_domains[account_id] = [d.lower() for d in domains]
        after = set(s.account_domains[account_id])
        for domain in before - after:
            accounts = s.domain_accounts[domain]
            accounts.remove(account_id)
            if not accounts:
                del s.domain_accounts[domain]
        for domain in after - before:
            accounts = s.domain_accounts.setdefault(domain, [])
            if not accounts or s.account_rank[accounts[-1]] < rank:
                accounts.append(account_id)  # the usual case: the newest account
            else:
                insort(accounts, account_id, key=s.account_rank.__getitem__)

    def active(self, agent_id: UUID) -> bool:
        """Not deactivated (an agent the state does not know is left to the figures)."""
        agent = self.state.agents.get(agent_id)
        return agent is None or not agent.deactivated

    def release(self, conversation_id: UUID) -> None:
        """The conversation no longer counts for its assignee: it is about to be decided again."""
        s = self.state
        agent_id = s.assignee.pop(conversation_id, None)
        if agent_id is not None and agent_id in s.agents:
            s.agents[agent_id].active = max(0, s.agents[agent_id].active - 1)

    def redecide(self, conversation_id: UUID, position: int, at: datetime) -> list[Outcome]:
        """A released conversation (its assignee was deactivated) decided again: by the rule it was
        routed by, if that rule still exists (assigned to an eligible agent of its groups, or
        queued); otherwise (never routed, or its rule deleted) routed again like a new one (or
        left unrouted, waiting for a covering rule)."""
        s = self.state
        live = s.conversations.get(conversation_id)
        rule = s.rules.get(live.rule_id) if live is not None and live.rule_id is not None else None
        if live is not None and rule is not None:
            return self.assign(conversation_id, rule.rule_id, rule.spec, live.customer_email, position, at)
        arrived = self.load(conversation_id)
        return [] if arrived is None else self.route(conversation_id, arrived, position, at)

    def in_rule_groups(self, conversation_id: UUID, agent_id: UUID) -> bool:
        """Whether the agent is a member of the groups of the conversation's rule (eligibility,
        DESIGN 4.3). A conversation never routed (assigned by hand) has no groups to check; one
        whose rule was deleted has none to be a member of."""
        live = self.state.conversations.get(conversation_id)
        rule_id = live.rule_id if live is not None else None
        if rule_id is None:
            return True
        rule = self.state.rules.get(rule_id)
        return rule is not None and agent_id in candidates([self.state.groups.get(g, []) for g in rule.spec.group_ids])

    def drain_queue(self, position: int, at: datetime) -> list[Outcome]:
        """Assigns queued conversations, oldest first, while agents are eligible for them.

        A drain only adds to agents' figures: once a group set has nobody eligible, it has nobody
        for the rest of the drain, and the conversations waiting on it are not tried. The queue is
        indexed by group set, so a drain visits each group set's oldest conversation (merged by
        age) instead of the whole queue, and tells a full group set by a look at its members."""
        out: list[Outcome] = []
        s = self.state
        if self.replaying or not s.queued:
            return out
        heads = [(next(iter(bucket.values())), group_set) for group_set, bucket in s.queued_in.items()]
        heapify(heads)
        while heads:
            _, group_set = heappop(heads)
            bucket = s.queued_in.get(group_set)
            if not bucket or not self._anyone_eligible(group_set):
                continue
            conversation_id = next(iter(bucket))
            waiting = s.queued[conversation_id]
            rule = s.rules.get(waiting.rule_id)
            spec = rule.spec if rule is not None else waiting.spec
            decided = self.assign(conversation_id, waiting.rule_id, spec, waiting.customer_email, position, at)
            if decided[0].kind != "assigned":
                continue  # not reached: someone was eligible
            out.append(decided[0])
            bucket = s.queued_in.get(group_set)
            if bucket:
                heappush(heads, (next(iter(bucket.values())), group_set))
        return out

    def _anyone_eligible(self, group_ids: Iterable[UUID]) -> bool:
        """Whether a member of the groups is eligible (as `strategies.why_not` sees it)."""
        agents, groups = self.state.agents, self.state.groups
        for group_id in group_ids:
            for member in groups.get(group_id, ()):
                a = agents.get(member)
                if (a is not None and not a.deactivated and a.status is AgentStatus.ONLINE
                        and (a.capacity is None or a.active < a.capacity)):
                    return True
        return False

    def route_unrouted(self, position: int, at: datetime, spec: RuleSpec) -> list[Outcome]:
        """Routes the unrouted conversations a rule just written can cover, oldest first. Only that
        rule changed, and none of the others matched them, so the others are not re-matched."""
        out: list[Outcome] = []
        s = self.state
        if self.replaying or not spec.enabled or not s.unrouted:
            return out
        buckets = [b for m in [*dict.fromkeys(spec.mailbox_ids), None] if (b := s.unrouted_in.get(m))]
        if not buckets:
            return out
        waiting = list(buckets[0]) if len(buckets) == 1 else sorted(
            (c for b in buckets for c in b), key=s.unrouted.__getitem__)
        for conversation_id in waiting:
            arrived = self.load(conversation_id)
            if arrived is None:
                self._no_longer_unrouted(conversation_id)
                continue
            out.extend(self.route(conversation_id, arrived, position, at, already_unrouted=True))
        return out

    # ------------------------------------------------------------------ snapshots

    def snapshot(self) -> dict[str, Any]:
        """The state as plain JSON data (str, int, bool, None, lists, dicts), `SNAPSHOT_VERSION` in it."""
        s = self.state
        specs: list[dict[str, Any]] = []
        spec_index: dict[int, int] = {}

        def spec_ref(spec: RuleSpec) -> int:  # rules and queued conversations share spec objects
            if id(spec) not in spec_index:
                spec_index[id(spec)] = len(specs)
                specs.append(_spec_data(spec))
            return spec_index[id(spec)]

        return {
            "version": SNAPSHOT_VERSION,
            "rule_order": self._rule_order,
            "agents": [[str(i), a.name, a.status.value, a.capacity, a.active, _iso(a.day), a.today,
                        _iso(a.last_assigned_at), a.deactivated] for i, a in s.agents.items()],
            "groups": [[str(g), _strs(members)] for g, members in s.groups.items()],
            "rules": [[str(r), e.order, spec_ref(e.spec)] for r, e in s.rules.items()],
            "contact_owner": [[email, _str(o)] for email, o in s.contact_owner.items()],
            "contact_account": [[email, _str(a)] for email, a in s.contact_account.items()],
            "contact_emails": [[str(c), email] for c, email in s.contact_emails.items()],
            "account_owner": [[str(a), _str(o)] for a, o in s.account_owner.items()],
            "account_domains": [[str(a), list(d)] for a, d in s.account_domains.items()],
            "last_handler": _handlers_out(s.last_handler),
            "cursor": [[str(r), str(a)] for r, a in s.cursor.items()],
            "conversations": [[str(c), v.customer_email, _str(v.mailbox_id), _str(v.rule_id)]
                              for c, v in s.conversations.items()],
            "unrouted": [[str(c), p] for c, p in s.unrouted.items()],
            "queued": [[str(c), str(w.rule_id), spec_ref(w.spec), w.customer_email] for c, w in s.queued.items()],
            "assignee": [[str(c), str(a)] for c, a in s.assignee.items()],
            "specs": specs,
        }

    @classmethod
    def restore(cls, zone: ZoneInfo, load: FactsLoader, data: dict[str, Any]) -> Assigner:
        """An assigner in the state `snapshot()` gave. ValueError for another SNAPSHOT_VERSION or
        data that is not a snapshot: the caller then folds the log from the start."""
        version = data.get("version") if isinstance(data, dict) else None
        if version != SNAPSHOT_VERSION:
            raise ValueError(f"assigner snapshot version {version!r}, expected {SNAPSHOT_VERSION}")
        try:
            return cls._restored(zone, load, data)
        except (KeyError, IndexError, TypeError, AttributeError, ValueError) as exc:
            raise ValueError(f"unreadable assigner snapshot: {exc!r}") from exc

    @classmethod
    def _restored(cls, zone: ZoneInfo, load: FactsLoader, data: dict[str, Any]) -> Assigner:
        a = cls(zone, load)
        s = a.state
        a._rule_order = int(data["rule_order"])
        specs = [_spec_from(d) for d in data["specs"]]
        s.agents = {UUID(i): _Agent(name, AgentStatus(status), capacity, active, _date(day), today, _datetime(last),
                                    bool(deactivated))
                    for i, name, status, capacity, active, day, today, last, deactivated in data["agents"]}
        s.groups = {UUID(g): _uuids(members) for g, members in data["groups"]}
        s.rules = {UUID(r): RuleEntry(UUID(r), specs[spec], order) for r, order, spec in data["rules"]}
        s.contact_owner = {email: _uuid(o) for email, o in data["contact_owner"]}
        s.contact_account = {email: _uuid(o) for email, o in data["contact_account"]}
        s.contact_emails = {UUID(c): email for c, email in data["contact_emails"]}
        s.account_owner = {UUID(c): _uuid(o) for c, o in data["account_owner"]}
        # One UUID object per agent, shared by every entry naming it: the last handlers are one
        # per customer ever served, and a UUID each would make the state grow with history.
        a._ids = {i: i for i in s.agents}
        agent_ids = {str(i): i for i in s.agents}

        def agent(text: str) -> UUID:
            return agent_ids.get(text) or UUID(text)

        s.last_handler = _handlers_in(data["last_handler"], agent)
        s.cursor = {UUID(r): agent(a) for r, a in data["cursor"]}
        s.conversations = {UUID(c): _Conversation(email, _uuid(m), _uuid(r))
                           for c, email, m, r in data["conversations"]}
        s.queued = {UUID(c): _Waiting(UUID(r), specs[spec], email) for c, r, spec, email in data["queued"]}
        a._index_queue()
        s.assignee = {UUID(c): agent(a) for c, a in data["assignee"]}
        for account_id, domains in data["account_domains"]:
            a._set_account_domains(UUID(account_id), list(domains))
        for conversation_id, position in data["unrouted"]:
            a._left_unrouted(UUID(conversation_id), int(position))
        return a


# ---------------------------------------------------------------------- snapshot values

def _handlers_out(handlers: dict[str, UUID]) -> dict[str, list[Any]]:
    """The last handlers (one per customer ever served: the snapshot's biggest part) as columns,
    agents by index: reading them back makes no list or UUID text per customer, whose freed
    memory would stay with the process."""
    agents: dict[UUID, int] = {}
    return {"emails": list(handlers),
            "by": [agents.setdefault(a, len(agents)) for a in handlers.values()],
            "agents": [str(a) for a in agents]}


def _handlers_in(data: dict[str, list[Any]], agent: Callable[[str], UUID]) -> dict[str, UUID]:
    agents = [agent(a) for a in data["agents"]]
    return dict(zip(data["emails"], (agents[i] for i in data["by"]), strict=True))


def _str(value: UUID | None) -> str | None:
    return None if value is None else str(value)


def _strs(values: Iterable[UUID]) -> list[str]:
    return [str(v) for v in values]


def _uuid(value: str | None) -> UUID | None:
    return None if value is None else UUID(value)


def _uuids(values: Iterable[str]) -> list[UUID]:
    return [UUID(v) for v in values]


def _iso(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


def _date(value: str | None) -> date | None:
    return None if value is None else date.fromisoformat(value)


def _datetime(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _spec_data(spec: RuleSpec) -> dict[str, Any]:
    return {
        "name": spec.name, "mailbox_ids": _strs(spec.mailbox_ids), "group_ids": _strs(spec.group_ids),
        "strategy": spec.strategy.value, "priority": spec.priority, "enabled": spec.enabled,
        "match": spec.match.value, "fallback_strategy": spec.fallback_strategy.value,
        "conditions": [[c.field.value, c.operator.value, c.value, c.header_name] for c in spec.conditions],
    }


def _spec_from(d: dict[str, Any]) -> RuleSpec:
    return RuleSpec(
        name=d["name"], mailbox_ids=_uuids(d["mailbox_ids"]), group_ids=_uuids(d["group_ids"]),
        strategy=AssignmentStrategy(d["strategy"]), priority=d["priority"], enabled=d["enabled"],
        match=ConditionMatch(d["match"]), fallback_strategy=AssignmentStrategy(d["fallback_strategy"]),
        conditions=[Condition(ConditionField(f), ConditionOperator(o), value, header)
                    for f, o, value, header in d["conditions"]],
    )


# ---------------------------------------------------------------------- event handlers
#
# Events made by eventsourcing's @event decorator have classes only at run time: domain/events.py
# names each with the shape its handlers read (a Protocol), checked against the class on import.

E = TypeVar("E")

_HANDLERS: dict[type[Any], Callable[[Assigner, int, Any], list[Outcome]]] = {}


def _on(cls: type[E]) -> Callable[[Callable[[Assigner, int, E], list[Outcome]]],
                                  Callable[[Assigner, int, E], list[Outcome]]]:
    """Registers the decorated handler for events of class `cls` (exactly; no subclasses)."""
    def register(handler: Callable[[Assigner, int, E], list[Outcome]]) -> Callable[[Assigner, int, E], list[Outcome]]:
        _HANDLERS[cls] = handler
        return handler
    return register


@_on(Agent.Created)
def _agent_created(a: Assigner, p: int, e: Agent.Created) -> list[Outcome]:
    a.state.agents[e.originator_id] = _Agent(e.name, e.status, e.capacity)
    return a.drain_queue(p, e.timestamp)


@_on(AGENT_EDITED)
def _agent_edited(a: Assigner, p: int, e: AgentEdited) -> list[Outcome]:
    agent = a.state.agents.get(e.originator_id)
    if agent is not None:
        agent.name = e.name
    return []


@_on(AGENT_STATUS_CHANGED)
def _status_changed(a: Assigner, p: int, e: AgentStatusChanged) -> list[Outcome]:
    agent = a.state.agents.get(e.originator_id)
    if agent is None:
        return []
    agent.status = e.status
    return a.drain_queue(p, e.timestamp)


@_on(AGENT_CAPACITY_CHANGED)
def _capacity_changed(a: Assigner, p: int, e: AgentCapacityChanged) -> list[Outcome]:
    agent = a.state.agents.get(e.originator_id)
    if agent is None:
        return []
    agent.capacity = e.capacity
    return a.drain_queue(p, e.timestamp)


@_on(AGENT_DEACTIVATED)
def _agent_deactivated(a: Assigner, p: int, e: Event) -> list[Outcome]:
    """Never a candidate again, and its open conversations are decided again, oldest assignment
    first (in a replay: only released; their recorded decisions follow)."""
    s = a.state
    agent = s.agents.get(e.originator_id)
    if agent is None:
        return []
    agent.deactivated = True
    held = [c for c, holder in s.assignee.items() if holder == e.originator_id]
    for conversation_id in held:
        a.release(conversation_id)
    if a.replaying:
        return []
    return [outcome for conversation_id in held for outcome in a.redecide(conversation_id, p, e.timestamp)]


@_on(AgentGroup.Created)
def _group_created(a: Assigner, p: int, e: AgentGroup.Created) -> list[Outcome]:
    a.state.groups[e.originator_id] = list(e.member_ids)
    return a.drain_queue(p, e.timestamp)


@_on(MEMBERS_ADDED)
def _members_added(a: Assigner, p: int, e: MembersChanged) -> list[Outcome]:
    a.state.groups.setdefault(e.originator_id, []).extend(e.agent_ids)
    return a.drain_queue(p, e.timestamp)


@_on(MEMBERS_REMOVED)
def _members_removed(a: Assigner, p: int, e: MembersChanged) -> list[Outcome]:
    leaving = set(e.agent_ids)
    a.state.groups[e.originator_id] = [m for m in a.state.groups.get(e.originator_id, []) if m not in leaving]
    return []


@_on(GROUP_DELETED)
def _group_deleted(a: Assigner, p: int, e: Event) -> list[Outcome]:
    a.state.groups.pop(e.originator_id, None)
    return []


def _rule_written(a: Assigner, p: int, e: RuleChanged) -> list[Outcome]:
    old = a.state.rules.get(e.originator_id)
    if old is None:
        a._rule_order += 1
    order = old.order if old is not None else a._rule_order
    a.state.rules[e.originator_id] = RuleEntry(rule_id=e.originator_id, spec=e.spec, order=order)
    a._rules_in.clear()
    a._index_queue()
    return [*a.route_unrouted(p, e.timestamp, e.spec), *a.drain_queue(p, e.timestamp)]


_on(RoutingRule.Created)(_rule_written)
_on(RULE_CHANGED)(_rule_written)


@_on(RULE_DELETED)
def _rule_deleted(a: Assigner, p: int, e: Event) -> list[Outcome]:
    a.state.rules.pop(e.originator_id, None)
    a.state.cursor.pop(e.originator_id, None)
    a._rules_in.clear()
    a._index_queue()
    return []


@_on(Account.Created)
def _account_created(a: Assigner, p: int, e: Account.Created) -> list[Outcome]:
    a._set_account_domains(e.originator_id, e.domains)
    a.state.account_owner[e.originator_id] = e.owner_id
    return []


@_on(ACCOUNT_UPDATED)
def _account_updated(a: Assigner, p: int, e: AccountUpdated) -> list[Outcome]:
    a._set_account_domains(e.originator_id, e.domains)
    return []


@_on(ACCOUNT_OWNER_CHANGED)
def _account_owner(a: Assigner, p: int, e: OwnerChanged) -> list[Outcome]:
    a.state.account_owner[e.originator_id] = e.owner_id
    return []


@_on(Contact.Created)
def _contact_created(a: Assigner, p: int, e: Contact.Created) -> list[Outcome]:
    customer = a.customer(e.email)
    a.state.contact_emails[e.originator_id] = customer
    a.state.contact_owner[customer] = e.owner_id
    a.state.contact_account[customer] = e.account_id
    return []


@_on(CONTACT_UPDATED)
def _contact_updated(a: Assigner, p: int, e: ContactUpdated) -> list[Outcome]:
    email = a.state.contact_emails.get(e.originator_id)
    if email is not None:
        a.state.contact_account[email] = e.account_id
    return []


@_on(CONTACT_OWNER_CHANGED)
def _contact_owner(a: Assigner, p: int, e: OwnerChanged) -> list[Outcome]:
    email = a.state.contact_emails.get(e.originator_id)
    if email is not None:
        a.state.contact_owner[email] = e.owner_id
    return []


@_on(Conversation.Opened)
def _opened(a: Assigner, p: int, e: Conversation.Opened) -> list[Outcome]:
    a.state.conversations[e.originator_id] = _Conversation(a.customer(e.customer_email), e.mailbox_id)
    return []


@_on(Conversation.MessageReceived)
def _message_received(a: Assigner, p: int, e: Conversation.MessageReceived) -> list[Outcome]:
    if e.originator_version != 2 or a.replaying:  # only the opening message routes; follow-ups stay put
        return []
    arrived = a.load(e.originator_id)
    if arrived is None:
        return []
    return a.route(e.originator_id, arrived, p, e.timestamp)


@_on(Reply.Queued)
def _replied(a: Assigner, p: int, e: Reply.Queued) -> list[Outcome]:
    """DESIGN 3: a customer's last handler is the agent who most recently replied to them (the
    owner strategies fall back to it). A reply into a closed conversation precedes its reopening
    in the log, so the conversation may not be live here: the loader knows its customer."""
    if e.author_id is None:
        return []
    live = a.state.conversations.get(e.conversation_id)
    arrived = None if live is not None else a.load(e.conversation_id)
    customer = live.customer_email if live is not None else a.customer(arrived.customer_email) if arrived else ""
    if customer:
        a.state.last_handler[customer] = a._ids.setdefault(e.author_id, e.author_id)
    return []


@_on(ASSIGNED)
def _assigned(a: Assigner, p: int, e: Assigned) -> list[Outcome]:
    if e.decided_by == ASSIGNER:
        return []  # applied when it was decided
    # Assigned by hand: it no longer waits, for an agent or for a covering rule.
    a._dequeue(e.originator_id)
    a._no_longer_unrouted(e.originator_id)
    a._assigned(e.originator_id, e.agent_id, e.timestamp, None)
    if not a.active(e.agent_id):  # assigned as its agent was being deactivated: decided again
        a.release(e.originator_id)
        if a.replaying:
            return []
        return [*a.redecide(e.originator_id, p, e.timestamp), *a.drain_queue(p, e.timestamp)]
    return a.drain_queue(p, e.timestamp)


@_on(CLOSED)
def _closed(a: Assigner, p: int, e: Closed) -> list[Outcome]:
    s = a.state
    agent_id = s.assignee.pop(e.originator_id, None)
    a._forget(e.originator_id)
    if agent_id is not None and agent_id in s.agents:
        s.agents[agent_id].active = max(0, s.agents[agent_id].active - 1)
        return a.drain_queue(p, e.timestamp)
    return []


@_on(REOPENED)
def _reopened(a: Assigner, p: int, e: Reopened) -> list[Outcome]:
    """Back to the previous assignee if still eligible, else routed again. The closed conversation
    left the state: the loader gives its customer, mailbox and rule again (in a replay too, for
    the recorded decisions that follow)."""
    conversation_id = e.originator_id
    arrived = a.load(conversation_id)
    if arrived is not None:
        a.state.conversations[conversation_id] = _Conversation(
            a.customer(arrived.customer_email), arrived.mailbox_id, arrived.rule_before(p))
    if a.replaying:
        return []
    previous = e.previous_assignee_id
    agent = a.figures(e.timestamp, [previous]).get(previous) if previous is not None and a.active(previous) else None
    if agent is not None and why_not(agent) is None and a.in_rule_groups(conversation_id, agent.agent_id):
        outcome = Outcome(conversation_id, "assigned", p, agent_id=previous, strategy=None,
                          reason=f"reopened: back to previous assignee {agent.name}")
        a._assigned(conversation_id, agent.agent_id, e.timestamp, None)
        return [outcome]
    return [] if arrived is None else a.route(conversation_id, arrived, p, e.timestamp)
