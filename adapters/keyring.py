"""Customers' keys, kept outside the log (domain/personal.py says why).

- A customer is known here only by pseudonyms: HMAC-SHA256 of the lower-cased address (person)
  and of its domain, under a key derived from MAILROOM_SECRET_KEY; never by the address.
- Each customer has one live data key (random, AES-256-GCM), stored wrapped under a key derived
  from MAILROOM_SECRET_KEY, like mailbox passwords. Erasing the customer deletes it; a customer
  who writes again after that gets a new key (new data), and what the old one sealed stays gone.
- `mailroom_personal_owners` says whose data an aggregate's events hold (a conversation, a reply,
  a contact, a sidebar record): later events of the aggregate are sealed under the same key, and
  erasure finds what to tombstone and which blobs to delete.
- A new customer's key and an aggregate's owner are stored with the events that need them, in
  their transaction (adapters/recorders.py), which also checks that every key the events were
  sealed with still exists: nothing is stored sealed under a key erased meanwhile.

The keyring has connections of its own, one per thread, not the pool's: events are decoded
(and keys read) inside the views' write transactions, and asking the SQLite pool for a second
connection while holding its writer deadlocks.

Keys read for opening are cached for KEY_TTL seconds: another process's erasure takes effect
here within that time (this process's own, at once). Keys for sealing are cached too: the check
in the events' transaction catches one erased since.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID, uuid4

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from eventsourcing.persistence import IntegrityError

from adapters.database import Database
from domain.personal import customer_key

KEYS, OWNERS = "mailroom_customer_keys", "mailroom_personal_owners"
KEY_TTL = 1.0
CACHE_KEPT = 100_000  # entries per cache; a full cache starts again empty
PSEUDONYM_HEX = 20  # 80 bits: no two customers of one installation share one


def _derived(secret: str, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(secret.encode())


class KeyLost(ValueError):
    """A key is stored but cannot be unwrapped: MAILROOM_SECRET_KEY changed (never read as erased)."""


class Keyring:
    def __init__(self, database: Database, secret: str) -> None:
        self.database = database
        self._wrap = AESGCM(_derived(secret, b"mailroom-customer-keys-v1"))
        self._pseudonym_key = _derived(secret, b"mailroom-pseudonyms-v1")
        self._opened: dict[str, tuple[float, AESGCM | None]] = {}  # key id -> (read at, key; None: erased)
        self._owners: dict[UUID, tuple[str, str]] = {}  # never changes once recorded
        self._sealing: dict[str, tuple[str, AESGCM]] = {}  # person -> live key, checked as events are stored
        self._pending = threading.local()  # what this thread's events being encoded need stored with them
        self._lock = threading.Lock()
        self._local = threading.local()
        self._connections: list[Any] = []

    def _keep(self, cache: dict[Any, Any], key: Any, value: Any) -> None:
        with self._lock:
            if len(cache) >= CACHE_KEPT:
                cache.clear()
            cache[key] = value

    # ------------------------------------------------------------------ its own connections

    def _connection(self) -> Any:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            if self.database.is_postgres:
                connection = self.database.connect()
            else:
                pool: Any = self.database.datastore.pool
                if pool.is_sqlite_memory_mode:  # one database per connection: the pool's it must be
                    return None
                connection = sqlite3.connect(pool.db_name, uri=True, check_same_thread=False, isolation_level=None,
                                             timeout=30)
                connection.row_factory = sqlite3.Row
            self._local.connection = connection
            with self._lock:
                self._connections.append(connection)
        return connection

    def _query(self, sql: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
        connection = self._connection()
        if connection is None:
            return self.database.query(sql, params)
        if self.database.is_postgres:
            return [dict(r) for r in connection.execute(sql.replace("?", "%s"), params).fetchall()]
        return [dict(r) for r in connection.execute(sql, params).fetchall()]

    def _execute(self, sql: str, params: tuple[Any, ...]) -> None:
        """One statement, committed on its own."""
        connection = self._connection()
        if connection is None:
            with self.database.transaction() as tx:
                tx.execute(sql, params)
        elif self.database.is_postgres:
            connection.execute(sql.replace("?", "%s"), params)
        else:
            connection.execute(sql, params)

    def close(self) -> None:
        with self._lock:
            connections, self._connections = self._connections, []
        for connection in connections:
            connection.close()
        self._local = threading.local()

    def create_tables(self) -> None:
        with self.database.transaction() as tx:
            tx.execute(f"CREATE TABLE IF NOT EXISTS {KEYS} (person TEXT PRIMARY KEY, key_id TEXT NOT NULL UNIQUE, "
                       "wrapped TEXT NOT NULL)")
            tx.execute(f"CREATE TABLE IF NOT EXISTS {OWNERS} (aggregate_id TEXT PRIMARY KEY, person TEXT NOT NULL, "
                       "domain TEXT NOT NULL)")
            tx.execute(f"CREATE INDEX IF NOT EXISTS {OWNERS}_person ON {OWNERS} (person)")

    # ------------------------------------------------------------------ pseudonyms

    def pseudonym(self, text: str) -> str:
        return hmac.new(self._pseudonym_key, text.encode(), hashlib.sha256).hexdigest()[:PSEUDONYM_HEX]

    def identity(self, address: str) -> tuple[str, str]:
        """(person, domain) pseudonyms of an address."""
        address = customer_key(address)
        return self.pseudonym("address:" + address), self.domain_pseudonym(address.rpartition("@")[2])

    def domain_pseudonym(self, domain: str) -> str:
        return self.pseudonym("domain:" + domain.strip().lower())

    # ------------------------------------------------------------------ keys

    def sealing_key(self, person: str) -> tuple[str, AESGCM]:
        """The customer's live key: (key id, key). A new customer's key is made here and stored
        with the events it seals (`store_pending`), which also checks that every key they use
        still exists: one erased meanwhile, or made first by another process, fails the save."""
        pending = self._work()
        found = pending.new_keys.get(person) or self._sealing.get(person)
        if found is None:
            rows = self._query(f"SELECT key_id, wrapped FROM {KEYS} WHERE person = ?", (person,))
            if rows:
                found = str(rows[0]["key_id"]), self._unwrapped(str(rows[0]["key_id"]), str(rows[0]["wrapped"]))
                self._keep(self._sealing, person, found)
            else:
                key_id, raw = str(uuid4()), AESGCM.generate_key(bit_length=256)
                nonce = os.urandom(12)
                pending.wrapped[person] = base64.b64encode(nonce + self._wrap.encrypt(nonce, raw, key_id.encode())
                                                           ).decode()
                found = pending.new_keys[person] = key_id, AESGCM(raw)
        pending.used[found[0]] = person
        return found

    def _work(self) -> Any:
        work = self._pending
        if not hasattr(work, "used"):
            work.used, work.new_keys, work.wrapped, work.owners = {}, {}, {}, []
        return work

    def store_pending(self, execute: Callable[[str, Sequence[Any]], list[Any]]) -> None:
        """In the transaction storing this thread's encoded events (adapters/recorders.py; `execute`
        runs one statement there, with ? placeholders, and answers its rows): their owners and new
        keys, then the check that every key they were sealed with is there. IntegrityError (the
        save fails, nothing is stored, a retry encodes again) if one is not."""
        work = self._work()
        owners, new_keys, wrapped, used = work.owners, work.new_keys, work.wrapped, work.used
        work.used, work.new_keys, work.wrapped, work.owners = {}, {}, {}, []
        for aggregate_id, person, domain in owners:
            execute(f"INSERT INTO {OWNERS} (aggregate_id, person, domain) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                    (aggregate_id, person, domain))
        for person, (key_id, _) in new_keys.items():
            execute(f"INSERT INTO {KEYS} (person, key_id, wrapped) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                    (person, key_id, wrapped[person]))
        if not used:
            return
        ids = sorted(used)
        marks = ", ".join("?" for _ in ids)
        rows = execute(f"SELECT key_id FROM {KEYS} WHERE key_id IN ({marks})", ids)
        present = {str(next(iter(r.values())) if isinstance(r, dict) else r[0]) for r in rows}
        missing = [i for i in ids if i not in present]
        if missing:
            with self._lock:
                for key_id in missing:
                    self._sealing.pop(used[key_id], None)
            raise IntegrityError("a customer key was erased, or made first by another process: encode again")
        for person, found in new_keys.items():
            self._keep(self._sealing, person, found)

    def opening_key(self, key_id: str) -> AESGCM | None:
        """The key with this id, or None: erased."""
        now = time.monotonic()
        cached = self._opened.get(key_id)
        if cached is not None and (cached[1] is None or now - cached[0] < KEY_TTL):
            return cached[1]  # an erased key never comes back: ids are never reused
        rows = self._query(f"SELECT wrapped FROM {KEYS} WHERE key_id = ?", (key_id,))
        key = self._unwrapped(key_id, str(rows[0]["wrapped"])) if rows else None
        self._keep(self._opened, key_id, (now, key))
        return key

    def _unwrapped(self, key_id: str, wrapped: str) -> AESGCM:
        data = base64.b64decode(wrapped)
        try:
            return AESGCM(self._wrap.decrypt(data[:12], data[12:], key_id.encode()))
        except InvalidTag:
            raise KeyLost("a customer key cannot be unwrapped: MAILROOM_SECRET_KEY changed?") from None

    def erase(self, person: str) -> None:
        """Deletes the customer's key: what it sealed reads as tombstones from now on."""
        rows = self._query(f"SELECT key_id FROM {KEYS} WHERE person = ?", (person,))
        self._execute(f"DELETE FROM {KEYS} WHERE person = ?", (person,))
        with self._lock:
            self._sealing.pop(person, None)
            for r in rows:
                self._opened[str(r["key_id"])] = (time.monotonic(), None)

    # ------------------------------------------------------------------ owners

    def own(self, aggregate_id: UUID, person: str, domain: str) -> None:
        """Records whose data the aggregate's events hold, with the event being encoded."""
        self._keep(self._owners, aggregate_id, (person, domain))
        self._work().owners.append((str(aggregate_id), person, domain))

    def owner(self, aggregate_id: UUID) -> tuple[str, str] | None:
        found = self._owners.get(aggregate_id)
        if found is None:
            rows = self._query(f"SELECT person, domain FROM {OWNERS} WHERE aggregate_id = ?", (str(aggregate_id),))
            if not rows:
                return None
            found = (str(rows[0]["person"]), str(rows[0]["domain"]))
            self._keep(self._owners, aggregate_id, found)
        return found

    def owned_by(self, person: str) -> list[UUID]:
        rows = self._query(f"SELECT aggregate_id FROM {OWNERS} WHERE person = ?", (person,))
        return [UUID(str(r["aggregate_id"])) for r in rows]
