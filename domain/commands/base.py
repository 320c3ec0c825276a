"""What every command module shares: the event store, ports, saving with conflict handling."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, JSONTranscoder, Transcoder

from domain.errors import Problem, Rejected, not_found
from domain.ports import Discoverer, EventIndex, LoginVerifier, References, SecretStore
from domain.transcodings import register_all

A = TypeVar("A", bound=Aggregate)
P = ParamSpec("P")
R = TypeVar("R")


class Keep:
    """Marks an optional input that was not given: leave the current value as it is."""

    _instance: Keep | None = None

    def __new__(cls) -> Keep:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "KEEP"


KEEP = Keep()


@dataclass(frozen=True)
class Written:
    """A command's result: the aggregate it is about and the log position to wait for."""

    id: UUID
    position: int | None


class Conflict(Exception):
    """Another writer changed the aggregate first."""


class PositionMoved(IntegrityError):
    """A log follower's stored position moved under it (another process advanced it):
    nothing of what it saved was recorded."""


class Base(Application[UUID]):
    name = "mailroom"
    is_snapshotting_enabled = False

    def __init__(
        self,
        env: dict[str, str],
        *,
        secrets: SecretStore | None = None,
        verify_login: LoginVerifier | None = None,
        references: References | None = None,
        discover: Discoverer | None = None,
    ) -> None:
        """Ports may be given later (the secret store lives in the event store's database)."""
        super().__init__(env)
        self.secrets: SecretStore = secrets  # type: ignore[assignment]
        self.verify_login: LoginVerifier = verify_login  # type: ignore[assignment]
        self.references: References = references  # type: ignore[assignment]
        self.discover: Discoverer | None = discover
        self.event_index: EventIndex | None = None

    def construct_transcoder(self) -> Transcoder:
        transcoder = super().construct_transcoder()
        assert isinstance(transcoder, JSONTranscoder)
        register_all(transcoder)
        return transcoder

    def _load(self, cls: type[A], aggregate_id: UUID, field: tuple[str, ...], what: str) -> A:
        """The live aggregate, or a NOT_FOUND rejection naming the input field."""
        try:
            aggregate: Any = self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            raise not_found(field, what) from None
        if not isinstance(aggregate, cls) or getattr(aggregate, "deleted", False):
            raise not_found(field, what)
        return aggregate

    def find(self, aggregate_id: UUID) -> Any | None:
        """The aggregate with this id in its latest state, or None."""
        return self._find(aggregate_id)

    def _find(self, aggregate_id: UUID) -> Any | None:
        try:
            return self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None

    def known_ids(self, ids: set[UUID]) -> set[UUID]:
        """Which of `ids` have aggregates. May answer more than exist (each is then looked up):
        without an index port, it answers all of them."""
        return ids if self.event_index is None else self.event_index.existing(ids)

    def _store(self, *aggregates: Aggregate, **options: Any) -> int | None:
        """Saves atomically; a concurrent writer's prior change surfaces as Conflict. `options`
        go to the recorder (a follower's position change, committed with the events)."""
        try:
            recordings = self.save(*aggregates, **options)
        except PositionMoved:
            raise
        except IntegrityError as exc:
            raise Conflict(str(exc)) from exc
        return recordings[-1].notification.id if recordings else None

    def _store_or_reject(self, field: tuple[str, ...] | None, *aggregates: Aggregate) -> int | None:
        try:
            return self._store(*aggregates)
        except Conflict:
            raise Rejected(
                Problem(field, "changed by someone else at the same time; try again", "CONFLICT")
            ) from None


def retrying(attempts: int = 3) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Re-runs a command from fresh state when a concurrent writer got there first."""

    def wrap(func: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(func)
        def run(*args: P.args, **kwargs: P.kwargs) -> R:
            for attempt in range(attempts):
                try:
                    return func(*args, **kwargs)
                except Conflict:
                    if attempt == attempts - 1:
                        raise Rejected(
                            Problem(None, "too many concurrent changes; try again", "CONFLICT")
                        ) from None
            raise AssertionError("unreachable")

        return run

    return wrap
