"""Assignment decisions per second over a growing history: 1,000 agents in 100 groups (10 each),
100 routing rules (LOAD_BALANCED, ROUND_ROBIN, IDLE_FIRST, CONTACT_OWNER with a fallback), one
mailbox, 300 accounts and 3,000 contacts with owners, then a log grown to 10k, 100k and 1M events.

The history (untimed) is a realistic mix, built fast: synthetic InboundMail arrivals taken in
as intake takes them in (250 per batch: the raw message, HTML of every third, body text and
header map stored as blobs first, then one `take_in` save: new conversations, and replies
threading into open ones by In-Reply-To, a few into closed ones, which reopens them); the
decisions on them (Routed, then Assigned or Queued, or LeftUnrouted; decided_by "assigner",
decided_at the trigger's position, as the assigner records them) made by the builder directly,
which is faster than the real assigner (see History); agent status changes (about one agent in
ten AWAY or OFFLINE at a time); and closes that keep about 1,000 conversations open, so the
agents' figures are alike at every history length. After each stretch the builder moves the
assigner's stored position to the last trigger it decided on, as a leader that decided up to
there. The log is grown in place: to 10k, measured, grown to 100k, measured, and so on; a row's
history is the log's length when its measurement starts.

Per history and backend, on freshly bootstrapped services (a restarted process):
  rebuild        an AssignerProcess without snapshots: `bring_to(stored position)` folds the
                 whole log (allowed to grow with H; reported apart).
  snapshot       that state taken as a snapshot and saved (`take_snapshot`; its JSON size),
  restore        and the restarted `services.assigner.consumer` brought to the same position
                 from it (no log after it to read); the two states must be the same (checked).
                 One untimed `services.assigner.catch_up()` then decides on the events after the
                 last decision of the build.
  arrivals       --decisions new conversations are taken in (untimed, 250 per take_in).
  decide only    a copy of the assigner's state (Assigner.restore of its snapshot), whose facts
                 come from memory, observes the new events (Opened, MessageReceived, ...): the
                 pure routing and assignment work, no database, nothing recorded.
  decide+record  the follower's catch_up() (`services.assigner`, an AssignerProcess consumer):
                 reads the new events from the log, loads each conversation's facts (its events
                 and its text and header blobs), decides, loads the conversations, saves the
                 decisions with its position in one transaction, 500 events a batch.
Both count one decision per new conversation; they must reach the same outcomes (checked).
With --rounds R the arrivals and both timings are repeated R times and the best round counts;
each round's conversations are closed afterwards (untimed, queued ones first: see settle), so
the log grows by about 6 events per decision each round. --profile adds one more round per
history with decide+record under cProfile (not counted). The goal: the cost per decision
at the longest history is at most 1.2x that at the shortest (the first of --histories).

    .venv/bin/python -m bench.assignment [--histories 10000,100000,1000000] [--decisions 2000]
        [--backend sqlite|postgres|both] [--rounds 3] [--profile]
"""

from __future__ import annotations

import argparse
import random
import re
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate
from pydantic import SecretStr

from adapters.settings import Settings
from adapters.snapshots import Snapshot
from api.bootstrap import bootstrap
from api.processes.assigner import NAME as ASSIGNER_NAME
from api.processes.assigner import AssignerProcess, recorded_outcome
from api.services import Services
from bench.common import BACKENDS, fresh_database, profiled, table
from domain.agents import Agent, AgentGroup
from domain.assigner import Arrived, Assigner, Outcome, State
from domain.claims import Claim
from domain.commands.agents import EMAIL_CLAIM
from domain.commands.intake import Arrival
from domain.conditions import MessageFacts, RuleEntry, first_matching_rule
from domain.conversation import ASSIGNER, CLOSED, Conversation, conversation_id
from domain.customers import Account, Contact
from domain.mail import InboundMail, content_key, conversation_ref, message_key
from domain.routing import RoutingRule, RuleSpec
from domain.values import (
    AgentStatus,
    AssignmentStrategy,
    Condition,
    ConditionField,
    ConditionMatch,
    ConditionOperator,
    ServerSettings,
    TransportSecurity,
)

GOAL = 1.2  # cost per decision at the longest history / at the shortest
SEED = 23
AGENTS, GROUP_SIZE = 1000, 10
DOMAIN_RULES, DOMAINS_PER_RULE = 90, 10  # rules 0..89 each cover 10 customer domains
DOMAINS = DOMAIN_RULES * DOMAINS_PER_RULE
ACCOUNTS, CONTACTS = 300, 3000
KEYWORDS = ("invoice", "refund", "password", "cancel", "damaged", "discount", "login", "tracking")
OPEN_POOL = 1000  # conversations left open while building; older ones are closed
CLOSED_KEPT = 500  # recently closed conversations that a reply may reopen
INTAKE_BATCH = 250  # arrivals per take_in, as the intake worker batches them
SAVE_BATCH = 500  # aggregates per save() while setting up and closing
EVENTS_PER_ARRIVAL = 5  # about: key, opened, received, routed, assigned, closed; a reply: key, received
S = AssignmentStrategy
STRATEGIES = (S.LOAD_BALANCED, S.ROUND_ROBIN, S.IDLE_FIRST, S.CONTACT_OWNER)
FALLBACKS = (S.LOAD_BALANCED, S.ROUND_ROBIN, S.IDLE_FIRST)
_WORDS = ["order", "account", "payment", "delivery", "parcel", "number", "address", "please", "could", "thanks",
          "again", "today", "yesterday", "still", "not", "yet", "already", "received", "charged", "twice",
          "missing", "wrong", "size", "replacement", "exchange", "confirm", "subscription", "renewal", "plan",
          "upgrade", "screen", "browser", "error", "message"]
_SUBJECTS = ("Order {n} not delivered", "Question about my subscription", "Change delivery address",
             "Wrong item in parcel {n}", "Payment failed for order {n}", "Where is my order {n}?",
             "Invoice {n} is missing", "Refund for order {n}", "Cannot login since yesterday",
             "Damaged goods, order {n}", "Urgent: account locked", "Tracking number {n} unknown")


def open_services(url: str) -> Services:
    """Mailroom wired by bootstrap; mail-server logins always succeed (no IMAP here)."""
    settings = Settings(database_url=url, secret_key=SecretStr("bench-secret-key-0123456789"))
    return bootstrap(settings, verify_login=lambda *a: None)


def head(services: Services) -> int:
    return int(services.app.recorder.max_notification_id() or 0)


# -- the history ------------------------------------------------------------------------------


@dataclass
class _Thread:
    """A conversation as the customer side of the builder knows it: whom to reply as, to what."""

    conversation_id: UUID
    last_message_id: str
    subject: str
    sender: str


@dataclass
class _Rule:
    rule_id: UUID
    spec: RuleSpec
    members: list[UUID]  # of its groups, in rule group order
    test: Callable[[str, str], bool]  # (sender domain, casefolded subject) -> matches


class History:
    """The directory set up once, then conversations grown onto the log.

    Arrivals go through take_in; the decisions on them are made here, directly, and recorded
    on the conversations as the assigner records its own (Routed, Assigned, Queued,
    LeftUnrouted, decided_by "assigner", decided_at = the position of the trigger): the first
    matching rule as first_matching_rule finds it, then the rule's strategy over the eligible
    members (ONLINE, below capacity) as this builder counts them, without the reason texts'
    detail. The real assigner would take about 1.5 ms a decision, too slow to build 1M events in
    minutes. The builder follows the log of each batch to keep its copies of the open
    conversations current (no loads), and closes the oldest beyond OPEN_POOL."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.rng = random.Random(SEED)
        self.mailbox_id: UUID | None = None
        self.address = "support@mailroom.example"
        self.agents: dict[UUID, Agent] = {}
        self.away: deque[Agent] = deque()
        self.contacts: list[str] = []
        self.owners: dict[str, UUID] = {}  # contact email -> owning agent
        self.rules: list[_Rule] = []  # in routing order: priority, then creation
        self.open: dict[UUID, _Thread] = {}  # insertion order = oldest first
        self.closed: deque[_Thread] = deque()  # the latest CLOSED_KEPT closed: some replies reopen them
        self.live: dict[UUID, Conversation] = {}  # current copies of the open and recently closed
        self.active: Counter[UUID] = Counter()
        self.assigned: Counter[UUID] = Counter()
        self.last: dict[UUID, int] = {}  # agent -> position of their latest assignment
        self.cursor: dict[UUID, UUID] = {}  # rule -> agent last assigned by round robin
        self.sent = 0  # messages made so far (message-ids, sources, senders)
        self.blobs: list[bytes] = []  # of the mails made since the last take_in
        self.decided_to = 0  # the position of the last trigger the builder decided on
        self.checks = 500  # routes still to check against first_matching_rule

    def save(self, aggregates: Sequence[Aggregate]) -> None:
        for start in range(0, len(aggregates), SAVE_BATCH):
            self.services.app.save(*aggregates[start:start + SAVE_BATCH])

    # ---------------------------------------------------------------- the directory

    def setup(self) -> None:
        rng = self.rng
        written, _ = self.services.app.bind_mailbox(
            self.address, "bench-pass-0123", "Support", None,
            # A closed port on loopback: a `mailroom serve` over this database (bench/startup.py)
            # finds the server refusing at once, instead of waiting on DNS for a made-up name.
            ServerSettings("127.0.0.1", 1, TransportSecurity.TLS, "support"))
        self.mailbox_id = written.id
        made: list[Aggregate] = []
        agents: list[Agent] = []
        for i in range(AGENTS):  # as create_agent does it: the agent and its email claim
            email = f"agent{i}@mailroom.example"
            agent = Agent(name=f"Agent {i}", email=email, status=AgentStatus.ONLINE,
                          capacity=rng.choice([None, 5, 8, 10, 10, 15]))
            claim = Claim(EMAIL_CLAIM, email)
            claim.take(agent.id)
            agents.append(agent)
            made += [agent, claim]
        self.agents = {a.id: a for a in agents}
        groups = [AgentGroup(name=f"Group {g}", member_ids=[a.id for a in agents[g * GROUP_SIZE:][:GROUP_SIZE]])
                  for g in range(AGENTS // GROUP_SIZE)]
        made += groups
        rules = [RoutingRule(spec=spec) for spec in self._specs([g.id for g in groups])]
        made += rules
        members = {g.id: g.member_ids for g in groups}
        self.rules = sorted((_Rule(r.id, r.spec, list(dict.fromkeys(m for g in r.spec.group_ids for m in members[g])),
                                   _test(r.spec)) for r in rules),
                            key=lambda r: r.spec.priority)  # sorted() is stable: creation order breaks ties
        accounts = [Account(name=f"Customer {k}", domains=[f"c{k}.example"], owner_id=rng.choice(agents).id)
                    for k in range(ACCOUNTS)]
        made += accounts
        for j in range(CONTACTS):
            k = rng.randrange(DOMAINS)
            email = f"person{j}@c{k}.example"
            owner = rng.choice(agents).id
            self.contacts.append(email)
            self.owners[email] = owner
            made.append(Contact(email=email, name=f"Person {j}", account_id=accounts[k].id if k < ACCOUNTS else None,
                                owner_id=owner))
        self.save(made)

    def _specs(self, groups: list[UUID]) -> list[RuleSpec]:
        """90 rules by customer domain (ANY of 10 FROM_DOMAIN conditions, one or two groups), 8 by
        subject keyword and 2 by regex, ahead of them by priority; strategies in turn."""
        rng, specs = self.rng, []
        assert self.mailbox_id is not None
        for i in range(DOMAIN_RULES + len(KEYWORDS) + 2):
            if i < DOMAIN_RULES:
                conditions = [Condition(ConditionField.FROM_DOMAIN, ConditionOperator.EQUALS, f"c{k}.example")
                              for k in range(i * DOMAINS_PER_RULE, (i + 1) * DOMAINS_PER_RULE)]
                priority, match = 100 + rng.randint(0, 50), ConditionMatch.ANY
                rule_groups = [groups[i]] + ([groups[(i + 37) % len(groups)]] if rng.random() < 0.3 else [])
            elif i < DOMAIN_RULES + len(KEYWORDS):
                conditions = [Condition(ConditionField.SUBJECT, ConditionOperator.CONTAINS,
                                        KEYWORDS[i - DOMAIN_RULES])]
                priority, match = 20 + i % 5, ConditionMatch.ALL
                rule_groups = [groups[(i * 7) % len(groups)], groups[(i * 7 + 1) % len(groups)]]
            else:
                pattern = r"(?i)\burgent\b" if i % 2 else r"(?i)order \d{5}\b.*\bnot delivered"
                conditions = [Condition(ConditionField.SUBJECT, ConditionOperator.MATCHES_REGEX, pattern)]
                priority, match = 10, ConditionMatch.ALL
                rule_groups = [groups[(i * 11) % len(groups)]]
            specs.append(RuleSpec(name=f"Rule {i}", mailbox_ids=[self.mailbox_id], group_ids=rule_groups,
                                  strategy=STRATEGIES[i % len(STRATEGIES)], priority=priority, match=match,
                                  conditions=conditions, fallback_strategy=FALLBACKS[i % len(FALLBACKS)]))
        return specs

    # ---------------------------------------------------------------- mail

    def _mail(self, sender: str, subject: str, reply_to: str | None) -> InboundMail:
        """A parsed message, and its blobs (raw message, HTML every third, body text, header map)
        queued in `self.blobs` for take_in to store first, as intake does (adapters/inbound.py)."""
        rng, n = self.rng, self.sent
        self.sent += 1
        message_id = f"bench{n}.{rng.getrandbits(32):08x}@{sender.partition('@')[2]}"
        text = " ".join(rng.choices(_WORDS, k=rng.randint(40, 120))).capitalize() + ".\n\nKind regards"
        date = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(seconds=n * 30)
        headers = {
            "received": f"from mx{n % 7}.example by imap.mailroom.example; {date:%a, %d %b %Y %H:%M:%S} +0000",
            "from": f"Customer <{sender}>", "to": self.address, "subject": subject,
            "date": f"{date:%a, %d %b %Y %H:%M:%S} +0000", "message-id": f"<{message_id}>",
            "mime-version": "1.0", "content-type": "text/plain; charset=utf-8",
        }
        if reply_to:
            headers["in-reply-to"] = f"<{reply_to}>"
        raw = ("".join(f"{k.title()}: {v}\r\n" for k, v in headers.items()) + "\r\n"
               + text.replace("\n", "\r\n")).encode()
        html = f"<div><p>{text}</p></div>".encode() if n % 3 == 0 else None
        mail = InboundMail(
            message_id=message_id, source=f"imap:INBOX:1700000000:{n + 1}", from_address=sender,
            from_name="Customer", to=[self.address], cc=[], subject=subject, date=date, text=text,
            html_blob=content_key(html) if html else None, raw_blob=content_key(raw), size=len(raw),
            in_reply_to=[reply_to] if reply_to else [], references=[reply_to] if reply_to else [], headers=headers)
        self.blobs += [raw, *([html] if html else []), mail.text_data(), mail.headers_data()]
        return mail

    def _new_mail(self) -> tuple[InboundMail, _Thread]:
        rng = self.rng
        roll = rng.random()
        if roll < 0.7:
            sender = rng.choice(self.contacts)  # a known contact, with an owner
        elif roll < 0.97:
            sender = f"someone{self.sent}@c{rng.randrange(DOMAINS)}.example"
        else:
            sender = f"someone{self.sent}@elsewhere{rng.randrange(100)}.example"  # only keyword rules match
        subject = rng.choice(_SUBJECTS).format(n=rng.randint(10_000, 99_999))
        mail = self._mail(sender, subject, None)
        cid = conversation_id(conversation_ref(message_key(mail.message_id)))
        return mail, _Thread(cid, mail.message_id, subject, sender)

    def arrivals(self, count: int, replies: float = 0.25, reopens: float = 0.01) -> list[Arrival]:
        """New conversations, and replies into open ones or (rarely) into recently closed ones."""
        rng, recent = self.rng, list(self.open.values())[-300:]
        out: list[InboundMail] = []
        for _ in range(count):
            roll = rng.random()
            thread = None
            if roll < replies and recent:
                thread = rng.choice(recent)
            elif roll < replies + reopens and self.closed:
                thread = self.closed[rng.randrange(len(self.closed))]
                self.closed.remove(thread)
                self.open[thread.conversation_id] = thread
            if thread is not None:
                mail = self._mail(thread.sender, f"Re: {thread.subject}", thread.last_message_id)
                thread.last_message_id = mail.message_id
            else:
                mail, thread = self._new_mail()
                self.open[thread.conversation_id] = thread
            out.append(mail)
        return [Arrival(source=m.source, size=m.size, raw_blob=m.raw_blob, mail=m) for m in out]

    def take_in(self, arrivals: list[Arrival]) -> None:
        """As intake does it: the batch's blobs stored first (one write), then take_in (one save)."""
        assert self.mailbox_id is not None
        self.services.blobs.put_many(self.blobs)
        self.blobs = []
        result = self.services.app.take_in(self.mailbox_id, arrivals)
        assert result.taken == len(arrivals), result

    # ---------------------------------------------------------------- growing

    def grow(self, target: int) -> None:
        """Arrivals, decisions, status changes and closes until the log holds about `target` events."""
        while (before := head(self.services)) < target:
            n = max(1, min(INTAKE_BATCH, (target - before) // EVENTS_PER_ARRIVAL))
            self.take_in(self.arrivals(n))
            touched: dict[UUID, Aggregate] = {}
            for position, kind, conversation in self._follow(before + 1, head(self.services)):
                self.decided_to = position
                if kind == "reopened":
                    self._reopened(conversation, position)
                else:
                    self._route(conversation, position)
                touched[conversation.id] = conversation
            touched.update((c.id, c) for c in self.close_oldest(OPEN_POOL))
            if n >= 20:
                touched.update((a.id, a) for a in self._statuses(n // 20))
            self.save(list(touched.values()))
        self.hand_over()

    def hand_over(self) -> None:
        """The assigner goes on after the last trigger decided here, as after a leader that
        decided up to there: its stored position moves there (the rest it decides itself)."""
        with self.services.database.transaction() as tx:
            tx.execute("UPDATE rm_positions SET position = ? WHERE view = ? AND position < ?",
                       (self.decided_to, ASSIGNER_NAME, self.decided_to))

    def _follow(self, start: int, stop: int) -> list[tuple[int, str, Conversation]]:
        """Applies the batch's conversation events to the copies kept here; the triggers in it."""
        app, triggers = self.services.app, []
        for n in app.recorder.select_notifications(start, stop - start + 1, stop=stop):
            if not n.topic.startswith("mailroom:Conversation."):
                continue
            cid = n.originator_id
            assert isinstance(cid, UUID)
            conversation = self.live.get(cid)
            if conversation is None and n.originator_version > 1:  # decided by the worker: not followed
                conversation = app.repository.get(cid)
            elif conversation is None or n.originator_version > conversation.version:
                event: Any = app.mapper.to_domain_event(n)
                conversation = event.mutate(conversation)
            assert isinstance(conversation, Conversation)
            self.live[cid] = conversation
            if n.topic == "mailroom:Conversation.Reopened":
                triggers.append((n.id, "reopened", conversation))
            elif n.topic == "mailroom:Conversation.MessageReceived" and n.originator_version == 2:
                triggers.append((n.id, "opened", conversation))
        return triggers

    def _eligible(self, agent_id: UUID) -> bool:
        agent = self.agents[agent_id]
        return agent.status is AgentStatus.ONLINE and (agent.capacity is None or self.active[agent_id] < agent.capacity)

    def _route(self, conversation: Conversation, position: int) -> None:
        domain = conversation.customer_email.rpartition("@")[2].lower()
        subject = conversation.subject.casefold()
        rule = next((r for r in self.rules if r.test(domain, subject)), None)
        if self.checks:  # the same rule as the assigner's routing picks
            self.checks -= 1
            facts = MessageFacts(conversation.customer_email, [self.address], [], conversation.subject, "", {}, False)
            entries = [RuleEntry(r.rule_id, r.spec, order) for order, r in enumerate(self.rules)]
            found = first_matching_rule(entries, conversation.mailbox_id, facts)
            assert (found and found.rule_id) == (rule and rule.rule_id), (conversation.subject, domain)
        if rule is None:
            conversation.leave_unrouted("no enabled rule covers and matches it", position)
            return
        conversation.route(rule.rule_id, list(rule.spec.group_ids), position)
        pool = [m for m in rule.members if self._eligible(m)]
        strategy = rule.spec.strategy
        if not pool:
            conversation.queue(strategy, "no eligible agent (bench history) -> queued", position)
            return
        chosen = self.owners.get(conversation.customer_email) if strategy is S.CONTACT_OWNER else None
        if chosen not in pool:
            chosen = None
            if strategy is S.CONTACT_OWNER:
                strategy = rule.spec.fallback_strategy
        if chosen is None and strategy is S.ROUND_ROBIN:
            cursor = self.cursor.get(rule.rule_id)
            after = rule.members.index(cursor) + 1 if cursor in rule.members else 0
            rotation = rule.members[after:] + rule.members[:after]
            chosen = next(m for m in rotation if m in pool)
        elif chosen is None and strategy is S.IDLE_FIRST:
            chosen = min(pool, key=lambda m: (self.assigned[m], self.active[m]))
        elif chosen is None:
            chosen = min(pool, key=lambda m: (self.active[m], self.assigned[m], self.last.get(m, 0)))
        self._assign(conversation, chosen, strategy, position, rule.rule_id)

    def _reopened(self, conversation: Conversation, position: int) -> None:
        previous = conversation.previous_assignee_id
        if previous is not None and self._eligible(previous):
            self._assign(conversation, previous, None, position, None)
        else:
            self._route(conversation, position)

    def _assign(self, conversation: Conversation, agent_id: UUID, strategy: S | None, position: int,
                rule_id: UUID | None) -> None:
        if conversation.assignee_id is not None:
            self.active[conversation.assignee_id] -= 1
        conversation.assign(agent_id, conversation.assignee_id, strategy,
                            f"{strategy.value if strategy else 'reopened'}: (bench history) -> "
                            f"{self.agents[agent_id].name}", ASSIGNER, position, rule_id)
        self.active[agent_id] += 1
        self.assigned[agent_id] += 1
        self.last[agent_id] = position
        if rule_id is not None:
            self.cursor[rule_id] = agent_id

    def close_oldest(self, keep: int) -> list[Conversation]:
        """Closes the oldest open conversations beyond `keep` (as close_conversation does)."""
        return self.close(list(self.open)[:max(0, len(self.open) - keep)])

    def close(self, conversation_ids: Sequence[UUID]) -> list[Conversation]:
        """Closes these open conversations, in this order; the changed aggregates, to save."""
        closing = []
        for cid in conversation_ids:
            thread = self.open.pop(cid)
            conversation = self.live.get(cid) or self.services.app.repository.get(cid)
            assert isinstance(conversation, Conversation)
            self.live[cid] = conversation
            if conversation.status != CLOSED:
                if conversation.assignee_id is not None:
                    self.active[conversation.assignee_id] -= 1
                conversation.close(conversation.assignee_id)
                closing.append(conversation)
            self.closed.append(thread)
            if len(self.closed) > CLOSED_KEPT:
                gone = self.closed.popleft().conversation_id
                if gone not in self.open:
                    self.live.pop(gone, None)
        return closing

    def _statuses(self, count: int) -> list[Agent]:
        """Agents go AWAY or OFFLINE and come back (about one in ten away at a time)."""
        changed: list[Agent] = []
        for _ in range(count):
            if len(self.away) > AGENTS // 10 or (self.away and self.rng.random() < 0.5):
                agent = self.away.popleft()
                agent.change_status(AgentStatus.ONLINE)
            else:
                agent = self.agents[self.rng.choice(list(self.agents))]
                if agent.status is not AgentStatus.ONLINE:
                    continue
                agent.change_status(self.rng.choice([AgentStatus.AWAY, AgentStatus.AWAY, AgentStatus.OFFLINE]))
                self.away.append(agent)
            changed.append(agent)
        return changed

    def handed_over(self, state: State) -> None:
        """After the real assigner decided (a measurement): its figures count from now on, and the
        copies kept here may be stale (it may have assigned queued conversations)."""
        self.live.clear()
        self.active = Counter({agent_id: a.active for agent_id, a in state.agents.items()})
        self.cursor = dict(state.cursor)

    def mix(self) -> Counter[str]:
        """Events in the log by topic."""
        table_name = self.services.app.recorder.events_table_name  # type: ignore[attr-defined]
        rows = self.services.database.query(f"SELECT topic, COUNT(*) AS n FROM {table_name} GROUP BY topic")
        return Counter({str(r["topic"]).removeprefix("mailroom:"): int(r["n"]) for r in rows})


def _test(spec: RuleSpec) -> Callable[[str, str], bool]:
    """The rule's conditions, for the three shapes the benchmark's rules have: (sender domain,
    casefolded subject) -> matches. History._route checks its first routes against
    first_matching_rule."""
    [kind] = {c.operator for c in spec.conditions}
    if kind is ConditionOperator.EQUALS:
        domains = frozenset(c.value for c in spec.conditions)
        return lambda domain, subject: domain in domains
    if kind is ConditionOperator.CONTAINS:
        word = spec.conditions[0].value.casefold()
        return lambda domain, subject: word in subject
    pattern = re.compile(spec.conditions[0].value)
    return lambda domain, subject: pattern.search(subject) is not None


# -- the measurement --------------------------------------------------------------------------


class NoSnapshots:
    """A snapshot store that holds none and keeps none: the assigner folds the whole log."""

    def load(self, name: str, at_most: int) -> Snapshot | None:
        return None

    def save(self, name: str, snapshot: Snapshot) -> None:
        pass


@dataclass
class Row:
    backend: str
    history: int
    rebuild_s: float  # the state folded from the whole log, no snapshot
    snapshot_s: float  # the state taken as a snapshot and saved
    snapshot_bytes: int
    restore_s: float  # the state restored from that snapshot
    decisions: int
    decide_s: list[float] = field(default_factory=list)
    record_s: list[float] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    state: dict[str, int] = field(default_factory=dict)  # sizes in the assigner's state before deciding

    @property
    def decide_us(self) -> float:
        return min(self.decide_s) / self.decisions * 1e6

    @property
    def record_us(self) -> float:
        return min(self.record_s) / self.decisions * 1e6


def decide_only(process: AssignerProcess, start: int, stop: int,
                conversations: list[UUID]) -> tuple[float, list[Outcome]]:
    """Seconds for a copy of the assigner's state (restored from its snapshot, untimed) to decide
    on the log's events start..stop, with the facts of the new conversations read beforehand
    (untimed); and its outcomes."""
    app = process.app
    events = [(n.id, app.mapper.to_domain_event(n))
              for n in app.recorder.select_notifications(start, stop - start + 1, stop=stop)]
    facts: dict[UUID, Arrived | None] = {cid: process.facts(cid) for cid in conversations}
    assert process.assigner is not None
    probe = Assigner.restore(process.zone, facts.get, process.assigner.snapshot())
    outcomes: list[Outcome] = []
    began = time.perf_counter()
    for position, event in events:
        outcomes.extend(probe.observe(position, event))
    return time.perf_counter() - began, outcomes


def recorded_since(services: Services, start: int) -> list[Outcome]:
    app, out = services.app, []
    while batch := app.recorder.select_notifications(start, 1000):
        out += [o for n in batch if (o := recorded_outcome(app.mapper.to_domain_event(n))) is not None]
        start = batch[-1].id + 1
    return out


def _key(o: Outcome) -> tuple[object, ...]:
    """What a recorded decision keeps (a Queued event does not name its rule)."""
    return (o.conversation_id, o.kind, o.decided_at, o.agent_id, None if o.kind == "queued" else o.rule_id, o.reason)


def restarted(history: History) -> tuple[Services, float, float, int, float]:
    """A restart on the same database (history.services are replaced: the restarted assigner is
    the one that goes on). The state at the stored position is folded from the whole log by an
    assigner without snapshots, then saved as the snapshot a running assigner takes, then
    restored from it by the restarted assigner (the same state: checked). Seconds to fold,
    seconds and bytes of the snapshot, seconds to restore."""
    url = history.services.settings.database_url
    history.services.close()
    services = history.services = open_services(url)
    process: AssignerProcess = services.assigner.consumer  # type: ignore[assignment]
    position = process.stored_position()
    scratch = AssignerProcess(services.app, services.database, process.zone, NoSnapshots())  # type: ignore[arg-type]
    rebuild_s = _seconds(lambda: scratch.bring_to(position))
    scratch.snapshots = services.snapshots
    snapshot_s = _seconds(scratch.take_snapshot)
    size = services.database.query("SELECT LENGTH(state) AS n FROM follower_snapshots WHERE name = ?",
                                   (ASSIGNER_NAME,))[0]["n"]
    restore_s = _seconds(lambda: process.bring_to(position))
    assert process.snapshot_at == position, "not restored from the snapshot"
    assert scratch.assigner is not None and process.assigner is not None
    assert scratch.assigner.snapshot() == process.assigner.snapshot(), "restored state differs"
    return services, rebuild_s, snapshot_s, int(size), restore_s


def measure(history: History, backend: str, decisions: int, rounds: int, profile: bool) -> tuple[Row, str]:
    """Restarts (see restarted), then decides on new arrivals `rounds` times, and once more under
    cProfile if asked for (not counted)."""
    services, rebuild_s, snapshot_s, size, restore_s = restarted(history)
    follower = services.assigner
    process: AssignerProcess = follower.consumer  # type: ignore[assignment]
    events = head(services)
    follower.catch_up()  # the closes and status changes after the build's last decision
    assert process.assigner is not None
    state = process.assigner.state
    row = Row(backend, events, rebuild_s, snapshot_s, size, restore_s, decisions, state={
        "assigned, open": len(state.assignee), "queued": len(state.queued), "unrouted": len(state.unrouted),
        "live conversations": len(state.conversations), "last handlers": len(state.last_handler)})
    report = ""
    opened: list[UUID] = []
    for r in range(rounds + profile):
        if r:
            settle(history, process, opened)
        start = head(services) + 1
        made = [history.arrivals(min(INTAKE_BATCH, decisions - i), replies=0.0, reopens=0.0)
                for i in range(0, decisions, INTAKE_BATCH)]
        opened = list(history.open)[-decisions:]
        for arrivals in made:
            history.take_in(arrivals)
        stop = head(services)
        seconds, outcomes = decide_only(process, start, stop, opened)
        if r < rounds:
            row.decide_s.append(seconds)
            row.record_s.append(_seconds(follower.catch_up))
        else:
            report = profiled(follower.catch_up)
        recorded = recorded_since(services, stop + 1)
        assert sorted(map(_key, recorded), key=str) == sorted(map(_key, outcomes), key=str), "decisions differ"
        assert {o.conversation_id for o in recorded} == set(opened), "not every arrival was decided"
        row.outcomes.update(o.kind for o in recorded if o.kind != "routed")
    settle(history, process, opened)
    return row, report


def settle(history: History, process: AssignerProcess, opened: list[UUID]) -> None:
    """Closes a round's conversations, as before it (untimed): queued ones first, with any other
    queued conversation (a close frees a place, and the assigner then tries the queue again)."""
    assert process.assigner is not None
    state = process.assigner.state
    queued = [c for c in state.queued if c in history.open]
    history.handed_over(state)
    history.save(history.close([*queued, *(c for c in opened if c not in state.queued)]))
    history.services.assigner.catch_up()
    assert process.assigner is not None
    history.handed_over(process.assigner.state)


def _seconds(run: Any) -> float:
    began = time.perf_counter()
    run()
    return time.perf_counter() - began


def run_backend(backend: str, histories: list[int], decisions: int, rounds: int,
                profile: bool) -> tuple[list[Row], list[str], Counter[str], list[str]]:
    """Sets up, then grows the log to each history length in turn and measures there."""
    rows, builds, reports = [], [], []
    with fresh_database(backend) as url:
        history = History(open_services(url))
        try:
            began = time.perf_counter()
            history.setup()
            for h in histories:
                history.grow(h)
                builds.append(f"{backend} to {h:,} {time.perf_counter() - began:.0f}")
                row, report = measure(history, backend, decisions, rounds, profile)
                rows.append(row)
                if report:
                    reports.append(f"--- profile: decide+record, {backend}, history {row.history:,} ---\n{report}")
                print(f"  {backend} {row.history:,} events: rebuild {row.rebuild_s:.1f} s, restore "
                      f"{row.restore_s:.2f} s, decide only "
                      f"{row.decide_us:,.0f} us, decide+record {row.record_us:,.0f} us per decision", flush=True)
                began = time.perf_counter()
            mix = history.mix()
        finally:
            history.services.close()
    return rows, builds, mix, reports


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.assignment", description=__doc__.split("\n\n")[0])
    parser.add_argument("--histories", default="10000,100000,1000000",
                        help="log lengths to measure at, ascending (default 10000,100000,1000000)")
    parser.add_argument("--decisions", type=int, default=2000, help="new arrivals decided per round (default 2000)")
    parser.add_argument("--backend", choices=[*BACKENDS, "both"], default="sqlite", help="default sqlite")
    parser.add_argument("--rounds", type=int, default=3, help="measurements per history; best counts (default 3)")
    parser.add_argument("--profile", action="store_true", help="cProfile the last decide+record of each history")
    args = parser.parse_args(argv)
    histories = sorted(int(h) for h in args.histories.split(","))
    backends = BACKENDS if args.backend == "both" else (args.backend,)
    rows: list[Row] = []
    builds: list[str] = []
    mixes: list[tuple[str, Counter[str]]] = []
    reports: list[str] = []
    began = time.perf_counter()
    for backend in backends:
        backend_rows, backend_builds, mix, backend_reports = run_backend(
            backend, histories, args.decisions, args.rounds, args.profile)
        rows += backend_rows
        builds += backend_builds
        mixes.append((backend, mix))
        reports += backend_reports
    print(f"\nassignment: {AGENTS:,} agents in {AGENTS // GROUP_SIZE} groups, {DOMAIN_RULES + len(KEYWORDS) + 2} "
          f"rules, {args.decisions:,} new conversations decided per round, best of {args.rounds}")
    out, sizes = [], []
    for row in rows:
        base = next(r for r in rows if r.backend == row.backend)
        ratio = row.record_us / base.record_us
        goal = "" if row is base else f"{'ok' if ratio <= GOAL else 'OVER'} {GOAL}x"
        out.append([f"{row.history:,}", row.backend, f"{row.rebuild_s:.2f}", f"{row.restore_s:.2f}",
                    f"{row.decide_us:,.0f}",
                    f"{row.decide_us / base.decide_us:.2f}x", f"{row.decisions / min(row.record_s):,.0f}",
                    f"{row.record_us:,.0f}", " ".join(f"{s / row.decisions * 1e6:,.0f}" for s in row.record_s),
                    f"{ratio:.2f}x", goal])
        sizes.append([f"{row.history:,}", row.backend, f"{row.snapshot_bytes / 1024:,.0f}", f"{row.snapshot_s:.2f}",
                      *(f"{n:,}" for n in row.state.values()),
                      ", ".join(f"{k} {v:,}" for k, v in sorted(row.outcomes.items()))])
    print(table(["history", "backend", "rebuild s", "restore s", "decide-only us", "vs first", "decide+record /s",
                 "us/decision", "each round", "vs first", "goal"], out))
    print("\nthe assigner's snapshot (JSON KB, seconds to take and save it), its state before deciding, "
          "and the decisions of all rounds")
    print(table(["history", "backend", "snapshot KB", "save s", *rows[0].state, "decisions"], sizes))
    for backend, mix in mixes:
        total = sum(mix.values())
        print(f"log at the end ({backend}, {total:,} events): "
              + ", ".join(f"{k} {v / total:.1%}" for k, v in mix.most_common(10)))
    print("building s: " + ", ".join(builds) + f"; total run {time.perf_counter() - began:.0f} s")
    for report in reports:
        print(f"\n{report}")


if __name__ == "__main__":
    main()
