"""One log follower for every view and process.

A follower reads the log after its stored position, in batches, and hands each batch to its
consumer. The consumer commits its effects together with the new position (a view: rows and
position in one transaction; a process: its events and position in one event-store
transaction, see adapters/recorders.py), so a crash at any line leaves either both or
neither. Whoever wrote the stored position, a follower goes on from it.

A batch that fails is retried with exponential backoff, and the failure shows in `health`
(for /healthz, /metrics and the log); other followers are not held up by it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from eventsourcing.persistence import Notification

from adapters.recorders import LogSignal

log = logging.getLogger("mailroom.follower")
MAX_BACKOFF = 60.0


class Consumer(Protocol):
    name: str
    batch_size: int

    def consume(self, position: int, batch: Sequence[Notification]) -> bool:
        """Commits the batch's effects with the stored position moving from `position` to
        `batch[-1].id`; False if the stored position was no longer `position`."""
        ...

    def stored_position(self) -> int:
        ...


@dataclass
class Health:
    position: int = 0
    failures: int = 0
    last_error: str | None = None
    retry_at: float = 0.0  # monotonic time before which a failed batch is not retried
    caught_up_once: bool = False  # reached the head of the log at least once since start
    leading: bool = True  # False while another process holds this follower's lease


class Follower:
    def __init__(self, consumer: Consumer, read: Callable[[int, int], Sequence[Notification]],
                 head: Callable[[], int], lease: Callable[[], Any] | None = None) -> None:
        self.consumer = consumer
        self.name = consumer.name
        self._read = read
        self._head = head
        self._lease = lease  # a context manager factory, None to run unleased; returns None if busy
        self._lock = threading.Lock()
        self.health = Health()
        self.consumed = 0  # events consumed by this process, for /metrics

    def step(self) -> int:
        """One batch after the stored position; returns the number of events consumed."""
        while True:
            position = self.consumer.stored_position()
            batch = self._read(position, self.consumer.batch_size)
            if not batch:
                self.health.position = position
                self.health.caught_up_once = True
                return 0
            if self.consumer.consume(position, batch):
                self.health.position = batch[-1].id
                self.consumed += len(batch)
                return len(batch)
            # another process advanced meanwhile: read again from where it stopped

    def catch_up(self) -> int:
        """Consumes everything recorded so far (if this process holds the follower's lease)."""
        with self._lock:
            if self._lease is None:
                return self._drain()
            lease = self._lease()
            if lease is None:  # another process leads: this one stands by, nothing to catch up
                self.health.position = self.consumer.stored_position()
                self.health.caught_up_once, self.health.leading = True, False
                return 0
            with lease:
                self.health.leading = True
                return self._drain(getattr(lease, "renew", None))

    def _drain(self, renew: Callable[[], Any] | None = None) -> int:
        done = 0
        while (consumed := self.step()) > 0:
            done += consumed
            if renew is not None:
                renew()
        # A process that also acts on the world (the outbox sender) does so here: caught up, and
        # still holding the lease.
        after: Callable[[Callable[[], Any] | None], int] | None = getattr(self.consumer, "after_catch_up", None)
        if after is not None:
            done += after(renew)
        return done

    def attempt(self) -> int:
        """catch_up with failures recorded and backed off, never raised."""
        if time.monotonic() < self.health.retry_at:
            return 0
        try:
            done = self.catch_up()
        except Exception as exc:
            h = self.health
            h.failures += 1
            h.last_error = f"{type(exc).__name__}: {exc}"[:500]
            delay = min(MAX_BACKOFF, 0.5 * 2 ** (h.failures - 1))
            h.retry_at = time.monotonic() + delay
            log.exception("follower %s failed at position %s (failure %s); retrying in %.1fs",
                          self.name, h.position, h.failures, delay)
            return 0
        if self.health.failures:
            log.info("follower %s recovered after %s failures", self.name, self.health.failures)
        self.health.failures, self.health.last_error, self.health.retry_at = 0, None, 0.0
        return done

    def wait_for(self, position: int | None, timeout: float = 10.0) -> bool:
        """Catches up here, then true once the stored position includes `position` (tests, CLI)."""
        if position is None:
            return True
        deadline = time.monotonic() + timeout
        while True:
            self.catch_up()
            if self.consumer.stored_position() >= position:
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)

    def reached(self, position: int | None, signal: LogSignal, timeout: float = 10.0) -> bool:
        """True once the stored position includes `position`, whichever process moves it;
        waits, bounded, and never does the work itself (requests use this)."""
        if position is None:
            return True
        deadline = time.monotonic() + timeout
        while True:
            seen = signal.count
            if self.consumer.stored_position() >= position:
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            signal.wait(seen, min(left, 0.05))  # a position moved by another process is polled

    def lag(self) -> int:
        return max(0, self._head() - self.health.position)

    def describe(self) -> dict[str, Any]:
        h = self.health
        return {"position": h.position, "ready": h.caught_up_once and h.failures == 0, "leading": h.leading,
                "failures": h.failures, "lastError": h.last_error}

    def run(self, stop: threading.Event, signal: LogSignal) -> None:
        """Follows the log until `stop` is set, waking when `signal` says the log may have moved."""
        while not stop.is_set():
            seen = signal.count  # before reading: a change during the attempt wakes the next wait
            self.attempt()
            backoff = self.health.retry_at - time.monotonic()
            if backoff > 0:
                stop.wait(backoff)
            else:
                signal.wait(seen, 1.0)
