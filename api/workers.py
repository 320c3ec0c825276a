"""Background workers of one process: for now the projection driver."""

from __future__ import annotations

import threading

from api.bootstrap import Services


class Workers:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []

    def start(self) -> None:
        self.stopping.clear()
        runner = threading.Thread(
            target=self.services.projections.run, args=(self.stopping,), name="projections", daemon=True
        )
        runner.start()
        self.threads.append(runner)

    def alive(self) -> bool:
        return bool(self.threads) and all(t.is_alive() for t in self.threads)

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=10)
        self.threads.clear()

    def run_forever(self) -> None:
        """`mailroom worker`: the same workers, in the foreground."""
        self.start()
        try:
            while self.alive():
                self.stopping.wait(1.0)
        finally:
            self.stop()
