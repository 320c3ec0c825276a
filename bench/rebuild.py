"""Projection rebuild rate: N events of a realistic admin mix are appended (many aggregates
per save(), through mailroom's own aggregates and application), then the directory view is
rebuilt from the whole log (projections.rebuild.rebuild), and, on a fresh Services instance,
followed from position 0 by the live driver (Projections.catch_up), on SQLite and PostgreSQL.
catch_up runs first (on the restarted instance), so each rebuild also replaces populated live
tables, as in production; the rebuild is repeated --rounds times and the best counts.

    .venv/bin/python -m bench.rebuild [--events N] [--rounds R] [--profile]
"""

from __future__ import annotations

import argparse
import random
from collections import Counter
from collections.abc import Sequence
from uuid import UUID, uuid4

from eventsourcing.domain import Aggregate

from api.bootstrap import Services
from bench.common import BACKENDS, fresh_database, profiled, services, table, timed
from domain.agents import Agent, AgentGroup
from domain.claims import Claim
from domain.commands.agents import EMAIL_CLAIM
from domain.customers import Account, Contact
from domain.mailbox import Mailbox
from domain.routing import RoutingRule, RuleSpec
from domain.values import (
    AgentStatus,
    AssignmentStrategy,
    Condition,
    ConditionField,
    ConditionOperator,
    MailProtocol,
    ServerSettings,
    TransportSecurity,
)
from projections.rebuild import rebuild

GOAL = 20_000  # events/s for a PostgreSQL rebuild
BATCH = 500  # events per save() while appending
MAILBOXES = 20
STRATEGIES = list(AssignmentStrategy)  # the fallback stays LOAD_BALANCED


class Population:
    """Makes a seeded, realistic mix of directory events on mailroom's aggregates, kept live
    in memory so later events change earlier aggregates."""

    def __init__(self, seed: int = 7) -> None:
        self.rng = random.Random(seed)
        self.agents: list[Agent] = []
        self.groups: list[AgentGroup] = []
        self.rules: list[RoutingRule] = []
        self.accounts: list[Account] = []
        self.contacts: list[Contact] = []
        self.mailboxes = [self._mailbox(i) for i in range(MAILBOXES)]
        self.pending: dict[UUID, Aggregate] = {m.id: m for m in self.mailboxes}
        self.kinds: Counter[str] = Counter()
        self.actions = [  # (weight, action): the mix
            (8, self.new_agent), (30, self.agent_status), (3, self.agent_capacity), (2, self.new_group),
            (5, self.add_members), (4, self.remove_members), (2, self.new_rule), (5, self.change_rule),
            (4, self.new_account), (3, self.update_account), (2, self.account_owner),
            (15, self.new_contact), (4, self.update_contact), (3, self.contact_owner),
            (1, self.mailbox_settings),
        ]

    def batch(self, size: int) -> list[Aggregate]:
        """Aggregates holding at least `size` pending events (or fewer, at the very start)."""
        weights = [w for w, _ in self.actions]
        functions = [f for _, f in self.actions]
        while sum(len(a.pending_events) for a in self.pending.values()) < size:
            self.rng.choices(functions, weights)[0]()
        batch, self.pending = list(self.pending.values()), {}
        for aggregate in batch:
            self.kinds.update(type(e).__qualname__ for e in aggregate.pending_events)
        return batch

    def _touch(self, *aggregates: Aggregate) -> None:
        for aggregate in aggregates:
            self.pending[aggregate.id] = aggregate

    def _some_agents(self, low: int, high: int) -> list[UUID]:
        count = min(len(self.agents), self.rng.randint(low, high))
        return [a.id for a in self.rng.sample(self.agents, count)]

    def _mailbox(self, i: int) -> Mailbox:
        server = ServerSettings(f"imap{i}.example.com", 993, TransportSecurity.TLS, f"support{i}")
        return Mailbox(address=f"support{i}@example.com", display_name=f"Support {i}",
                       protocol=MailProtocol.IMAP, incoming=server, outgoing=None, secret_ref=uuid4())

    def mailbox_settings(self) -> None:
        mailbox = self.rng.choice(self.mailboxes)
        server = ServerSettings(mailbox.incoming.host, self.rng.choice([143, 993]),
                                self.rng.choice(list(TransportSecurity)), mailbox.incoming.username)
        mailbox.change_settings(mailbox.display_name, MailProtocol.IMAP, server, None)
        self._touch(mailbox)

    def new_agent(self) -> None:  # as create_agent does it: the agent and its email claim
        email = f"agent{len(self.agents)}@example.com"
        agent = Agent(name=f"Agent {len(self.agents)}", email=email, status=AgentStatus.ONLINE, capacity=5)
        claim = Claim(EMAIL_CLAIM, email)
        claim.take(agent.id)
        self.agents.append(agent)
        self._touch(agent, claim)

    def agent_status(self) -> None:
        if self.agents:
            agent = self.rng.choice(self.agents)
            agent.change_status(self.rng.choice([s for s in AgentStatus if s is not agent.status]))
            self._touch(agent)

    def agent_capacity(self) -> None:
        if self.agents:
            agent = self.rng.choice(self.agents)
            agent.change_capacity(self.rng.choice([None, 3, 5, 10, 20]))
            self._touch(agent)

    def new_group(self) -> None:
        group = AgentGroup(name=f"Group {len(self.groups)}", member_ids=self._some_agents(2, 8))
        self.groups.append(group)
        self._touch(group)

    def add_members(self) -> None:
        if self.groups:
            group = self.rng.choice(self.groups)
            fresh = group.joining(self._some_agents(1, 3))
            if fresh and len(group.member_ids) < 30:
                group.add_members(fresh)
                self._touch(group)

    def remove_members(self) -> None:
        if self.groups:
            group = self.rng.choice(self.groups)
            if len(group.member_ids) > 1:
                group.remove_members(self.rng.sample(group.member_ids, self.rng.randint(1, 2)))
                self._touch(group)

    def _spec(self, name: str) -> RuleSpec:
        conditions = [Condition(ConditionField.FROM_DOMAIN, ConditionOperator.ENDS_WITH, f"customer{i}.com")
                      for i in range(self.rng.randint(0, 3))]
        return RuleSpec(
            name=name, priority=self.rng.randint(1, 1000), strategy=self.rng.choice(STRATEGIES),
            mailbox_ids=[m.id for m in self.rng.sample(self.mailboxes, self.rng.randint(1, 3))],
            group_ids=[g.id for g in self.rng.sample(self.groups, min(len(self.groups), self.rng.randint(1, 2)))],
            conditions=conditions)

    def new_rule(self) -> None:
        if self.groups:
            rule = RoutingRule(spec=self._spec(f"Rule {len(self.rules)}"))
            self.rules.append(rule)
            self._touch(rule)

    def change_rule(self) -> None:
        if self.rules:
            rule = self.rng.choice(self.rules)
            rule.change(self._spec(rule.spec.name))
            self._touch(rule)

    def new_account(self) -> None:
        n = len(self.accounts)
        owner = self.rng.choice(self.agents).id if self.agents else None
        account = Account(name=f"Customer {n}", domains=[f"customer{n}.com"], owner_id=owner)
        self.accounts.append(account)
        self._touch(account)

    def update_account(self) -> None:
        if self.accounts:
            account = self.rng.choice(self.accounts)
            extra = f"{account.name.split()[-1]}-{self.rng.randint(1, 9)}.example"
            account.update(account.name, [account.domains[0], extra])
            self._touch(account)

    def account_owner(self) -> None:
        if self.accounts and self.agents:
            account = self.rng.choice(self.accounts)
            account.change_owner(self.rng.choice(self.agents).id)
            self._touch(account)

    def new_contact(self) -> None:
        email = f"person{len(self.contacts)}@customer{self.rng.randint(0, 999)}.com"
        account = self.rng.choice(self.accounts).id if self.accounts else None
        contact = Contact(email=email, name=f"Person {len(self.contacts)}", account_id=account, owner_id=None)
        self.contacts.append(contact)
        self._touch(contact)

    def update_contact(self) -> None:
        if self.contacts and self.accounts:
            contact = self.rng.choice(self.contacts)
            contact.update(f"{contact.name} Jr", self.rng.choice(self.accounts).id)
            self._touch(contact)

    def contact_owner(self) -> None:
        if self.contacts and self.agents:
            contact = self.rng.choice(self.contacts)
            contact.change_owner(self.rng.choice(self.agents).id)
            self._touch(contact)


def append(services: Services, n: int) -> Counter[str]:
    """About n events (whole batches), many aggregates per save(); the mix by event class."""
    population = Population()
    while (written := sum(population.kinds.values())) < n:
        services.app.save(*population.batch(min(BATCH, n - written)))
    return population.kinds


def measure(backend: str, n: int, rounds: int, profile: bool) -> tuple[list[list[str]], Counter[str], str]:
    """One backend: table rows (append, rebuild, catch_up), the event mix, a profile if asked for."""
    kinds: Counter[str] = Counter()
    with fresh_database(backend) as url:
        writer = services(url)
        try:
            append_seconds, _ = timed(lambda: kinds.update(append(writer, n)))
            events = writer.projections.head()
        finally:
            writer.close()
        fresh = services(url)  # a restarted process: nothing projected yet, position 0
        try:
            view = fresh.projections.views["directory"]
            catch_up_seconds, _ = timed(fresh.projections.catch_up)
            assert min(fresh.projections.positions().values()) == events
            rebuild_seconds = [timed(lambda: rebuild(fresh.projections, view))[0] for _ in range(rounds)]
            report = profiled(lambda: rebuild(fresh.projections, view)) if profile else ""
        finally:
            fresh.close()
    rows: list[list[str]] = []
    for label, runs in (("append (batched save)", [append_seconds]), ("rebuild", rebuild_seconds),
                        ("catch_up from 0", [catch_up_seconds])):
        rates = [events / seconds for seconds in runs]
        goal = ""
        if backend == "postgres" and label == "rebuild":
            goal = f"{'ok' if max(rates) >= GOAL else 'BELOW'} {GOAL:,}"
        rows.append([f"{backend}: {label}", f"{events:,}", f"{max(rates):,.0f}",
                     " ".join(f"{r:,.0f}" for r in rates), goal])
    return rows, kinds, report


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.rebuild", description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=50_000, help="events to append (default 50000)")
    parser.add_argument("--rounds", type=int, default=3, help="rebuilds per backend; best counts (default 3)")
    parser.add_argument("--profile", action="store_true", help="cProfile one more rebuild per backend")
    args = parser.parse_args(argv)
    rows: list[list[str]] = []
    reports = []
    kinds: Counter[str] = Counter()
    for backend in BACKENDS:
        backend_rows, kinds, report = measure(backend, args.events, args.rounds, args.profile)
        rows.extend(backend_rows)
        reports.append((backend, report))
    print("directory view: events appended, rebuilt from the whole log, followed from position 0 (events/s)")
    print(table(["run", "events", "events/s (best)", "each run", "goal"], rows))
    total = sum(kinds.values())
    print("mix: " + ", ".join(f"{k} {v / total:.0%}" for k, v in kinds.most_common()))
    for backend, report in reports:
        if report:
            print(f"\n--- profile: rebuild on {backend} ---\n{report}")


if __name__ == "__main__":
    main()
