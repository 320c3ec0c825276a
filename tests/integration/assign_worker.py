"""An assigner in a process of its own that decides slowly, for the kill -9 test:

    python -m tests.integration.assign_worker BATCH PAUSE_SECONDS

Bootstraps services from the same MAILROOM_* environment as the test, reads the log BATCH
events at a time, and pauses PAUSE_SECONDS after each batch of decisions is saved, before its
position is stored (so that the test can kill it there: some decisions recorded, not all, and
the last recorded batch not yet marked as done). Runs until killed.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import api.assigner
from adapters.settings import load_settings
from api.bootstrap import bootstrap


def main(batch: str, pause: str) -> None:
    services = bootstrap(load_settings())
    api.assigner.BATCH = int(batch)
    worker = services.assigner
    record = worker._record

    def slow_record(outcomes: list[Any]) -> None:
        record(outcomes)
        if outcomes:
            time.sleep(float(pause))  # saved, but the position not yet stored

    worker._record = slow_record
    print("deciding", flush=True)
    while True:
        worker.catch_up()
        time.sleep(0.05)


if __name__ == "__main__":
    main(*sys.argv[1:3])
