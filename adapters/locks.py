"""One sync per mailbox at a time, across processes.

PostgreSQL: a session advisory lock on a dedicated connection; it dies with the
connection, so a killed worker never leaves a mailbox locked. SQLite (one machine):
a lease row naming the holder's pid; a lease whose process is gone, or which expired,
is taken over.
"""

from __future__ import annotations

import os
import time
import uuid
from abc import ABC, abstractmethod
from typing import Any

from adapters.database import Database

LEASES = "mailroom_leases"
LEASE_SECONDS = 120.0


class Lease(ABC):
    @abstractmethod
    def renew(self) -> None: ...

    @abstractmethod
    def release(self) -> None: ...

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class MailboxLocks(ABC):
    @abstractmethod
    def try_acquire(self, name: str) -> Lease | None: ...

    def acquire(self, name: str, wait: float) -> Lease | None:
        """Waits up to `wait` seconds for the lock."""
        deadline = time.monotonic() + wait
        while True:
            lease = self.try_acquire(name)
            if lease is not None or time.monotonic() >= deadline:
                return lease
            time.sleep(0.05)


def lock_key(name: str) -> int:
    """A signed 64-bit key for pg_advisory_lock."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"mailroom-lock:{name}").int % (1 << 63)


class _PgLease(Lease):
    def __init__(self, connection: Any, key: int) -> None:
        self.connection = connection
        self.key = key

    def renew(self) -> None:
        pass  # held as long as the connection lives

    def release(self) -> None:
        try:
            self.connection.execute("SELECT pg_advisory_unlock(%s)", (self.key,))
        finally:
            self.connection.close()


class PostgresLocks(MailboxLocks):
    def __init__(self, connect: Any) -> None:
        self.connect = connect

    def try_acquire(self, name: str) -> Lease | None:
        key = lock_key(name)
        connection = self.connect()
        row = connection.execute("SELECT pg_try_advisory_lock(%s) AS ok", (key,)).fetchone()
        if row and (row["ok"] if isinstance(row, dict) else row[0]):
            return _PgLease(connection, key)
        connection.close()
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _SqliteLease(Lease):
    def __init__(self, locks: SqliteLocks, name: str, holder: str) -> None:
        self.locks, self.name, self.holder = locks, name, holder

    def renew(self) -> None:
        with self.locks.database.transaction() as tx:
            tx.execute(f"UPDATE {LEASES} SET expires_at = ? WHERE name = ? AND holder = ?",
                       (time.time() + LEASE_SECONDS, self.name, self.holder))

    def release(self) -> None:
        with self.locks.database.transaction() as tx:
            tx.execute(f"DELETE FROM {LEASES} WHERE name = ? AND holder = ?", (self.name, self.holder))


class SqliteLocks(MailboxLocks):
    def __init__(self, database: Database) -> None:
        self.database = database
        with database.transaction() as tx:
            tx.execute(f"CREATE TABLE IF NOT EXISTS {LEASES} (name TEXT PRIMARY KEY, holder TEXT NOT NULL, "
                       "pid BIGINT NOT NULL, expires_at DOUBLE PRECISION NOT NULL)")

    def try_acquire(self, name: str) -> Lease | None:
        holder = uuid.uuid4().hex
        with self.database.transaction() as tx:
            tx.execute(f"UPDATE {LEASES} SET name = name WHERE name = ?", (name,))  # take the write lock first
            row = tx.execute(f"SELECT pid, expires_at FROM {LEASES} WHERE name = ?", (name,)).one()
            if row is not None and row["expires_at"] > time.time() and _alive(int(row["pid"])):
                return None
            tx.execute(f"INSERT INTO {LEASES} (name, holder, pid, expires_at) VALUES (?, ?, ?, ?) "
                       "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, pid = excluded.pid, "
                       "expires_at = excluded.expires_at", (name, holder, os.getpid(), time.time() + LEASE_SECONDS))
        return _SqliteLease(self, name, holder)
