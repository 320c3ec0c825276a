"""Start-up of a real `mailroom serve` over a long log: how soon it answers, is ready, and assigns
a conversation that arrived right after the start; and its memory once ready.

The log is the one bench/assignment.py builds (History: 1,000 agents in 100 groups, 100 rules,
3,000 contacts; arrivals taken in with their blobs, their decisions, agent status changes,
closes), grown in place to each of --histories. At each length it is left as in steady state:
the assigner has decided up to the head of the log, the views have applied it, and the
assigner's snapshot (follower_snapshots) sits --tail events behind the head (a running
assigner snapshots every SNAPSHOT_EVERY = 20,000 events, so 0..20,000 behind; the default,
10,000, is the mean). Below SNAPSHOT_EVERY + --tail events there is no snapshot (as in
production: none is taken before 20,000 events), so the shortest history folds its whole log.

Each start (--starts times per history; the fastest counts, RSS is of that start):
  t0         `mailroom serve --port P` is spawned (MAILROOM_POLL_SECONDS=3600; its one mailbox
             points at a closed port on loopback, so its sync fails at once).
  arrival    right after the spawn, this process takes one new conversation in, as intake does
             (blobs, then take_in); it matches a keyword rule.
  up         the first 200 from GET /healthz (polled every 20 ms from t0),
  ready      the first /healthz with "ready": true (every follower has reached the head),
  assigned   the assigner's first decision on that conversation in the log (polled every 20 ms;
             "assigned" unless nobody was eligible), all three in seconds after t0; "after up"
             is assigned - up, the part that depends on the log rather than on imports;
  RSS        VmRSS of the server process (/proc/<pid>/status) when ready was first seen, and its
             peak (VmHWM) at the end.
At the longest history the starts are repeated with the snapshot row deleted before each (the
first start after an upgrade that changed SNAPSHOT_VERSION: the whole log is folded). The 10M
line extrapolates each figure by a least-squares line through the histories.
Goals: assigned within 5 s at 1M events; RSS at 1M at most 1.2x that at the shortest history.

    .venv/bin/python -m bench.startup [--histories 10000,100000,1000000] [--tail 10000] [--starts 3]
        [--backend sqlite|postgres|both] [--no-full-fold]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

import httpx

from api.processes.assigner import NAME as ASSIGNER_NAME
from api.processes.assigner import SNAPSHOT_EVERY, AssignerProcess, recorded_outcome
from api.services import Services
from bench.assignment import History, head, open_services
from bench.common import BACKENDS, fresh_database, table

GOAL_SECONDS = 5.0  # a conversation arriving right after start is decided within this, at 1M events
GOAL_RSS = 1.2  # RSS at the longest history / at the shortest
SECRET = "bench-secret-key-0123456789"  # as open_services uses
MAILROOM = str(Path(sys.executable).with_name("mailroom"))
POLL = 0.02
TIMEOUT = 900.0


@dataclass
class Start:
    backend: str
    nominal: int  # the --histories entry
    full: bool  # started with the snapshot deleted at the longest history
    history: int  # events in the log at the start
    snapshot_behind: int | None  # events between the snapshot and the head; None: no snapshot
    up_s: float
    ready_s: float
    assigned_s: float
    outcome: str
    rss_kib: int
    peak_kib: int


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILROOM_")}
    env.update(MAILROOM_DATABASE_URL=url, MAILROOM_SECRET_KEY=SECRET, MAILROOM_POLL_SECONDS="3600")
    return env


def memory(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process, in KiB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            out[name] = int(value.split()[0])
    return out


def decision(services: Services, conversation_id: UUID) -> str | None:
    """The kind of the assigner's first decision recorded on the conversation (not "routed")."""
    for event in services.app.repository.event_store.get(conversation_id):
        outcome = recorded_outcome(event)
        if outcome is not None and outcome.kind != "routed":
            return outcome.kind
    return None


def settle(history: History) -> None:
    """The assigner in this process decides up to the head (what the builder left, or what a
    server decided since), and the builder counts from its state."""
    follower = history.services.assigner
    follower.catch_up()
    process: AssignerProcess = follower.consumer  # type: ignore[assignment]
    assert process.assigner is not None
    history.handed_over(process.assigner.state)


def prepare(history: History, target: int, tail: int) -> int | None:
    """Grows the log to `target` events, left as a running mailroom leaves it (see the module
    docstring); the snapshot's position (None: none, below SNAPSHOT_EVERY + tail)."""
    services = history.services
    process: AssignerProcess = services.assigner.consumer  # type: ignore[assignment]
    snapshot_at = None
    if target - tail >= SNAPSHOT_EVERY:
        history.grow(target - tail)
        settle(history)
        process.take_snapshot()
        snapshot_at = process.at
    history.grow(target)
    settle(history)
    services.projections.catch_up()
    return snapshot_at


def start_once(history: History, backend: str, nominal: int, directory: Path, snapshot_at: int | None,
               full: bool = False) -> Start:
    """One start of `mailroom serve` over the history's database (module docstring)."""
    services = history.services
    url = services.settings.database_url
    arrival = history.arrivals(1, replies=0.0, reopens=0.0)
    conversation_id = list(history.open)[-1]
    behind = None if snapshot_at is None else head(services) + 1 - snapshot_at
    port = free_port()
    with (directory / "server.log").open("ab") as log:
        began = time.perf_counter()
        server = subprocess.Popen([MAILROOM, "serve", "--host", "127.0.0.1", "--port", str(port)],
                                  env=server_env(url), cwd=directory, stdin=subprocess.DEVNULL,
                                  stdout=log, stderr=subprocess.STDOUT)
    try:
        history.take_in(arrival)
        up: float | None = None
        ready: float | None = None
        assigned: float | None = None
        outcome = ""
        rss = 0
        with httpx.Client(timeout=5.0) as client:
            while up is None or ready is None or assigned is None:
                if server.poll() is not None:
                    raise RuntimeError(f"mailroom serve exited with {server.returncode}:\n"
                                       + (directory / "server.log").read_text(errors="replace")[-3000:])
                if time.perf_counter() - began > TIMEOUT:
                    raise RuntimeError(f"no decision or not ready after {TIMEOUT:.0f} s")
                if ready is None:
                    try:
                        response = client.get(f"http://127.0.0.1:{port}/healthz")
                    except httpx.TransportError:
                        response = None
                    now = time.perf_counter() - began
                    if response is not None and response.status_code == 200:
                        up = now if up is None else up
                        if response.json()["ready"]:
                            ready = now
                            rss = memory(server.pid)["VmRSS"]
                if assigned is None and (kind := decision(services, conversation_id)) is not None:
                    assigned, outcome = time.perf_counter() - began, kind
                time.sleep(POLL)
        peak = memory(server.pid)["VmHWM"]
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(10)
    assert up is not None and ready is not None and assigned is not None
    return Start(backend, nominal, full, head(services), behind, up, ready, assigned, outcome, rss, peak)


def run_backend(backend: str, histories: list[int], tail: int, starts: int,
                full_fold: bool) -> tuple[list[Start], list[str]]:
    out: list[Start] = []
    notes: list[str] = []
    with fresh_database(backend) as url, tempfile.TemporaryDirectory(prefix="mailroom-startup-") as directory:
        history = History(open_services(url))
        try:
            began = time.perf_counter()
            history.setup()
            for h in histories:
                snapshot_at = prepare(history, h, tail)
                size = history.services.database.query(
                    "SELECT LENGTH(state) AS n FROM follower_snapshots WHERE name = ?", (ASSIGNER_NAME,))
                notes.append(f"{backend} {head(history.services):,} events: built in "
                             f"{time.perf_counter() - began:.0f} s, snapshot "
                             + (f"at {snapshot_at:,}, {int(size[0]['n']) / 1024:,.0f} KB" if snapshot_at else "none"))
                print(f"  {notes[-1]}", flush=True)
                for _ in range(starts):
                    out.append(start_once(history, backend, h, Path(directory), snapshot_at))
                    settle(history)
                    s = out[-1]
                    print(f"    up {s.up_s:.2f} s, ready {s.ready_s:.2f} s, {s.outcome} {s.assigned_s:.2f} s, "
                          f"RSS {s.rss_kib / 1024:.0f} MiB (peak {s.peak_kib / 1024:.0f})", flush=True)
                began = time.perf_counter()
            if full_fold:
                for _ in range(max(1, starts - 1)):
                    history.services.snapshots.forget(ASSIGNER_NAME)
                    out.append(start_once(history, backend, histories[-1], Path(directory), None, full=True))
                    settle(history)
                    s = out[-1]
                    print(f"    no snapshot: up {s.up_s:.2f} s, ready {s.ready_s:.2f} s, {s.outcome} "
                          f"{s.assigned_s:.2f} s, RSS {s.rss_kib / 1024:.0f} MiB (peak {s.peak_kib / 1024:.0f})",
                          flush=True)
        finally:
            history.services.close()
    return out, notes


def best(starts: list[Start]) -> Start:
    return min(starts, key=lambda s: s.assigned_s)


def extrapolate(points: list[tuple[int, float]], at: int) -> float:
    """A least-squares line through the points, at `at`."""
    n = len(points)
    mx, my = sum(x for x, _ in points) / n, sum(y for _, y in points) / n
    slope = sum((x - mx) * (y - my) for x, y in points) / sum((x - mx) ** 2 for x, _ in points)
    return my + slope * (at - mx)


def imports() -> float:
    """Seconds for a fresh interpreter to import what `mailroom serve` imports, best of 3: the
    part of "up" that does not depend on the log."""
    code = "import api.cli, api.main, uvicorn"
    times = []
    for _ in range(3):
        began = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, stdin=subprocess.DEVNULL)
        times.append(time.perf_counter() - began)
    return min(times)


def report(starts: list[Start], rounds: int) -> str:
    rows, lines, ten = [], [], 10_000_000
    for backend in dict.fromkeys(s.backend for s in starts):
        groups: dict[tuple[int, bool], list[Start]] = {}
        for s in starts:
            if s.backend == backend:
                groups.setdefault((s.nominal, s.full), []).append(s)
        base = best(groups[min(groups)])
        longest = max(h for h, _ in groups)
        for (h, full), group in groups.items():
            b = best(group)
            ratio = b.rss_kib / base.rss_kib
            goal = ""
            if h == longest and not full and b is not base:
                goal = (f"{'ok' if b.assigned_s <= GOAL_SECONDS else 'OVER'} {GOAL_SECONDS:.0f} s, "
                        f"RSS {'ok' if ratio <= GOAL_RSS else 'OVER'} {GOAL_RSS}x")
            snapshot = ("deleted: full fold" if full else "none" if b.snapshot_behind is None
                        else f"{b.snapshot_behind:,} behind")
            rows.append([f"{b.history:,}", backend, snapshot, f"{b.up_s:.2f}", f"{b.ready_s:.2f}",
                         f"{b.assigned_s:.2f}", f"{b.assigned_s - b.up_s:.2f}",
                         " ".join(f"{s.assigned_s:.2f}" for s in group), b.outcome,
                         f"{b.rss_kib / 1024:.0f}", f"{ratio:.2f}x", f"{max(s.peak_kib for s in group) / 1024:.0f}",
                         goal])
        normal = sorted((best(g) for (_, full), g in groups.items() if not full), key=lambda s: s.history)
        if len(normal) >= 2:
            def at_ten(figure: Callable[[Start], float], normal: list[Start] = normal) -> float:
                return extrapolate([(s.history, figure(s)) for s in normal], ten)

            up = statistics.mean(s.up_s for s in normal)
            after = at_ten(lambda s: s.assigned_s - s.up_s)
            lines.append(f"{backend}, extrapolated to 10M events by a least-squares line through the histories "
                         f"(snapshot as above): the part after up {after:.2f} s, so assigned about {up + after:.1f} s "
                         f"after the spawn (up {up:.1f} s, the mean here); RSS "
                         f"{at_ten(lambda s: s.rss_kib / 1024):.0f} MiB")
        if (longest, True) in groups and normal:
            full_start, snap = best(groups[(longest, True)]), normal[-1]
            fold = full_start.assigned_s - snap.assigned_s
            lines.append(f"{backend}, without a snapshot: the fold of {full_start.history:,} events added "
                         f"{fold:.1f} s ({full_start.history / max(fold, 1e-9):,.0f} events/s); at 10M about "
                         f"{snap.assigned_s + fold * ten / full_start.history:.0f} s to the first decision")
    header = ["history", "backend", "snapshot", "up s", "ready s", "assigned s", "after up", "each start", "decision",
              "RSS MiB", "vs first", "peak MiB", "goal"]
    return "\n".join([f"startup of `mailroom serve`: seconds from spawn, best of {rounds} starts (RSS when ready)",
                      table(header, rows), "", *lines])


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.startup", description=__doc__.split("\n\n")[0])
    parser.add_argument("--histories", default="10000,100000,1000000",
                        help="log lengths, ascending (default 10000,100000,1000000)")
    parser.add_argument("--tail", type=int, default=SNAPSHOT_EVERY // 2,
                        help=f"events between the snapshot and the head (default {SNAPSHOT_EVERY // 2})")
    parser.add_argument("--starts", type=int, default=3, help="starts per history; the fastest counts (default 3)")
    parser.add_argument("--backend", choices=[*BACKENDS, "both"], default="sqlite", help="default sqlite")
    parser.add_argument("--no-full-fold", action="store_true",
                        help="skip the starts without a snapshot at the longest history")
    args = parser.parse_args(argv)
    histories = sorted(int(h) for h in args.histories.split(","))
    backends = BACKENDS if args.backend == "both" else (args.backend,)
    began = time.perf_counter()
    starts: list[Start] = []
    notes: list[str] = []
    for backend in backends:
        got, backend_notes = run_backend(backend, histories, args.tail, args.starts, not args.no_full_fold)
        starts += got
        notes += backend_notes
    print()
    print(report(starts, args.starts))
    print(f"importing what `mailroom serve` imports takes {imports():.2f} s (a fresh interpreter, best of 3)")
    print("\n" + "\n".join(notes) + f"\n(total run {time.perf_counter() - began:.0f} s)")


if __name__ == "__main__":
    main()
