"""The assigner process: one leader at a time (across processes) follows the log in order,
decides routing and assignment (domain/assigner.py) and records the decisions.

On start it rebuilds its state from the log, applying recorded decisions where they were
made; it resumes after the last trigger it decided on. Leadership may pass between processes
from one catch-up to the next: a process that takes it over first takes in, the same way,
what the others decided since it last led. A decision that cannot be saved
(an admin changed the conversation at that moment) makes it rebuild and decide again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from api.bootstrap import Services
from domain.assigner import Arrived, Assigner, Outcome
from domain.commands.base import Conflict
from domain.conversation import ASSIGNER, Conversation
from projections.arrivals import arrival

log = logging.getLogger("mailroom.assigner")
DECISIONS = ["mailroom:Conversation.Routed", "mailroom:Conversation.LeftUnrouted",
             "mailroom:Conversation.Queued", "mailroom:Conversation.Assigned"]
POSITION = "assigner"
BATCH = 500


def recorded_outcome(event: Any) -> Outcome | None:
    """An assigner decision as recorded in the log (None for anything else, e.g. an admin's)."""
    topic = type(event).TOPIC
    decided_at = getattr(event, "decided_at", None)
    if decided_at is None or getattr(event, "decided_by", ASSIGNER) != ASSIGNER:
        return None
    conversation_id = event.originator_id
    if topic.endswith(".Routed"):
        return Outcome(conversation_id, "routed", decided_at, rule_id=event.rule_id, group_ids=tuple(event.group_ids))
    if topic.endswith(".LeftUnrouted"):
        return Outcome(conversation_id, "unrouted", decided_at, reason=event.reason)
    if topic.endswith(".Queued"):
        return Outcome(conversation_id, "queued", decided_at, strategy=event.strategy, reason=event.reason)
    return Outcome(conversation_id, "assigned", decided_at, rule_id=event.rule_id, agent_id=event.agent_id,
                   previous_id=event.previous_id, strategy=event.strategy, reason=event.reason)


class AssignerWorker:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.app = services.app
        self.lock = threading.Lock()
        self.assigner: Assigner | None = None
        self.position = 0
        self._stored: int | None = None  # the decided position as this process last stored or saw it

    # ------------------------------------------------------------------ state

    def facts(self, conversation_id: UUID) -> Arrived | None:
        return arrival(self.app, conversation_id)

    def rebuild(self) -> None:
        """The state as of the last decided trigger: recorded decisions applied where they were made."""
        self._replay(Assigner(ZoneInfo(self.services.settings.timezone), self.facts), 0)
        log.info("assigner state rebuilt up to event %s", self.position)

    def _replay(self, assigner: Assigner, after: int) -> None:
        """Brings `assigner`, which has seen the log up to `after`, to the last trigger decided on
        (by any process), applying the recorded decisions where they were made, deciding nothing."""
        recorder = self.app.recorder
        decisions: dict[int, list[Outcome]] = defaultdict(list)
        start = after + 1
        while batch := recorder.select_notifications(start, BATCH, topics=DECISIONS):
            for notification in batch:
                outcome = recorded_outcome(self.app.mapper.to_domain_event(notification))
                if outcome is not None and outcome.decided_at > after:
                    decisions[outcome.decided_at].append(outcome)
            start = batch[-1].id + 1
        resume = max(decisions, default=after)
        assigner.replaying = True
        try:
            position = after
            while position < resume and (batch := recorder.select_notifications(position + 1, BATCH, stop=resume)):
                for notification in batch:
                    event = self.app.mapper.to_domain_event(notification)
                    assigner.observe(notification.id, event)
                    for outcome in decisions.get(notification.id, []):
                        assigner.apply(outcome, event.timestamp)  # type: ignore[attr-defined]
                position = batch[-1].id
        finally:
            assigner.replaying = False
        self.assigner, self.position = assigner, resume

    # ------------------------------------------------------------------ following the log

    def catch_up(self) -> int:
        """Decides on everything recorded so far, if this process leads; returns decisions recorded."""
        with self.lock:
            lease = self.services.locks.try_acquire("assigner")
            if lease is None:
                return 0
            with lease:
                return self._catch_up(lease)

    def _catch_up(self, lease: Any) -> int:
        stored = self.decided_position()
        if self.assigner is None:
            self.rebuild()
        elif stored != self._stored:
            # Another process led since this one last did: its state here is stale. Take in what
            # the other decided (as a rebuild would) before deciding anything, or the same
            # triggers would be decided, and recorded, twice.
            self._replay(self.assigner, self.position)
        self._stored = stored
        recorded = 0
        while batch := self.app.recorder.select_notifications(self.position + 1, BATCH):
            assert self.assigner is not None
            outcomes: list[Outcome] = []
            for notification in batch:
                event = self.app.mapper.to_domain_event(notification)
                outcomes.extend(self.assigner.observe(notification.id, event))
            try:
                self._record(outcomes)
            except Conflict:
                log.info("a conversation changed while deciding; rebuilding the assigner state")
                self.assigner = None
                self.rebuild()
                continue
            self.position = batch[-1].id
            recorded += len(outcomes)
            self._store_position()
            self._stored = self.position
            lease.renew()
        return recorded

    def _record(self, outcomes: list[Outcome]) -> None:
        if not outcomes:
            return
        conversations: dict[UUID, Conversation] = {}
        for outcome in outcomes:
            conversation = conversations.get(outcome.conversation_id)
            if conversation is None:
                found = self.app._find(outcome.conversation_id)
                if not isinstance(found, Conversation):
                    continue
                conversation = conversations[outcome.conversation_id] = found
            if conversation.decided_at is not None and conversation.decided_at > outcome.decided_at:
                continue  # recorded before a crash: already there
            if outcome.kind == "routed" and outcome.rule_id is not None:
                conversation.route(outcome.rule_id, list(outcome.group_ids), outcome.decided_at)
            elif outcome.kind == "unrouted":
                conversation.leave_unrouted(outcome.reason, outcome.decided_at)
            elif outcome.kind == "queued":
                assert outcome.strategy is not None
                conversation.queue(outcome.strategy, outcome.reason, outcome.decided_at)
            elif outcome.kind == "assigned" and outcome.agent_id is not None:
                conversation.assign(outcome.agent_id, conversation.assignee_id, outcome.strategy, outcome.reason,
                                    ASSIGNER, outcome.decided_at, outcome.rule_id)
        self.app._store(*conversations.values())

    def _store_position(self) -> None:
        with self.services.database.transaction() as tx:
            tx.execute("INSERT INTO rm_positions (view, position) VALUES (?, ?) ON CONFLICT (view) "
                       "DO UPDATE SET position = excluded.position", (POSITION, self.position))

    def decided_position(self) -> int:
        rows = self.services.database.query("SELECT position FROM rm_positions WHERE view = ?", (POSITION,))
        return int(rows[0]["position"]) if rows else 0

    def wait_for(self, position: int | None, timeout: float = 10.0) -> bool:
        """True once the assigner (in this process or another) has decided on `position`."""
        if position is None:
            return True
        deadline = time.monotonic() + timeout
        while True:
            self.catch_up()
            if self.decided_position() >= position:
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)

    def run(self, stop: threading.Event, poll_seconds: float = 0.25) -> None:
        while not stop.is_set():
            try:
                self.catch_up()
            except Exception:
                log.exception("assigner batch failed; retrying")
                self.assigner = None
                stop.wait(1.0)
            stop.wait(poll_seconds)
