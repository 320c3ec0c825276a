"""Events appended per second, one event per save(): the bare eventsourcing library against
mailroom's own application, on SQLite and PostgreSQL.

Columns of the table, each N events (set-up, untimed: N items and N agents saved 500 per save()):
  bare create        Application.save(Item(...)) N times (a new aggregate each time)
  bare load+save     repository.get(id), one @event method, save(): once for each of N items
  mailroom command   Mailroom.set_agent_status(id, ...): load, validate, save, once for each of N agents
The last two do the same work per event (one aggregate read, one event written), so the
overhead of mailroom is measured against "bare load+save" (wall clock, and this process's CPU
time). The three take turns in slices of 100 events, so load on the shared machine and the
database's fsync latency hit them alike; each runs --rounds times over N events, the best round counts.

    .venv/bin/python -m bench.appends [--events N] [--rounds R] [--profile]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from functools import partial
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

from adapters.settings import parse_database_url
from api.bootstrap import Services
from bench.common import BACKENDS, fresh_database, profiled, services, table, timed
from domain.agents import Agent
from domain.values import AgentStatus

SETUP_BATCH = 500
SLICE = 100  # the three workloads take turns in slices of this many events
GOAL = 25.0  # % mailroom may add to the matching bare loop


class Item(Aggregate):
    TOPIC = "bench:Item"

    class Created(Aggregate.Created):
        TOPIC = "bench:Item.Created"
        status: str

    def __init__(self, status: str) -> None:
        self.status = status

    @event("StatusChanged", topic="bench:Item.StatusChanged")
    def change_status(self, status: str) -> None:
        self.status = status


class Bare(Application[UUID]):
    name = "bare"
    is_snapshotting_enabled = False


def save_in_batches(app: Application[UUID], aggregates: Sequence[Aggregate]) -> list[UUID]:
    """Untimed set-up: many aggregates per save()."""
    for start in range(0, len(aggregates), SETUP_BATCH):
        app.save(*aggregates[start:start + SETUP_BATCH])
    return [a.id for a in aggregates]


def bare_create(app: Bare, n: int) -> None:
    for _ in range(n):
        app.save(Item("ONLINE"))


def bare_load_save(app: Bare, ids: list[UUID], status: str) -> None:
    for item_id in ids:
        item: Item = app.repository.get(item_id)
        item.change_status(status)
        app.save(item)


def mailroom_command(services: Services, ids: list[UUID], status: AgentStatus) -> None:
    for agent_id in ids:
        services.app.set_agent_status(agent_id, status)


def measure(backend: str, n: int, rounds: int, profile: bool) -> tuple[list[object], str]:
    """One backend: the three rates (events/s) and the overheads; a profile if asked for."""
    labels = ("create", "load+save", "mailroom")
    wall = {label: [0.0] * rounds for label in labels}  # seconds per round
    cpu = {label: [0.0] * rounds for label in labels}  # this process's CPU seconds per round
    with fresh_database(backend) as url:
        bare = Bare(parse_database_url(url))
        mailroom = services(url)
        try:
            items = save_in_batches(bare, [Item("ONLINE") for _ in range(n)])
            agents = save_in_batches(mailroom.app, [
                Agent(name=f"Agent {i}", email=f"agent{i}@example.com", status=AgentStatus.ONLINE,
                      capacity=5) for i in range(n)])
            for r in range(rounds):
                status = (AgentStatus.AWAY, AgentStatus.ONLINE)[r % 2]
                for start in range(0, n, SLICE):
                    part = slice(start, start + SLICE)
                    runs: dict[str, Callable[[], object]] = {
                        "create": partial(bare_create, bare, len(items[part])),
                        "load+save": partial(bare_load_save, bare, items[part], status.value),
                        "mailroom": partial(mailroom_command, mailroom, agents[part], status),
                    }
                    for label, run in runs.items():
                        seconds, cpu_seconds = timed(run)
                        wall[label][r] += seconds
                        cpu[label][r] += cpu_seconds
            report = ""
            if profile:
                status = (AgentStatus.AWAY, AgentStatus.ONLINE)[rounds % 2]
                report = profiled(lambda: mailroom_command(mailroom, agents, status))
        finally:
            bare.close()
            mailroom.close()
    best = {label: min(wall[label]) for label in labels}
    overhead = (best["mailroom"] / best["load+save"] - 1) * 100
    cpu_overhead = (min(cpu["mailroom"]) / min(cpu["load+save"]) - 1) * 100
    rates = [f"{n / best[label]:,.0f}" for label in labels]
    verdict = "ok" if overhead <= GOAL else f"over {GOAL:.0f}%"
    return [backend, *rates, f"{overhead:+.1f}% ({verdict})", f"{cpu_overhead:+.1f}%"], report


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.appends", description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=2000, help="events per measurement (default 2000)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the best counts (default 3)")
    parser.add_argument("--profile", action="store_true", help="cProfile one more mailroom round")
    args = parser.parse_args(argv)
    rows, reports = [], []
    for backend in BACKENDS:
        row, report = measure(backend, args.events, args.rounds, args.profile)
        rows.append(row)
        reports.append((backend, report))
    print(f"appends, one event per save(), {args.events} events per run, best of {args.rounds} rounds (events/s)")
    print(table(["backend", "bare create", "bare load+save", "mailroom command", "mailroom overhead",
                 "client CPU overhead"], rows))
    for backend, report in reports:
        if report:
            print(f"\n--- profile: mailroom command on {backend} ---\n{report}")


if __name__ == "__main__":
    main()
