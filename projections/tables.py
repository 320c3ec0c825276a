"""Read-model tables: declared once, created on either backend, rebuilt into scratch copies."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from adapters.database import Row, Tx


@dataclass(frozen=True)
class Table:
    name: str
    columns: dict[str, str]  # name -> portable SQL type (TEXT, BIGINT)
    key: tuple[str, ...]
    indexes: tuple[tuple[str, ...], ...] = field(default=())

    def key_of(self, row: Row) -> tuple[Any, ...]:
        return tuple(row[k] for k in self.key)

    def create(self, tx: Tx, prefix: str = "") -> None:
        cols = ", ".join(f"{name} {kind}" for name, kind in self.columns.items())
        tx.execute(
            f"CREATE TABLE IF NOT EXISTS {prefix}{self.name} ({cols}, PRIMARY KEY ({', '.join(self.key)}))"
        )
        for columns in self.indexes:
            index = f"{prefix}{self.name}_by_{'_'.join(columns)}"
            tx.execute(f"CREATE INDEX IF NOT EXISTS {index} ON {prefix}{self.name} ({', '.join(columns)})")

    def upsert_sql(self, prefix: str = "") -> str:
        columns = list(self.columns)
        rest = [c for c in columns if c not in self.key]
        update = ", ".join(f"{c} = excluded.{c}" for c in rest) if rest else ""
        conflict = f"DO UPDATE SET {update}" if update else "DO NOTHING"
        return (
            f"INSERT INTO {prefix}{self.name} ({', '.join(columns)}) "
            f"VALUES ({', '.join('?' for _ in columns)}) "
            f"ON CONFLICT ({', '.join(self.key)}) {conflict}"
        )

    def drop(self, tx: Tx, prefix: str = "") -> None:
        tx.execute(f"DROP TABLE IF EXISTS {prefix}{self.name}")


class Rows:
    """A unit of work over view tables: reads by key, writes coalesced per row, flushed in
    bulk. `fresh` says no row exists but those this object wrote (a rebuild into new tables),
    so misses need no read; it holds until the cache is cleared."""

    def __init__(self, tx: Tx, prefix: str = "", fresh: bool = False) -> None:
        self.tx = tx
        self.prefix = prefix
        self.fresh = fresh
        self._rows: dict[tuple[str, tuple[Any, ...]], Row | None] = {}
        self._dirty: dict[str, dict[tuple[Any, ...], Table]] = {}

    def get(self, table: Table, *key: Any) -> Row | None:
        slot = (table.name, key)
        if slot not in self._rows:
            if self.fresh:
                self._rows[slot] = None
            else:
                where = " AND ".join(f"{k} = ?" for k in table.key)
                self._rows[slot] = self.tx.execute(
                    f"SELECT * FROM {self.prefix}{table.name} WHERE {where}", key
                ).one()
        row = self._rows[slot]
        return None if row is None else dict(row)

    def put(self, table: Table, row: Row) -> None:
        full = {name: row.get(name) for name in table.columns}
        key = table.key_of(full)
        self._rows[(table.name, key)] = full
        self._dirty.setdefault(table.name, {})[key] = table

    def update(self, table: Table, *key: Any, **changes: Any) -> None:
        row = self.get(table, *key)
        if row is not None:
            row.update(changes)
            self.put(table, row)

    def delete(self, table: Table, *key: Any) -> None:
        self._rows[(table.name, key)] = None
        self._dirty.setdefault(table.name, {})[key] = table

    def flush(self) -> None:
        for name, keys in self._dirty.items():
            table = next(iter(keys.values()))
            gone = [k for k in keys if self._rows[(name, k)] is None]
            if gone:
                where = " AND ".join(f"{k} = ?" for k in table.key)
                self.tx.executemany(f"DELETE FROM {self.prefix}{name} WHERE {where}", gone)
            rows = [r for k in keys if (r := self._rows[(name, k)]) is not None]
            self.tx.executemany(table.upsert_sql(self.prefix), [[r[c] for c in table.columns] for r in rows])
        self._dirty.clear()

    def cached(self, table: Table) -> list[Row]:
        """Rows of `table` this unit of work holds (all of them when it started fresh)."""
        return [dict(r) for (name, _), r in self._rows.items() if name == table.name and r is not None]

    def __len__(self) -> int:
        return len(self._rows)

    def clear(self) -> None:
        """Forget cached rows (after a flush); later misses read the tables."""
        assert not self._dirty, "flush before clearing"
        self._rows.clear()
        self.fresh = False
