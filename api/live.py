"""Live updates (issue 13): one log reader per API process, fanning changes out to subscriptions.

The hub (`LiveHub`) is one thread per process. It starts at the head of the log (it keeps no
position: a subscription that needs the past asks for it with afterPosition), reads what was
committed after its position whenever the log signal moves (this process's commits at once,
other processes' through projections/logwatch.py), keeps the events that change what a
subscription shows (conversations and replies, mailbox statuses; the store filters by topic),
waits until the views those changes are read from include them, reads the rows once, and hands
the changes to every subscriber's queue. Subscribers never read the log or poll it themselves.

Each subscriber's queue is bounded (QUEUE_LIMIT changes): a subscriber whose queue is full is
dropped (`Dropped`), its items discarded, and the socket closed by the caller; a slow client
never holds more than that. The rows in queued changes are shared by all subscribers.

`feed` is one subscription's stream: registered with the hub first (which fixes the hub
position P0 the live queue starts after), then, with afterPosition A < P0, the changes (A, P0]
read from the log itself in batches, then the live queue, skipping anything at or before the
last position handed out: nothing missed, nothing twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Literal
from uuid import UUID
from weakref import WeakKeyDictionary

from eventsourcing.persistence import Notification

from adapters.database import Row
from api.services import Services
from domain import events as ev
from domain.conversation import Conversation
from domain.mailbox import Mailbox
from domain.reply import Reply
from projections import conversations as c
from projections.queries import any_of

log = logging.getLogger("mailroom.live")

QUEUE_LIMIT = 1000  # changes waiting for one subscriber; past this it is dropped
BATCH = 500  # notifications read at once, by the hub and by a replay
VIEWS = ("conversations", "directory")  # the views a change's row is read from
VIEW_POLL_SECONDS = 0.002  # while a change waits for the views (in-process positions: no query)
VIEW_QUERY_SECONDS = 0.05  # the stored positions, for views moved by another process
REPLY_CACHE = 10_000  # reply id -> conversation id

Topic = Literal["conversation", "mailbox"]


class ChangeKind(Enum):
    OPENED = "OPENED"
    MESSAGE_RECEIVED = "MESSAGE_RECEIVED"
    ROUTED = "ROUTED"
    QUEUED = "QUEUED"
    ASSIGNED = "ASSIGNED"
    REPLY_QUEUED = "REPLY_QUEUED"
    REPLY_SENT = "REPLY_SENT"
    REPLY_FAILED = "REPLY_FAILED"
    CLOSED = "CLOSED"
    REOPENED = "REOPENED"


def _topic(cls: Any) -> str:
    return str(cls.TOPIC)


# The events that change what a conversation shows, by stored topic. LeftUnrouted (no rule
# matched after all, e.g. on reopening) is a routing decision: ROUTED, the conversation then
# UNROUTED. A bounce fails the reply as a failed delivery does.
CONVERSATION_TOPICS: dict[str, ChangeKind] = {
    _topic(Conversation.Opened): ChangeKind.OPENED,
    _topic(Conversation.MessageReceived): ChangeKind.MESSAGE_RECEIVED,
    _topic(ev.ROUTED): ChangeKind.ROUTED,
    _topic(ev.LEFT_UNROUTED): ChangeKind.ROUTED,
    _topic(ev.QUEUED): ChangeKind.QUEUED,
    _topic(ev.ASSIGNED): ChangeKind.ASSIGNED,
    _topic(ev.CLOSED): ChangeKind.CLOSED,
    _topic(ev.REOPENED): ChangeKind.REOPENED,
}
REPLY_TOPICS: dict[str, ChangeKind] = {
    _topic(Reply.Queued): ChangeKind.REPLY_QUEUED,
    _topic(ev.REPLY_SENT): ChangeKind.REPLY_SENT,
    _topic(ev.REPLY_FAILED): ChangeKind.REPLY_FAILED,
    _topic(ev.REPLY_BOUNCED): ChangeKind.REPLY_FAILED,
}
# A mailbox's status: CONNECTED when bound or enabled, FAILING, CONNECTED again, DISABLED.
MAILBOX_TOPICS = frozenset(_topic(cls) for cls in (
    Mailbox.Bound, ev.MAILBOX_ENABLED, ev.MAILBOX_DISABLED, ev.MAILBOX_SYNC_FAILED, ev.MAILBOX_SYNC_RECOVERED))
TOPICS = (*CONVERSATION_TOPICS, *REPLY_TOPICS, *MAILBOX_TOPICS)


@dataclass(frozen=True)
class Change:
    """One change a subscription may send: `row` is the conversation's (or mailbox's) read-model
    row once the views include `position` (None: no such row, e.g. a deleted mailbox)."""

    position: int
    topic: Topic
    kind: ChangeKind | None  # for conversations
    id: str  # the conversation's or the mailbox's
    row: Row | None = field(default=None, compare=False)


class Dropped(Exception):
    """The subscriber fell QUEUE_LIMIT changes behind: it gets nothing more."""


class Closed(Exception):
    """The hub stopped (the process is shutting down)."""


class LogReader:
    """Notifications to changes with their rows; used by the hub and by replays alike."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.app: Any = services.app
        self._replies: OrderedDict[str, str] = OrderedDict()
        self._replies_lock = threading.Lock()

    def head(self) -> int:
        return int(self.app.recorder.max_notification_id() or 0)

    def read(self, after: int, stop: int, limit: int = BATCH) -> tuple[int, list[Notification]]:
        """The relevant notifications in (after, stop], at most `limit`; and the position read up
        to (the last one's, or `stop` when fewer were found: nothing else is there)."""
        if stop <= after:
            return after, []
        found = list(self.app.recorder.select_notifications(start=after + 1, limit=limit, stop=stop, topics=TOPICS))
        if len(found) < limit:
            return stop, found
        return found[-1].id, found

    def changes(self, notifications: Sequence[Notification]) -> list[Change]:
        out: list[Change] = []
        for n in notifications:
            if n.topic in CONVERSATION_TOPICS:
                out.append(Change(n.id, "conversation", CONVERSATION_TOPICS[n.topic], str(n.originator_id)))
            elif n.topic in REPLY_TOPICS:
                conversation = self._conversation_of_reply(n)
                if conversation is not None:
                    out.append(Change(n.id, "conversation", REPLY_TOPICS[n.topic], conversation))
            elif n.topic in MAILBOX_TOPICS:
                out.append(Change(n.id, "mailbox", None, str(n.originator_id)))
        return out

    def _conversation_of_reply(self, n: Notification) -> str | None:
        """A reply's events name the reply; its first (Queued) names the conversation."""
        reply_id = str(n.originator_id)
        with self._replies_lock:
            known = self._replies.get(reply_id)
        if known is not None:
            return known
        if n.topic == _topic(Reply.Queued):
            queued = self.app.mapper.to_domain_event(n)
        else:
            first = list(self.app.recorder.select_events(UUID(reply_id), limit=1))
            if not first:
                return None
            queued = self.app.mapper.to_domain_event(first[0])
        conversation = str(queued.conversation_id)
        with self._replies_lock:
            self._replies[reply_id] = conversation
            while len(self._replies) > REPLY_CACHE:
                self._replies.popitem(last=False)
        return conversation

    def wait_for_views(self, position: int, stop: threading.Event) -> bool:
        """Until the views changes are read from include `position` (False: stopping). This
        process's own view followers are asked first (free); the stored positions (a query)
        every VIEW_QUERY_SECONDS, for views another process moves."""
        followers = self.services.projections.followers
        next_query = 0.0
        while not stop.is_set():
            if all(followers[name].health.position >= position for name in VIEWS if name in followers):
                return True
            now = time.monotonic()
            if now >= next_query:
                positions = self.services.projections.positions()
                if all(positions.get(name, 0) >= position for name in VIEWS):
                    return True
                next_query = now + VIEW_QUERY_SECONDS
            stop.wait(VIEW_POLL_SECONDS)
        return False

    def with_rows(self, changes: list[Change]) -> list[Change]:
        """The changes with their rows, read in one statement per kind of row."""
        db = self.services.database
        conversations = {ch.id for ch in changes if ch.topic == "conversation"}
        mailboxes = {ch.id for ch in changes if ch.topic == "mailbox"}
        rows: dict[str, Row] = {}
        if conversations:
            where, params = any_of(db, "id", conversations)
            rows.update((str(r["id"]), r) for r in db.query(f"SELECT * FROM {c.CONVERSATIONS.name} WHERE {where}",
                                                            params))
        if mailboxes:
            rows.update(self.services.directory.mailboxes_by_id(mailboxes))
        return [Change(ch.position, ch.topic, ch.kind, ch.id, rows.get(ch.id)) for ch in changes]

    def replay(self, after: int, stop: int, never: threading.Event) -> tuple[int, list[Change]]:
        """One batch of the changes in (after, stop], with rows; and the position read up to."""
        read_to, found = self.read(after, stop)
        changes = self.changes(found)
        if changes and not self.wait_for_views(changes[-1].position, never):
            raise Closed
        return read_to, self.with_rows(changes)


class Subscriber:
    """One subscription's bounded queue: filled by the hub's thread, emptied on the event loop."""

    def __init__(self, topic: Topic, loop: asyncio.AbstractEventLoop, limit: int) -> None:
        self.topic = topic
        self.loop = loop
        self.limit = limit
        self.start = 0  # the hub's position when subscribed: the queue holds what comes after it
        self.items: deque[Change] = deque()
        self.lock = threading.Lock()
        self.dropped = False
        self.closed = False
        self.ready = asyncio.Event()

    def offer(self, changes: Sequence[Change]) -> bool:
        """Hub thread: queues the changes; False once the subscriber is dropped."""
        with self.lock:
            if self.dropped:
                return False
            if len(self.items) + len(changes) > self.limit:
                self.dropped = True
                self.items.clear()
            else:
                self.items.extend(changes)
        self._wake()
        return not self.dropped

    def close(self) -> None:
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        try:
            self.loop.call_soon_threadsafe(self.ready.set)
        except RuntimeError:  # the loop is gone: nobody is waiting
            self.closed = True

    def check(self) -> None:
        if self.dropped:
            raise Dropped
        if self.closed:
            raise Closed

    async def take(self, timeout: float) -> list[Change]:
        """What is queued, waiting up to `timeout` for something ([] if nothing came)."""
        self.check()
        if not self.items:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.ready.wait(), timeout)
        self.ready.clear()
        self.check()
        with self.lock:
            taken = list(self.items)
            self.items.clear()
        return taken


class LiveHub:
    def __init__(self, services: Services, queue_limit: int = QUEUE_LIMIT) -> None:
        self.services = services
        self.reader = LogReader(services)
        self.queue_limit = queue_limit
        self.position = 0  # every change up to here has been handed to the subscribers
        self._subscribers: set[Subscriber] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.failures = 0
        self.published = 0  # changes handed out (to any number of subscribers)
        self.dropped = 0  # subscribers dropped for falling behind

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self.position = self.reader.head()
        self._thread = threading.Thread(target=self.run, name="live-hub", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.services.app.recorder.signal.bump()  # type: ignore[attr-defined]  # wakes the reader now
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        with self._lock:
            subscribers, self._subscribers = list(self._subscribers), set()
        for subscriber in subscribers:
            subscriber.close()

    @property
    def stopping(self) -> threading.Event:
        return self._stop

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def describe(self) -> dict[str, Any]:
        return {"position": self.position, "subscribers": len(self._subscribers), "published": self.published,
                "dropped": self.dropped, "failures": self.failures}

    # -- subscribers --------------------------------------------------------------------------

    def subscribe(self, topic: Topic, loop: asyncio.AbstractEventLoop | None = None) -> Subscriber:
        subscriber = Subscriber(topic, loop or asyncio.get_running_loop(), self.queue_limit)
        with self._lock:
            subscriber.start = self.position
            if self._stop.is_set() or not self.alive():
                subscriber.closed = True
            else:
                self._subscribers.add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        with self._lock:
            self._subscribers.discard(subscriber)

    # -- the one reader -----------------------------------------------------------------------

    def run(self) -> None:
        signal = self.services.app.recorder.signal  # type: ignore[attr-defined]
        while not self._stop.is_set():
            seen = signal.count  # before reading: a commit during the step wakes the next wait
            try:
                moved = self.step()
                self.failures = 0
            except Exception:
                self.failures += 1
                delay = min(30.0, 0.5 * 2 ** min(self.failures - 1, 6))
                log.exception("live updates: reading the log after %s failed; retrying in %.1fs", self.position, delay)
                self._stop.wait(delay)
                continue
            if not moved:
                signal.wait(seen, 1.0)

    def step(self) -> bool:
        """One batch after the hub's position to the subscribers; False if there was nothing."""
        head = self.reader.head()
        if head <= self.position:
            return False
        read_to, found = self.reader.read(self.position, head)
        changes = self.reader.changes(found)
        if changes:
            if not self.reader.wait_for_views(changes[-1].position, self._stop):
                return False
            changes = self.reader.with_rows(changes)
        self.publish(read_to, changes)
        return True

    def publish(self, read_to: int, changes: Sequence[Change]) -> None:
        by_topic: dict[Topic, list[Change]] = {}
        for change in changes:
            by_topic.setdefault(change.topic, []).append(change)
        with self._lock:
            for subscriber in list(self._subscribers):
                wanted = by_topic.get(subscriber.topic)
                if wanted and not subscriber.offer(wanted):
                    self._subscribers.discard(subscriber)
                    self.dropped += 1
                    log.warning("live updates: a %s subscriber fell %s changes behind: dropped",
                                subscriber.topic, subscriber.limit)
            self.position = max(self.position, read_to)
            self.published += len(changes)


async def feed(hub: LiveHub, topic: Topic, after: int | None, tick: float = 5.0) -> AsyncIterator[Change | None]:
    """One subscription's changes in log order: with `after`, first those after it from the log,
    then the live ones, without gap or repeat. Yields None when nothing came for `tick` seconds
    (the caller's moment to check the token). Raises Dropped or Closed."""
    subscriber = hub.subscribe(topic)
    try:
        last = subscriber.start
        if after is not None:
            position = max(after, 0)
            while position < subscriber.start:
                subscriber.check()
                position, found = await asyncio.to_thread(hub.reader.replay, position, subscriber.start, hub.stopping)
                for change in found:
                    if change.topic == topic:
                        yield change
            last = max(after, subscriber.start)
        while True:
            taken = await subscriber.take(tick)
            if not taken:
                yield None
            for change in taken:
                if change.position > last:
                    last = change.position
                    yield change
    finally:
        hub.unsubscribe(subscriber)


_hubs: WeakKeyDictionary[Any, LiveHub] = WeakKeyDictionary()
_hubs_lock = threading.Lock()


def hub_of(services: Services) -> LiveHub:
    """The process's one hub over this application (made on first use; started by the app's
    lifespan, api/main.py)."""
    with _hubs_lock:
        found = _hubs.get(services.app)
        if found is None:
            found = _hubs[services.app] = LiveHub(services)
        return found


def install(services: Services, hub: LiveHub) -> None:
    """Tests: a hub of their own (e.g. with a small queue limit) for this application."""
    with _hubs_lock:
        _hubs[services.app] = hub

