"""The tamper-evident log (issue 14): what the chain costs and how fast an auditor checks it.

The log is the one bench/assignment.py builds (History: 1,000 agents in 100 groups, 100 rules,
3,000 contacts, arrivals taken in with their blobs, their decisions, status changes, closes),
grown in place to each of --histories. At each length:
  chain     the audit chain follower (projections/chain.py) catching up on the events added
            since the last length: events/s, and µs per event, the cost it adds to intake (the
            chain is extended by its own follower, off the intake's transaction);
  verify    `mailroom audit verify` without the decisions: the chain recomputed from position 0
            and compared with audit_chain and every seal (events/s over the whole log);
  +decide   the same pass re-deriving every routing and assignment decision as well (the fold of
            domain/assigner.py over the events it reads; the rest are not decoded). The builder
            decides as the assigner would without its reason texts' detail, so the comparison
            reports mismatches here: the figure is the rate, not the verdict;
  export    `mailroom audit export` to /dev/null (events/s).
Goal: verify ≥ 20,000 events/s on PostgreSQL.

    .venv/bin/python -m bench.audit [--histories 200000,1000000] [--backend sqlite|postgres|both]
        [--no-decisions]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from api import audit
from bench.assignment import History, head, open_services
from bench.common import BACKENDS, fresh_database, table
from projections.follower import Follower


@dataclass
class Row:
    backend: str
    history: int
    chained: int
    chain_s: float
    verify_s: float
    decide_s: float | None
    export_s: float
    ok: bool


def _timed(run: Any) -> tuple[float, Any]:
    began = time.perf_counter()
    result = run()
    return time.perf_counter() - began, result


def measure(history: History, backend: str, decisions: bool) -> Row:
    services = history.services
    consumer: Any = services.chain.consumer
    before = consumer.stored_position()
    follower = Follower(consumer, consumer.read, consumer.head)
    chain_s, _ = _timed(follower.catch_up)
    chained = consumer.stored_position() - before
    total = head(services)
    verify_s, report = _timed(lambda: audit.verify(services, decisions=False))
    decide_s = None
    if decisions:
        decide_s, _ = _timed(lambda: audit.verify(services))
    with open(os.devnull, "w") as out:
        export_s, _ = _timed(lambda: audit.export(services, out))
    return Row(backend, total, chained, chain_s, verify_s, decide_s, export_s, report.ok)


def run_backend(backend: str, histories: list[int], decisions: bool) -> list[Row]:
    rows = []
    with fresh_database(backend) as url:
        history = History(open_services(url))
        try:
            history.setup()
            for h in histories:
                began = time.perf_counter()
                history.grow(h)
                print(f"  {backend}: grown to {head(history.services):,} events in "
                      f"{time.perf_counter() - began:.0f} s", flush=True)
                rows.append(measure(history, backend, decisions))
                r = rows[-1]
                print(f"  {backend} {r.history:,}: chain {r.chained / r.chain_s:,.0f}/s, verify "
                      f"{r.history / r.verify_s:,.0f}/s (ok: {r.ok}), export {r.history / r.export_s:,.0f}/s"
                      + (f", verify with decisions {r.history / r.decide_s:,.0f}/s" if r.decide_s else ""),
                      flush=True)
        finally:
            history.services.close()
    return rows


def report(rows: list[Row]) -> str:
    def rate(n: int, seconds: float | None) -> str:
        return "-" if not seconds else f"{n / seconds:,.0f}"

    return table(
        ["backend", "events", "chain ev/s", "chain µs/ev", "verify ev/s", "verify s", "+decisions ev/s",
         "export ev/s"],
        [[r.backend, f"{r.history:,}", rate(r.chained, r.chain_s), f"{r.chain_s / max(r.chained, 1) * 1e6:.1f}",
          rate(r.history, r.verify_s), f"{r.verify_s:.1f}", rate(r.history, r.decide_s), rate(r.history, r.export_s)]
         for r in rows])


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.audit", description=__doc__.split("\n\n")[0])
    parser.add_argument("--histories", default="200000,1000000")
    parser.add_argument("--backend", choices=[*BACKENDS, "both"], default="both")
    parser.add_argument("--no-decisions", action="store_true", help="skip verify with the decisions")
    args = parser.parse_args(argv)
    histories = [int(h) for h in args.histories.split(",")]
    rows: list[Row] = []
    for backend in BACKENDS if args.backend == "both" else (args.backend,):
        rows.extend(run_backend(backend, histories, not args.no_decisions))
    print(report(rows))


if __name__ == "__main__":
    main()
