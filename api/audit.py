"""`mailroom audit seal | verify | export` (PROCESS.md): the auditor's side of the hash chain
(domain/audit.py, kept incrementally by projections/chain.py).

verify recomputes the chain from position 0 over every stored event, in big batches, and
compares it with the chained digests (`audit_chain`), with every seal recorded in the log and
with the digests an auditor kept (`--digest POSITION:HEX`); in the same pass it decides again
every routing and assignment from the log with the domain's own fold (domain/assigner.py) and
compares agent, strategy and reason with what the log records. The first position that differs
is named: an edited event (or one whose state was swapped with another's) is the first
changed position; a deleted one is the first chained position missing from the log; an
inserted one the first position the log has and the chain did not.

export writes the log as JSON lines, one batch in memory at a time: per event its position,
aggregate, type, time and decoded data, the fields the chain hashes (originator id, version,
topic, state as stored, base64) and the chain digest before and after it; tools/verify_export.py
checks such a file without mailroom. A state holding a withheld value (an API token's hash) is
replaced by its SHA-256, which is what the chain hashes.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Any
from uuid import UUID
from zoneinfo import ZoneInfo

from eventsourcing.persistence import Notification
from eventsourcing.utils import resolve_topic

from api.processes.assigner import DECISIONS, recorded_outcome
from api.services import Services
from domain import assigner as fold
from domain.assigner import Assigner, Outcome
from domain.audit import GENESIS, SEALED_TOPIC, link
from projections.arrivals import arrival
from projections.audit import WITHHELD, describe
from projections.chain import CHAIN
from projections.follower import Follower
from projections.view import plain

READ_BATCH = 20_000  # events per read while verifying
EXPORT_BATCH = 2_000
Progress = Callable[[int], Any]

# ----------------------------------------------------------------- decisions re-derived


def decision_key(o: Outcome) -> tuple[Any, ...]:
    rule = None if o.kind == "queued" else o.rule_id  # a recorded Queued event does not name its rule
    return (str(o.conversation_id), o.kind, o.decided_at, str(o.agent_id), o.strategy, o.reason, str(rule),
            o.group_ids)


class DecisionReplay:
    """Decides again over the log, without the recorded decisions: fed every event in order, it
    keeps the decisions recorded by the assigner and those a fresh assigner derives."""

    def __init__(self, app: Any, zone: ZoneInfo) -> None:
        self.app = app
        self.fresh = Assigner(zone, lambda conversation_id: arrival(app, conversation_id))
        self.recorded: list[tuple[Outcome, int]] = []  # with the position it was recorded at
        self.derived: list[tuple[Outcome, int]] = []  # with the position of the event that triggered it
        self._relevant: dict[str, bool] = {}

    def relevant(self, topic: str) -> bool:
        """Events the fold reads, or decisions: the others are not even decoded."""
        known = self._relevant.get(topic)
        if known is None:
            try:
                cls = resolve_topic(topic)
            except Exception:  # a topic no class answers to: the mapper will say so where it matters
                cls = None
            known = self._relevant[topic] = topic in DECISIONS or cls in fold._HANDLERS
        return known

    def feed(self, notification: Notification) -> None:
        if not self.relevant(notification.topic):
            return
        event = self.app.mapper.to_domain_event(notification)
        outcome = recorded_outcome(event) if notification.topic in DECISIONS else None
        if outcome is not None:
            self.recorded.append((outcome, notification.id))
            return
        self.derived.extend((o, notification.id) for o in self.fresh.observe(notification.id, event))

    def keys(self) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        """(recorded, re-derived), as sorted keys."""
        return (sorted((decision_key(o) for o, _ in self.recorded), key=str),
                sorted((decision_key(o) for o, _ in self.derived), key=str))

    def differences(self) -> list[tuple[int, str]]:
        """(position, what differs), in log order: recorded decisions the log does not support,
        and decisions the log calls for that were not recorded."""
        recorded = Counter(decision_key(o) for o, _ in self.recorded)
        derived = Counter(decision_key(o) for o, _ in self.derived)
        only_recorded, only_derived = recorded - derived, derived - recorded
        found: list[tuple[int, str]] = []
        for outcomes, extra, what in ((self.recorded, only_recorded, "recorded, but not re-derived"),
                                      (self.derived, only_derived, "re-derived, but not recorded")):
            for outcome, position in outcomes:
                key = decision_key(outcome)
                if extra[key] > 0:
                    extra[key] -= 1
                    found.append((position, f"decision {what}: {describe_outcome(outcome)}"))
        return sorted(found)


def describe_outcome(o: Outcome) -> str:
    parts = [f"conversation {o.conversation_id}", o.kind]
    if o.agent_id is not None:
        parts.append(f"agent {o.agent_id}")
    if o.strategy is not None:
        parts.append(f"strategy {getattr(o.strategy, 'value', o.strategy)}")
    if o.reason:
        parts.append(f"reason {o.reason!r}")
    return ", ".join(parts)


def replay(services: Services) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], Assigner]:
    """The decisions over the whole log: (recorded, re-derived, the fresh assigner), as sortable keys."""
    app = services.app
    decisions = DecisionReplay(app, ZoneInfo(services.settings.timezone))
    start = 1
    while batch := app.recorder.select_notifications(start, 1000):
        for notification in batch:
            decisions.feed(notification)
        start = batch[-1].id + 1
    recorded, derived = decisions.keys()
    return recorded, derived, decisions.fresh


# ----------------------------------------------------------------- verify


@dataclass
class Report:
    head: int = 0
    events: int = 0
    chained: int = 0  # positions compared with audit_chain
    seals: int = 0
    anchors: int = 0
    decisions: int = 0  # recorded decisions checked
    first_position: int | None = None  # the first position that differs, if known
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def differ(self, position: int | None, problem: str) -> None:
        self.problems.append(problem)
        if position is not None and (self.first_position is None or position < self.first_position):
            self.first_position = position

    def summary(self) -> list[str]:
        lines = [f"events: {self.events} up to position {self.head}; chain compared at {self.chained} positions; "
                 f"seals checked: {self.seals}; digests given: {self.anchors}; decisions checked: {self.decisions}"]
        if self.ok:
            lines.append("OK: the log matches its chain, every seal and digest, and every decision")
        else:
            where = f" at position {self.first_position}" if self.first_position is not None else ""
            lines.append(f"MISMATCH{where}: {len(self.problems)} problem(s)")
            lines.extend(f"  {p}" for p in self.problems)
        return lines


def parse_digest(text: str) -> tuple[int, str]:
    """POSITION:HEX, as printed by `mailroom audit seal`."""
    position, sep, digest = text.strip().partition(":")
    digest = digest.strip().lower()
    if not sep or not position.strip().isdigit() or len(digest) != 64 or any(c not in "0123456789abcdef"
                                                                              for c in digest):
        raise ValueError(f"{text!r}: expected POSITION:HEX (64 hex digits)")
    return int(position), digest


def recorded_seals(services: Services, head: int) -> list[tuple[int, str, int]]:
    """Every seal in the log up to `head`: (sealed position, digest, the seal's own position)."""
    app = services.app
    found: list[tuple[int, str, int]] = []
    start = 1
    while batch := app.recorder.select_notifications(start, 1000, stop=head, topics=[SEALED_TOPIC]):
        for notification in batch:
            event: Any = app.mapper.to_domain_event(notification)
            found.append((int(event.position), str(event.digest), notification.id))
        start = batch[-1].id + 1
    return found


def _chained(services: Services, stop: int) -> Iterator[tuple[int, str]]:
    """audit_chain's rows up to `stop`, in order, a batch at a time."""
    after = 0
    while rows := services.database.query(
            f"SELECT position, digest FROM {CHAIN} WHERE position > ? AND position <= ? ORDER BY position LIMIT ?",
            (after, stop, READ_BATCH)):
        for row in rows:
            yield int(row["position"]), str(row["digest"])
        after = int(rows[-1]["position"])


def verify(services: Services, digests: Sequence[tuple[int, str]] = (), progress: Progress | None = None,
           decisions: bool = True) -> Report:
    app = services.app
    report = Report(head=int(app.recorder.max_notification_id() or 0))
    head = report.head
    chain_head = min(services.chain.consumer.stored_position(), head)
    expected: dict[int, list[str]] = {}  # position -> what says which digest it must have
    for position, digest, at in recorded_seals(services, head):
        expected.setdefault(position, []).append(f"seal recorded at position {at}:{digest}")
        report.seals += 1
    for position, digest in digests:
        expected.setdefault(position, []).append(f"digest given:{digest}")
        report.anchors += 1
    checks = sorted(expected)
    next_check = 0
    replay = DecisionReplay(app, ZoneInfo(services.settings.timezone)) if decisions else None
    chained = _chained(services, chain_head)
    table = next(chained, None)
    chain_differs = False  # once it differs, every later digest does: only the first is named
    previous = GENESIS
    start = 1
    last = 0

    def check_expected(upto: int, position: int, digest: str | None) -> None:
        """The seals and digests given at positions < upto (none in the log) or == position."""
        nonlocal next_check
        while next_check < len(checks) and checks[next_check] <= upto:
            at = checks[next_check]
            next_check += 1
            if at == 0:
                actual: str | None = GENESIS.hex()
            else:
                actual = digest if at == position else None
            for claim in expected[at]:
                source, _, want = claim.rpartition(":")
                if actual is None:
                    report.differ(at, f"position {at}: no event there in the log, but a {source} seals it")
                elif actual != want:
                    report.differ(at, f"position {at}: the chain is {actual}, the {source} says {want}")

    while batch := app.recorder.select_notifications(start, READ_BATCH, stop=head):
        for n in batch:
            p = n.id
            previous = link(previous, n.originator_id, n.originator_version, n.topic, n.state)  # type: ignore[arg-type]
            digest = previous.hex()
            while table is not None and table[0] < p:
                if not chain_differs:
                    chain_differs = True
                    report.differ(table[0], f"position {table[0]}: chained, but no longer in the log (deleted)")
                table = next(chained, None)
            if table is not None and table[0] == p:
                report.chained += 1
                if table[1] != digest and not chain_differs:
                    chain_differs = True
                    report.differ(p, f"position {p}: the event differs from the one chained (edited, moved "
                                     f"or replaced): chain {digest}, chained {table[1]}")
                table = next(chained, None)
            elif p <= chain_head and not chain_differs:
                chain_differs = True
                report.differ(p, f"position {p}: in the log, but never chained (inserted)")
            if next_check < len(checks) and checks[next_check] <= p:
                check_expected(p, p, digest)
            if replay is not None:
                try:
                    replay.feed(n)
                except Exception as exc:  # the log no longer folds (an event edited into nonsense)
                    report.differ(p, f"position {p}: decisions cannot be re-derived past here: "
                                     f"{type(exc).__name__}: {exc}")
                    report.decisions = len(replay.recorded)
                    replay = None
        report.events += len(batch)
        last = batch[-1].id
        start = last + 1
        if progress is not None:
            progress(len(batch))
    while table is not None:
        if not chain_differs:
            chain_differs = True
            report.differ(table[0], f"position {table[0]}: chained, but no longer in the log (deleted)")
        table = next(chained, None)
    check_expected(max([*checks, 0]), -1, None)  # anything sealed past the end of the log
    if replay is not None:
        report.decisions = len(replay.recorded)
        for position, problem in replay.differences():
            recorded = "recorded, but" in problem  # else: called for by the event at `position`, never recorded
            report.differ(position if recorded else None, f"position {position}: {problem}")
    return report


# ----------------------------------------------------------------- seal, export


def seal(services: Services) -> tuple[int, str]:
    """Catches the chain up to the head and seals it there: (position, digest)."""
    chain = services.chain
    head = int(services.app.recorder.max_notification_id() or 0)
    # Unleased (safe: batches commit under the position row's lock), so a server holding the
    # chain's lease does not make this wait.
    consumer: Any = chain.consumer
    Follower(consumer, consumer.read, consumer.head).wait_for(head, timeout=600)
    position, digest = consumer.seal_head()
    Follower(consumer, consumer.read, consumer.head).catch_up()  # the seal itself, for auditSeals
    return position, str(digest)


def _starting_digest(services: Services, after: int) -> bytes:
    """The chain's digest up to `after`: chained, or recomputed when the chain is not there yet."""
    if after <= 0:
        return GENESIS
    consumer: Any = services.chain.consumer
    if consumer.stored_position() >= after:
        rows = services.database.query(f"SELECT digest FROM {CHAIN} WHERE position <= ? ORDER BY position DESC "
                                       "LIMIT 1", (after,))
        return bytes.fromhex(str(rows[0]["digest"])) if rows else GENESIS
    digest, start = GENESIS, 1
    while batch := services.app.recorder.select_notifications(start, READ_BATCH, stop=after):
        for n in batch:
            digest = link(digest, n.originator_id, n.originator_version, n.topic, n.state)  # type: ignore[arg-type]
        start = batch[-1].id + 1
    return digest


def export_line(app: Any, n: Notification, previous: bytes) -> tuple[dict[str, Any], bytes]:
    digest = link(previous, n.originator_id, n.originator_version, n.topic, n.state)  # type: ignore[arg-type]
    event: Any = app.mapper.to_domain_event(n)
    described = describe(app, n)
    withheld = any(name in vars(event) for name in WITHHELD)
    state = bytes(n.state)
    line = {
        "position": n.id,
        "aggregate": str(UUID(str(n.originator_id))),
        "aggregate_type": described.aggregate_type,
        "version": n.originator_version,
        "type": described.type,
        "topic": n.topic,
        "time": described.occurred_at.isoformat(),
        "data": plain(described.data),
        "state": None if withheld else base64.b64encode(state).decode(),
        "state_sha256": hashlib.sha256(state).hexdigest() if withheld else None,
        "previous": previous.hex(),
        "chain": digest.hex(),
    }
    return line, digest


def export(services: Services, out: IO[str], after: int = 0, progress: Progress | None = None) -> int:
    """Writes the log after position `after` as JSON lines; returns the number of lines."""
    app = services.app
    head = int(app.recorder.max_notification_id() or 0)
    previous = _starting_digest(services, after)
    written, start = 0, after + 1
    while batch := app.recorder.select_notifications(start, EXPORT_BATCH, stop=head):
        for n in batch:
            line, previous = export_line(app, n, previous)
            out.write(json.dumps(line, separators=(",", ":"), default=str) + "\n")
        written += len(batch)
        start = batch[-1].id + 1
        if progress is not None:
            progress(len(batch))
    out.flush()
    return written
