"""Per-request DataLoaders: every lookup a resolver makes by key goes through one of these, so
that a page of 50 conversations with nested fields costs one statement per kind of lookup
(agents, groups, mailboxes, messages, ...), each in one thread hop, instead of one per row.

They live as long as the request (Context) and cache what they read; a mutation's command
drops them (Context.refresh) so that its answer reads what it wrote. None of them checks
visibility: the resolvers that reach conversations do (api/graphql/conversations.py).
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from strawberry.dataloader import DataLoader

from adapters import blobs, syncstate
from adapters.database import Database, Row
from projections.conversation_queries import ConversationQueries
from projections.queries import Directory, any_of

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


async def _off_loop(func: Callable[..., V], *args: Any) -> V:
    """One thread hop (the database drivers block), as common.blocking does."""
    return await asyncio.to_thread(func, *args)


def by_key(fetch: Callable[[list[str]], Mapping[str, V]], default: Callable[[], V]) -> DataLoader[str, V]:
    """One fetch (one statement, one thread hop) per batch of keys; missing keys get default()."""

    async def load(keys: list[str]) -> Sequence[V]:
        found = await _off_loop(fetch, keys)
        return [found[k] if k in found else default() for k in keys]

    return DataLoader(load_fn=load)


def _none() -> None:
    return None


def _zero() -> int:
    return 0


def sync_health(database: Database, mailbox_ids: Iterable[str]) -> dict[str, syncstate.Health]:
    """SyncState.health for many mailboxes in one statement (a mailbox never synced: no entry)."""
    where, params = any_of(database, "mailbox_id", mailbox_ids)
    out = {}
    for r in database.query(f"SELECT * FROM {syncstate.HEALTH} WHERE {where}", params):
        synced = datetime.fromisoformat(r["last_synced_at"]) if r["last_synced_at"] else None
        out[str(r["mailbox_id"])] = syncstate.Health(synced, r["last_error"], int(r["failures"]),
                                                     float(r["next_attempt_at"]))
    return out


def blob_texts(database: Database, keys: Iterable[str]) -> dict[str, bytes]:
    """BlobStore.get for many keys in one statement."""
    where, params = any_of(database, "sha256", keys)
    return {str(r["sha256"]): zlib.decompress(bytes(r["data"]))
            for r in database.query(f"SELECT sha256, data FROM {blobs.TABLE} WHERE {where}", params)}


class Loaders:
    def __init__(self, d: Directory, c: ConversationQueries, db: Database) -> None:
        # read-model rows by id (None: no such row)
        self.mailboxes: DataLoader[str, Row | None] = by_key(d.mailboxes_by_id, _none)
        self.agents: DataLoader[str, Row | None] = by_key(d.agents_by_id, _none)
        self.groups: DataLoader[str, Row | None] = by_key(d.groups_by_id, _none)
        self.rules: DataLoader[str, Row | None] = by_key(d.rules_by_id, _none)
        self.accounts: DataLoader[str, Row | None] = by_key(d.accounts_by_id, _none)
        self.contacts: DataLoader[str, Row | None] = by_key(d.contacts_by_id, _none)
        # lists by the id they belong to
        self.groups_of_agent: DataLoader[str, list[Row]] = by_key(d.groups_of_agents, list)
        self.members: DataLoader[str, list[Row]] = by_key(d.members_of_groups, list)
        self.messages: DataLoader[str, list[Row]] = by_key(c.messages_of, list)
        self.assignments: DataLoader[str, list[Row]] = by_key(c.assignments_of, list)
        self.conversation_groups: DataLoader[str, set[str]] = by_key(c.group_ids_of_many, set)
        # figures
        self.workloads: DataLoader[str, int] = by_key(c.workloads, _zero)
        self.quarantined: DataLoader[str, int] = by_key(c.quarantined_counts, _zero)
        self.in_workspace: DataLoader[str, bool] = by_key(
            lambda ids: dict.fromkeys(d.mailboxes_in_workspace(ids), True), lambda: False)
        self.sync_health: DataLoader[str, syncstate.Health] = by_key(
            lambda ids: sync_health(db, ids), lambda: syncstate.Health(None, None, 0, 0.0))
        self.blobs: DataLoader[str, bytes | None] = by_key(lambda keys: blob_texts(db, keys), _none)

        async def received(keys: list[tuple[str, str]]) -> Sequence[int]:
            """(agent id, day) -> conversations assigned that day; one statement per day asked."""
            days: dict[str, list[str]] = {}
            for agent_id, day in keys:
                days.setdefault(day, []).append(agent_id)
            found = await _off_loop(lambda: {day: c.received_on_many(ids, day) for day, ids in days.items()})
            return [found[day].get(agent_id, 0) for agent_id, day in keys]

        self.received_on: DataLoader[tuple[str, str], int] = DataLoader(load_fn=received)
