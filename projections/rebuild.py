"""Rebuilding views from the whole log into scratch tables: to replace the live tables
(`mailroom projections rebuild`) or to compare with them (`... verify`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from adapters.database import Tx
from projections.driver import POSITIONS, Projections, lock_position
from projections.tables import Rows
from projections.view import View

SCRATCH = "rb_"
CACHE_ROWS = 200_000
Progress = Callable[[int], object]


def _build_scratch(projections: Projections, view: View, until: int, progress: Progress) -> tuple[int, Rows]:
    """Replays the log up to `until` into freshly created scratch tables. Rows are written
    once when the cache fills (and at the end), not after every batch: most rows change
    many times over a log, and writing them is the bulk of a rebuild's cost."""
    database = projections.database
    with database.transaction() as tx:
        for table in view.tables:
            table.drop(tx, SCRATCH)
            table.create(tx, SCRATCH)
    rows = Rows(tx, SCRATCH, fresh=True)
    position = 0
    while position < until:
        batch = projections.read(position, stop=until)
        if not batch:
            break
        with database.transaction() as tx:  # a fresh cache reads nothing; a cleared one reads here
            rows.tx = tx
            projections.apply(view, batch, rows)
            if len(rows) > CACHE_ROWS:
                rows.flush()
        if len(rows) > CACHE_ROWS:
            rows.clear()
        position = batch[-1].id
        progress(len(batch))
    with database.transaction() as tx:
        rows.tx = tx
        rows.flush()
    return position, rows


def _finish_scratch(projections: Projections, view: View, tx: Tx, rows: Rows, start: int, until: int) -> None:
    """Inside the final transaction: apply what arrived since the bulk replay."""
    rows.tx = tx
    position = start
    while position < until:
        batch = projections.read(position, stop=until)
        if not batch:
            break
        projections.apply(view, batch, rows)
        position = batch[-1].id
    rows.flush()


def rebuild(projections: Projections, view: View, progress: Progress = lambda n: None) -> int:
    """Replaces the view's tables with ones rebuilt from the log; returns the new position."""
    built, rows = _build_scratch(projections, view, projections.head(), progress)
    with projections.database.transaction() as tx:
        lock_position(tx, view.name)  # hold off live drivers while swapping
        head = projections.head()
        _finish_scratch(projections, view, tx, rows, built, head)
        for table in view.tables:
            columns = ", ".join(table.columns)
            tx.execute(f"DELETE FROM {table.name}")
            tx.execute(f"INSERT INTO {table.name} ({columns}) SELECT {columns} FROM {SCRATCH}{table.name}")
            table.drop(tx, SCRATCH)
        tx.execute(f"UPDATE {POSITIONS} SET position = ? WHERE view = ?", (head, view.name))
    return head


def verify(projections: Projections, view: View, progress: Progress = lambda n: None) -> list[str]:
    """Differences between the live tables and a rebuild at the same position."""
    projections.catch_up()
    built, rows = _build_scratch(projections, view, projections.head(), progress)
    differences: list[str] = []
    with projections.database.transaction() as tx:
        live_position = lock_position(tx, view.name)
        if live_position < built:
            differences.append(f"{view.name}: live position {live_position} is behind the log ({built})")
        _finish_scratch(projections, view, tx, rows, built, live_position)
        for table in view.tables:
            order = ", ".join(table.key)
            live = tx.execute(f"SELECT * FROM {table.name} ORDER BY {order}").all()
            fresh = tx.execute(f"SELECT * FROM {SCRATCH}{table.name} ORDER BY {order}").all()
            differences.extend(_compare(table.name, table.key, live, fresh))
            table.drop(tx, SCRATCH)
    return differences


def _compare(name: str, key: tuple[str, ...], live: list[dict[str, Any]], fresh: list[dict[str, Any]]) -> list[str]:
    live_by = {tuple(r[k] for k in key): r for r in live}
    fresh_by = {tuple(r[k] for k in key): r for r in fresh}
    out = []
    for k in sorted(live_by.keys() | fresh_by.keys(), key=str):
        a, b = live_by.get(k), fresh_by.get(k)
        if a != b:
            out.append(f"{name} {dict(zip(key, k, strict=True))}: live={a} rebuilt={b}")
    return out
