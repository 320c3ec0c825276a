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
import functools
import hashlib
import json
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import IO, Any
from uuid import UUID
from zoneinfo import ZoneInfo

from eventsourcing.persistence import Notification, StoredEvent
from eventsourcing.utils import resolve_topic

from adapters.blobs import blobs_of
from adapters.database import Database
from api.processes.assigner import DECISIONS, recorded_outcome
from api.services import Services
from domain import assigner as fold
from domain.assigner import Arrived, Assigner, Outcome
from domain.audit import GENESIS, SEALED_TOPIC, link
from projections.arrivals import arrival
from projections.audit import WITHHELD, describe
from projections.chain import CHAIN
from projections.follower import Follower
from projections.view import plain

READ_BATCH = 20_000  # events per read while verifying
EXPORT_BATCH = 2_000
FACTS_KEPT = 50_000  # conversations whose facts the decisions' replay keeps at once
FACTS_CHUNK = 500
ROUTED_TOPIC = "mailroom:Conversation.Routed"
CONVERSATION = "mailroom:Conversation."
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
        # The stored log does not change under the replay, so a conversation's facts (its first
        # message, and the routings recorded on it) are the same whenever asked: loaded for a
        # whole batch of the log at once (`prefetch`), kept for a while.
        self.facts: OrderedDict[UUID, Arrived | None] = OrderedDict()
        self.fresh = Assigner(zone, self.load)
        self.fresh.pseudonyms = getattr(app.mapper, "keyring", None)
        self.recorded: list[tuple[Outcome, int]] = []  # with the position it was recorded at
        self.derived: list[tuple[Outcome, int]] = []  # with the position of the event that triggered it
        self._relevant: dict[str, bool] = {}

    def load(self, conversation_id: UUID) -> Arrived | None:
        if conversation_id in self.facts:
            return self.facts[conversation_id]
        return arrival(self.app, conversation_id)

    def prefetch(self, database: Database, conversation_ids: set[UUID]) -> None:
        """The facts of these conversations, in two queries per FACTS_CHUNK (their first two events
        and routings, then the blobs of their first messages), read by projections/arrivals.py."""
        wanted = [c for c in conversation_ids if c not in self.facts]
        table: str = self.app.recorder.events_table_name
        for begin in range(0, len(wanted), FACTS_CHUNK):
            part = wanted[begin:begin + FACTS_CHUNK]
            keys: list[Any]
            if database.is_postgres:
                where, keys = "originator_id = ANY(?)", [part]
            else:  # SQLite keeps ids as hex text
                where, keys = f"originator_id IN ({', '.join('?' for _ in part)})", [c.hex for c in part]
            rows = database.query(
                f"SELECT originator_id, originator_version, topic, state FROM {table} WHERE {where} "
                f"AND (originator_version <= 2 OR topic = ?) ORDER BY originator_id, originator_version",
                [*keys, ROUTED_TOPIC])
            events: dict[UUID, list[Any]] = {c: [] for c in part}
            for r in rows:
                cid = UUID(str(r["originator_id"]))
                events[cid].append(self.app.mapper.to_domain_event(StoredEvent(
                    originator_id=cid, originator_version=int(r["originator_version"]), topic=r["topic"],
                    state=bytes(r["state"]))))
            blob_keys = [k for found in events.values() if len(found) > 1 and getattr(found[1], "mail", None)
                         for k in found[1].mail.blob_keys()]
            blobs = blobs_of(self.app).get_many(blob_keys) if blob_keys else {}
            shim = SimpleNamespace(repository=SimpleNamespace(event_store=SimpleNamespace(get=events.__getitem__)),
                                   blobs=SimpleNamespace(get_many=functools.partial(_among, blobs)))
            for cid in part:
                self.facts[cid] = arrival(shim, cid)
        while len(self.facts) > FACTS_KEPT:
            self.facts.popitem(last=False)

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


def _among(blobs: dict[str, bytes], keys: Iterable[str]) -> dict[str, bytes]:
    return {k: blobs[k] for k in keys if k in blobs}


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


def _tuples(services: Services, sql: str, params: Sequence[Any]) -> list[Any]:
    """Rows as tuples (not dicts: a tenth of verify's time on PostgreSQL), on the event store's pool."""
    postgres = services.database.is_postgres
    datastore: Any = services.database.datastore
    with datastore.transaction(commit=False) as cursor:
        if postgres:
            from psycopg.rows import tuple_row

            cursor.row_factory = tuple_row
            sql = sql.replace("?", "%s")
        cursor.execute(sql, tuple(params))
        return list(cursor.fetchall())


def _events(services: Services, start: int, stop: int) -> list[tuple[int, UUID, int, str, bytes]]:
    """A batch of stored events from `start` up to `stop`: (position, originator id, version, topic, state)."""
    table: str = services.app.recorder.events_table_name  # type: ignore[attr-defined]
    column = "notification_id" if services.database.is_postgres else "rowid"
    rows = _tuples(services, f"SELECT {column}, originator_id, originator_version, topic, state FROM {table} "
                             f"WHERE {column} >= ? AND {column} <= ? ORDER BY {column} LIMIT ?",
                   (start, stop, READ_BATCH))
    if services.database.is_postgres:
        return rows
    return [(r[0], UUID(r[1]), r[2], r[3], r[4]) for r in rows]  # SQLite keeps ids as hex text


def _ahead(fetch: Callable[[int], list[Any]], start: int, following: Callable[[list[Any]], int]) -> Iterator[list[Any]]:
    """Batches fetch(start), fetch(following(that batch)), ... until one is empty; the next batch
    is read in a thread while the caller works on this one (the driver waits without the GIL)."""
    with ThreadPoolExecutor(1, thread_name_prefix="audit-read") as pool:
        future = pool.submit(fetch, start)
        while batch := future.result():
            future = pool.submit(fetch, following(batch))
            yield batch


def _chained(services: Services, stop: int) -> Iterator[tuple[int, str]]:
    """audit_chain's rows up to `stop`, in order, read a batch ahead."""
    def fetch(after: int) -> list[Any]:
        return _tuples(services, f"SELECT position, digest FROM {CHAIN} WHERE position > ? AND position <= ? "
                                 "ORDER BY position LIMIT ?", (after, stop, READ_BATCH))

    for rows in _ahead(fetch, 0, lambda rows: int(rows[-1][0])):
        yield from rows


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

    for batch in _ahead(lambda after: _events(services, after, head), 1, lambda rows: int(rows[-1][0]) + 1):
        if replay is not None:
            replay.prefetch(services.database, {row[1] for row in batch if row[3].startswith(CONVERSATION)})
        for p, originator_id, version, topic, state in batch:
            previous = link(previous, originator_id, version, topic, state)
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
            if replay is not None and replay.relevant(topic):
                try:
                    replay.feed(Notification(id=p, originator_id=originator_id, originator_version=version,
                                             topic=topic, state=state))
                except Exception as exc:  # the log no longer folds (an event edited into nonsense)
                    report.differ(p, f"position {p}: decisions cannot be re-derived past here: "
                                     f"{type(exc).__name__}: {exc}")
                    report.decisions = len(replay.recorded)
                    replay = None
        report.events += len(batch)
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
