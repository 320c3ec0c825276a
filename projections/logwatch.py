"""Wakes this process's followers when the log moves: at once for this process's own commits
(the recorder bumps the signal), by LISTEN/NOTIFY for other processes on PostgreSQL, and by a
cheap poll of the log's head for other processes on SQLite (which has no notifications)."""

from __future__ import annotations

import logging
import threading
from typing import Any

from adapters.database import Database
from adapters.recorders import LogSignal

log = logging.getLogger("mailroom.logwatch")
SQLITE_POLL_SECONDS = 0.05


class LogWatch:
    def __init__(self, app: Any, database: Database) -> None:
        self.recorder = app.recorder
        self.database = database
        self.signal: LogSignal = app.recorder.signal

    def run(self, stop: threading.Event) -> None:
        if self.database.is_postgres:
            self._listen(stop)
        else:
            self._poll(stop)

    def _poll(self, stop: threading.Event) -> None:
        head = None
        while not stop.wait(SQLITE_POLL_SECONDS):
            try:
                now = self.recorder.max_notification_id()
            except Exception:
                log.warning("reading the log head failed", exc_info=True)
                stop.wait(1.0)
                continue
            if now != head:
                head = now
                self.signal.bump()

    def _listen(self, stop: threading.Event) -> None:
        channel = self.recorder.channel_name
        while not stop.is_set():
            try:
                with self.database.connect() as conn:
                    conn.execute(f'LISTEN "{channel}"')
                    self.signal.bump()  # anything missed while not listening
                    while not stop.is_set():
                        for _ in conn.notifies(timeout=0.2, stop_after=1):
                            self.signal.bump()
            except Exception:
                log.warning("LISTEN connection lost; reconnecting", exc_info=True)
                stop.wait(1.0)
