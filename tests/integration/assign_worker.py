"""An assigner in a process of its own that decides slowly, for the kill -9 tests:

    python -m tests.integration.assign_worker BATCH PAUSE_SECONDS

Bootstraps services from the same MAILROOM_* environment as the test, reads the log BATCH
events at a time, and pauses PAUSE_SECONDS both before and after each batch's decisions and
position are committed (so that a kill lands with a batch folded in memory but not written,
or just written). Runs until killed.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from adapters.settings import load_settings
from api.bootstrap import bootstrap


def main(batch: str, pause: str) -> None:
    services = bootstrap(load_settings())
    process: Any = services.assigner.consumer
    process.batch_size = int(batch)
    app = services.app
    record = app.record_decisions

    def slow_record(outcomes: Any, *args: Any, **kwargs: Any) -> Any:
        if outcomes:
            time.sleep(float(pause))  # folded in memory, nothing written yet
        written = record(outcomes, *args, **kwargs)
        if outcomes:
            time.sleep(float(pause))  # decisions and position written together
        return written

    app.record_decisions = slow_record  # type: ignore[method-assign]
    print("deciding", flush=True)
    while True:
        services.assigner.catch_up()
        time.sleep(0.05)


if __name__ == "__main__":
    main(*sys.argv[1:3])
