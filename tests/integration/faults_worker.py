"""A sync in a process of its own, for the kill -9 test:

    python -m tests.integration.faults_worker MAILBOX_ID BATCH_MESSAGES PAUSE_SECONDS

Bootstraps services from the same MAILROOM_* environment as the test, takes in
BATCH_MESSAGES per batch and pauses PAUSE_SECONDS after each batch is recorded, before the
folder's cursor moves on (so that the test can kill it there, with some but not all messages
recorded and the last batch not yet marked as taken in), then syncs the mailbox.
"""

from __future__ import annotations

import sys
import time
from typing import Any
from uuid import UUID

import api.processes.sync
from adapters.settings import load_settings
from api.bootstrap import bootstrap, real_login


def main(mailbox_id: str, batch: str, pause: str) -> None:
    settings = load_settings()
    services = bootstrap(settings, verify_login=real_login(settings))
    api.processes.sync.BATCH_MESSAGES = int(batch)
    take_in = services.app.take_in

    def slow_take_in(*args: Any, **kwargs: Any) -> Any:
        result = take_in(*args, **kwargs)
        time.sleep(float(pause))  # recorded, but the folder's cursor not yet advanced
        return result

    services.app.take_in = slow_take_in  # type: ignore[method-assign]
    print("syncing", flush=True)
    report = api.processes.sync.MailboxSync.of(services).sync(UUID(mailbox_id))
    print(f"finished fetched={report.fetched} error={report.error}", flush=True)
    services.close()


if __name__ == "__main__":
    main(*sys.argv[1:4])
