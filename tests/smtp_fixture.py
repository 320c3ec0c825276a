"""The session-wide SMTP sink fixture (see tests/smtp_server.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.smtp_server import SmtpSink

SMTP_USER = "mailroom@example.test"
SMTP_PASSWORD = "smtp-secret"


@pytest.fixture(scope="session")
def smtp_sink() -> Iterator[SmtpSink]:
    """One STARTTLS sink (AUTH only after TLS) for the whole session; trust `ca_file`."""
    sink = SmtpSink("STARTTLS", SMTP_USER, SMTP_PASSWORD)
    try:
        yield sink
    finally:
        sink.close()


@pytest.fixture
def smtp(smtp_sink: SmtpSink) -> SmtpSink:
    """The session sink, running, with nothing recorded and no injected behaviour."""
    smtp_sink.reset()
    return smtp_sink
