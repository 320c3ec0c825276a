"""The session-wide private Dovecot fixture (see tests/dovecot.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.dovecot import Dovecot


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    """A started private Dovecot, shared by the session; tests add their own users.

    Where Dovecot cannot run (e.g. a laptop without it), the tests that need it are skipped;
    on CI they fail instead, so a broken CI image cannot pass by skipping everything.
    """
    server: Dovecot | None = None
    try:
        server = Dovecot()
        server.start()
    except Exception as exc:  # any start-up failure means the same here
        if server is not None:
            server.close()
        reason = f"private Dovecot could not be started: {exc}"
        if os.environ.get("CI", "").strip().lower() == "true":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    try:
        yield server
    finally:
        server.close()
