"""bindMailbox with an address and a password alone (issue 11), end to end through the command:
the loopback DNS server publishes SRV records for a test domain that point at the test Dovecot
(over TLS, its CA trusted) and the test SMTP server; discovery finds and verifies them."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from adapters.discovery.discoverer import SettingsDiscovery
from adapters.settings import load_settings
from api.bootstrap import Services, real_login
from domain.commands.mailboxes import BindFailed
from domain.mailbox import Mailbox
from domain.values import MailProtocol, TransportSecurity
from tests.dns_server import DnsServer
from tests.dovecot import Dovecot
from tests.smtp_server import SmtpSink


@pytest.fixture(params=["sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    """Discovery does not depend on the engine; binding's storage is covered on both in
    tests/integration/test_admin_commands.py: SQLite only."""
    return str(request.param)


@pytest.fixture(scope="module")
def sink() -> Iterator[SmtpSink]:
    """A submission server whose one user is the mailbox's address (its password set per test)."""
    server = SmtpSink("STARTTLS", "nobody@example.test", "unset")
    yield server
    server.close()


@pytest.fixture
def trusted(tmp_path: Path, dovecot: Dovecot, sink: SmtpSink) -> str:
    path = tmp_path / "trusted.pem"
    path.write_text(Path(dovecot.ca_file).read_text() + Path(sink.ca_file).read_text())
    return str(path)


def discovering(make_services: Callable[..., Services], dns_server: DnsServer, ca_file: str, *,
                allow_private: bool = True, deadline: float = 25.0) -> Services:
    settings = load_settings()
    discovery = SettingsDiscovery(dns_server.spec, allow_private, ca_file, deadline=deadline, attempt_timeout=3.0)
    return make_services(verify_login=real_login(settings), discover=discovery)


def test_an_address_and_a_password_alone_bind_a_mailbox(make_services: Callable[..., Services], dns_server: DnsServer,
                                                         dovecot: Dovecot, sink: SmtpSink, trusted: str) -> None:
    dns_server.clear()
    domain = f"d{uuid.uuid4().hex[:8]}.test"
    user, password = f"u{uuid.uuid4().hex[:8]}", "discover me"
    dovecot.add_user(user, password)
    sink.reset()
    sink.user, sink.password = f"{user}@{domain}", password  # SMTP AUTH with the full address
    dns_server.srv(f"_imaps._tcp.{domain}", "localhost", dovecot.imaps_port)
    dns_server.srv(f"_submission._tcp.{domain}", "localhost", sink.port)
    services = discovering(make_services, dns_server, trusted)
    started = time.monotonic()
    written, attempts = services.app.bind_mailbox(f"{user}@{domain}", password)
    elapsed = time.monotonic() - started
    mailbox = services.app.find(written.id)
    assert isinstance(mailbox, Mailbox)
    assert (mailbox.protocol, mailbox.incoming.host, mailbox.incoming.port, mailbox.incoming.security) == (
        MailProtocol.IMAP, "localhost", dovecot.imaps_port, TransportSecurity.TLS)
    assert mailbox.incoming.username == user  # the local part: Dovecot refused the full address first
    assert mailbox.outgoing is not None and (mailbox.outgoing.port, mailbox.outgoing.username) == (
        sink.port, f"{user}@{domain}")
    assert [(a.source, a.outcome) for a in attempts if a.outcome == "ok"] == [("srv", "ok")]
    assert elapsed < 15
    assert sink.messages == []  # checked by AUTH, nothing sent


def test_a_wrong_password_is_auth_failed_not_a_request_for_settings(
        make_services: Callable[..., Services], dns_server: DnsServer, dovecot: Dovecot, trusted: str) -> None:
    dns_server.clear()
    domain = f"d{uuid.uuid4().hex[:8]}.test"
    user = f"u{uuid.uuid4().hex[:8]}"
    dovecot.add_user(user, "the right one")
    dns_server.srv(f"_imaps._tcp.{domain}", "localhost", dovecot.imaps_port)
    services = discovering(make_services, dns_server, trusted)
    with pytest.raises(BindFailed) as failed:
        services.app.bind_mailbox(f"{user}@{domain}", "the wrong one")
    assert [p.code for p in failed.value.problems] == ["AUTH_FAILED"]
    assert ("srv", "auth-failed") in [(a.source, a.outcome) for a in failed.value.attempts]


def test_nothing_found_asks_for_advanced_settings_in_time(
        make_services: Callable[..., Services], dns_server: DnsServer, trusted: str) -> None:
    dns_server.clear()
    services = discovering(make_services, dns_server, trusted)
    started = time.monotonic()
    with pytest.raises(BindFailed) as failed:
        services.app.bind_mailbox(f"someone@unknown-{uuid.uuid4().hex[:6]}.test", "pw")
    assert time.monotonic() - started < 10
    assert [p.code for p in failed.value.problems] == ["NEEDS_ADVANCED_SETTINGS"]
    assert failed.value.attempts and {a.outcome for a in failed.value.attempts} <= {"no-such-host", "not-offered"}


def test_srv_records_pointing_at_loopback_are_refused_without_private_hosts(
        make_services: Callable[..., Services], dns_server: DnsServer, dovecot: Dovecot, trusted: str) -> None:
    dns_server.clear()
    domain = f"d{uuid.uuid4().hex[:8]}.test"
    dns_server.srv(f"_imaps._tcp.{domain}", "localhost", dovecot.imaps_port)
    services = discovering(make_services, dns_server, trusted, allow_private=False)
    with pytest.raises(BindFailed) as failed:
        services.app.bind_mailbox(f"x@{domain}", "pw")
    assert ("srv", "private-address") in [(a.source, a.outcome) for a in failed.value.attempts]
    assert [p.code for p in failed.value.problems] == ["NEEDS_ADVANCED_SETTINGS"]


def test_every_host_a_black_hole_still_answers_by_the_deadline(
        make_services: Callable[..., Services], dns_server: DnsServer, trusted: str) -> None:
    dns_server.clear()
    domain = f"d{uuid.uuid4().hex[:8]}.test"
    dns_server.black_hole(domain)
    services = discovering(make_services, dns_server, trusted, deadline=6.0)
    started = time.monotonic()
    with pytest.raises(BindFailed):
        services.app.bind_mailbox(f"x@{domain}", "pw")
    assert time.monotonic() - started < 8
