"""The assigner: a log follower that decides routing and assignment (domain/assigner.py) and
records the decisions together with its position, in one transaction of the event store.

Its in-memory state is the fold of the log up to its stored position, with recorded decisions
applied where they were made. Before each batch it brings that state to the stored position,
whoever wrote it: from a snapshot (taken every SNAPSHOT_EVERY events), then the log after it.
A process whose position moved under it cannot record anything (the position change in the
same transaction fails), so no trigger is ever decided twice, across leaders and crashes.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from eventsourcing.persistence import Notification

from adapters.database import Database
from adapters.recorders import Advance
from adapters.snapshots import FollowerSnapshots, Snapshot
from domain import assigner as fold
from domain.application import Mailroom
from domain.assigner import Arrived, Assigner, Outcome
from domain.commands.base import PositionMoved
from domain.conversation import ASSIGNER, Conversation
from projections.arrivals import arrival

log = logging.getLogger("mailroom.assigner")
NAME = "assigner"
DECISIONS = ["mailroom:Conversation.Routed", "mailroom:Conversation.LeftUnrouted",
             "mailroom:Conversation.Queued", "mailroom:Conversation.Assigned"]
# The decision event classes (made by eventsourcing's @event decorator, so named at run time).
ROUTED, UNROUTED, QUEUED, ASSIGNED = (
    getattr(Conversation, n) for n in ("Routed", "LeftUnrouted", "Queued", "Assigned"))
BATCH = 500
SNAPSHOT_EVERY = 20_000


def recorded_outcome(event: Any) -> Outcome | None:
    """An assigner decision as recorded in the log (None for anything else, e.g. an admin's)."""
    decided_at = getattr(event, "decided_at", None)
    if decided_at is None or getattr(event, "decided_by", ASSIGNER) != ASSIGNER:
        return None
    conversation_id = event.originator_id
    if isinstance(event, ROUTED):
        return Outcome(conversation_id, "routed", decided_at, rule_id=event.rule_id, group_ids=tuple(event.group_ids))
    if isinstance(event, UNROUTED):
        return Outcome(conversation_id, "unrouted", decided_at, reason=event.reason)
    if isinstance(event, QUEUED):
        return Outcome(conversation_id, "queued", decided_at, strategy=event.strategy, reason=event.reason)
    if isinstance(event, ASSIGNED):
        return Outcome(conversation_id, "assigned", decided_at, rule_id=event.rule_id, agent_id=event.agent_id,
                       previous_id=event.previous_id, strategy=event.strategy, reason=event.reason)
    return None


class AssignerProcess:
    """The assigner as a consumer of the one log follower (projections/follower.py)."""

    name = NAME
    batch_size = BATCH

    def __init__(self, app: Mailroom, database: Database, zone: ZoneInfo, snapshots: FollowerSnapshots,
                 snapshot_every: int = SNAPSHOT_EVERY) -> None:
        self.app = app
        self.database = database
        self.zone = zone
        self.snapshots = snapshots
        self.snapshot_every = snapshot_every
        self.assigner: Assigner | None = None
        self.at = 0  # the log position the in-memory state reflects
        self.snapshot_at = 0
        self._unrecorded_routes: dict[UUID, list[tuple[int, UUID]]] = {}

    def facts(self, conversation_id: UUID) -> Arrived | None:
        """The conversation as stored, plus the routings decided in this batch and not yet
        recorded (a conversation routed, closed and reopened within one batch)."""
        found = arrival(self.app, conversation_id)
        unrecorded = self._unrecorded_routes.get(conversation_id)
        if found is None or not unrecorded:
            return found
        return replace(found, routes=(*found.routes, *unrecorded))

    def stored_position(self) -> int:
        rows = self.database.query("SELECT position FROM rm_positions WHERE view = ?", (NAME,))
        return int(rows[0]["position"]) if rows else 0

    def ensure_position_row(self) -> None:
        with self.database.transaction() as tx:
            tx.execute("INSERT INTO rm_positions (view, position) VALUES (?, 0) ON CONFLICT (view) DO NOTHING",
                       (NAME,))

    # ------------------------------------------------------------------ the follower's side

    def consume(self, position: int, batch: Sequence[Notification]) -> bool:
        assigner = self.bring_to(position)
        end = batch[-1].id
        try:
            outcomes: list[Outcome] = []
            for notification in batch:
                event = self.app.mapper.to_domain_event(notification)
                for outcome in assigner.observe(notification.id, event):
                    outcomes.append(outcome)
                    if outcome.kind == "routed" and outcome.rule_id is not None:
                        self._unrecorded_routes.setdefault(outcome.conversation_id, []).append(
                            (outcome.decided_at, outcome.rule_id))
            self.app.record_decisions(outcomes, advance=Advance(NAME, position, end))
        except PositionMoved:
            self.assigner = None  # folded past the stored position: rebuilt from a snapshot next time
            return False
        except BaseException:
            self.assigner = None
            raise
        finally:
            self._unrecorded_routes.clear()
        self.at = end
        if end - self.snapshot_at >= self.snapshot_every:
            self.take_snapshot()
        return True

    # ------------------------------------------------------------------ state

    def current(self) -> Assigner:
        """The state as of the stored position (for audits and tests)."""
        return self.bring_to(self.stored_position())

    def bring_to(self, position: int) -> Assigner:
        """The state as of `position`: kept, or restored from a snapshot, then the log after it."""
        if self.assigner is None or self.at > position:
            self.assigner, self.at = self._restored(position)
            self.snapshot_at = self.at
        if self.at < position:
            started = self.at
            self._replay(self.assigner, self.at, position)
            if position - started >= self.snapshot_every:
                self.take_snapshot()  # the next start need not fold the same stretch again
        return self.assigner

    def _restored(self, position: int) -> tuple[Assigner, int]:
        assigner, at = self._from_snapshot(position)
        assigner.pseudonyms = getattr(self.app.mapper, "keyring", None)  # erased customers (domain/personal.py)
        return assigner, at

    def _from_snapshot(self, position: int) -> tuple[Assigner, int]:
        found = self.snapshots.load(NAME, position)
        if found is not None and found.version == fold.SNAPSHOT_VERSION:
            try:
                return Assigner.restore(self.zone, self.facts, found.state), found.position
            except (ValueError, KeyError, TypeError):
                log.warning("assigner snapshot at %s unreadable; folding the log from the start", found.position)
        return Assigner(self.zone, self.facts), 0

    def take_snapshot(self) -> None:
        if self.assigner is None:
            return
        self.snapshots.save(NAME, Snapshot(self.at, fold.SNAPSHOT_VERSION, self.assigner.snapshot()))
        self.snapshot_at = self.at

    def _replay(self, assigner: Assigner, after: int, until: int) -> None:
        """Brings `assigner` from `after` to `until`, applying the decisions recorded for the
        triggers in between where they were made, deciding nothing."""
        recorder = self.app.recorder
        decisions: dict[int, list[Outcome]] = defaultdict(list)
        start = after + 1
        while batch := recorder.select_notifications(start, BATCH, topics=DECISIONS):
            for notification in batch:
                outcome = recorded_outcome(self.app.mapper.to_domain_event(notification))
                if outcome is not None and after < outcome.decided_at <= until:
                    decisions[outcome.decided_at].append(outcome)
            start = batch[-1].id + 1
        assigner.replaying = True
        try:
            position = after
            while position < until and (batch := recorder.select_notifications(position + 1, BATCH, stop=until)):
                for notification in batch:
                    event: Any = self.app.mapper.to_domain_event(notification)
                    assigner.observe(notification.id, event)
                    for outcome in decisions.get(notification.id, []):
                        assigner.apply(outcome, event.timestamp)
                position = batch[-1].id
        finally:
            assigner.replaying = False
        self.at = until
        log.info("assigner state brought from %s to %s", after, until)
