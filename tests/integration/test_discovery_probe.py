"""verify_candidates against the real private Dovecot, the real SMTP sink and black holes.

Hosts are names ("localhost", "other.example") that a test resolver maps to 127.0.0.1: the
probe connects to the checked address and verifies the certificate against the name.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from adapters.discovery.dns import NoSuchHost
from adapters.discovery.model import Candidate, ProbeResult
from adapters.discovery.probe import verify_candidates
from domain.values import MailProtocol, TransportSecurity
from tests.blackhole import BlackHole, DeadPort
from tests.dovecot import Dovecot
from tests.smtp_server import SmtpSink

IMAP, POP3 = MailProtocol.IMAP, MailProtocol.POP3
NONE, STARTTLS, TLS = TransportSecurity.NONE, TransportSecurity.STARTTLS, TransportSecurity.TLS
DOMAIN = "example.test"
NAMES = {"localhost": ["127.0.0.1"], "other.example": ["127.0.0.1"]}


def resolve(host: str) -> list[str]:
    try:
        return NAMES[host]
    except KeyError:
        raise NoSuchHost(host) from None


@dataclass(frozen=True)
class Account:
    local: str
    password: str

    @property
    def address(self) -> str:
        return f"{self.local}@{DOMAIN}"

    @property
    def usernames(self) -> tuple[str, ...]:
        return (self.address, self.local)


@pytest.fixture(scope="module")
def full(dovecot: Dovecot) -> Account:
    """A Dovecot user whose login name is the full address."""
    account = Account(f"probe-{secrets.token_hex(4)}", "full secret 1")
    dovecot.add_user(account.address, account.password)
    return account


@pytest.fixture(scope="module")
def local(dovecot: Dovecot) -> Account:
    """A Dovecot user whose login name is the local part only."""
    account = Account(f"probe-{secrets.token_hex(4)}", "local secret 2")
    dovecot.add_user(account.local, account.password)
    return account


@pytest.fixture
def ca_file(dovecot: Dovecot, smtp: SmtpSink, tmp_path: Path) -> str:
    """Dovecot's and the SMTP sink's CAs in one file (each made its own)."""
    path = tmp_path / "cas.pem"
    path.write_text(Path(dovecot.ca_file).read_text() + Path(smtp.ca_file).read_text())
    return str(path)


@pytest.fixture
def hole() -> Iterator[BlackHole]:
    with BlackHole() as listener:
        yield listener


def incoming(protocol: MailProtocol, port: int, usernames: tuple[str, ...], security: TransportSecurity = TLS,
             host: str = "localhost") -> Candidate:
    return Candidate("guess", "incoming", protocol, host, port, security, usernames)


def outgoing(port: int, usernames: tuple[str, ...], security: TransportSecurity = STARTTLS,
             host: str = "localhost") -> Candidate:
    return Candidate("guess", "outgoing", None, host, port, security, usernames)


def probe(candidates: list[Candidate], password: str, ca_file: str | None, *, allow_private: bool = True,
          attempt_timeout: float = 5.0, within: float = 20.0) -> ProbeResult:
    result = verify_candidates(candidates, password, resolve=resolve, allow_private=allow_private,
                               extra_ca_file=ca_file, attempt_timeout=attempt_timeout,
                               deadline=time.monotonic() + within)
    assert len(result.attempts) == len(candidates)
    for attempt in result.attempts:
        assert password not in attempt.detail
    return result


def outcomes(result: ProbeResult) -> list[str]:
    return [attempt.outcome for attempt in result.attempts]


def wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            return False
        time.sleep(0.01)
    return True


# -- incoming --------------------------------------------------------------------------------


def test_imaps_logs_in_with_the_full_address(dovecot: Dovecot, full: Account) -> None:
    result = probe([incoming(IMAP, dovecot.imaps_port, full.usernames)], full.password, dovecot.ca_file)

    assert result.incoming is not None
    assert result.incoming.username == full.address
    assert result.incoming.settings.port == dovecot.imaps_port
    assert outcomes(result) == ["ok"]
    assert not result.auth_failed


def test_the_local_part_is_tried_after_the_full_address_is_refused(dovecot: Dovecot, local: Account) -> None:
    result = probe([incoming(IMAP, dovecot.imaps_port, local.usernames)], local.password, dovecot.ca_file)

    assert result.incoming is not None
    assert result.incoming.username == local.local
    assert outcomes(result) == ["ok"]


@pytest.mark.parametrize(("protocol", "security"), [(IMAP, TLS), (IMAP, STARTTLS), (POP3, TLS), (POP3, STARTTLS)],
                         ids=["imaps", "imap-starttls", "pop3s", "pop3-stls"])
def test_each_protocol_and_security(dovecot: Dovecot, local: Account, protocol: MailProtocol,
                                    security: TransportSecurity) -> None:
    port = {(IMAP, TLS): dovecot.imaps_port, (IMAP, STARTTLS): dovecot.imap_port,
            (POP3, TLS): dovecot.pop3s_port, (POP3, STARTTLS): dovecot.pop3_port}[(protocol, security)]
    result = probe([incoming(protocol, port, local.usernames, security)], local.password, dovecot.ca_file)

    assert result.incoming is not None
    assert result.incoming.candidate.protocol is protocol
    assert result.incoming.username == local.local


def test_a_wrong_password_is_auth_failed_for_every_variant(dovecot: Dovecot, full: Account) -> None:
    candidates = [incoming(IMAP, dovecot.imaps_port, full.usernames),
                  incoming(POP3, dovecot.pop3s_port, full.usernames)]
    result = probe(candidates, "not the password", dovecot.ca_file)

    assert result.incoming is None
    assert outcomes(result) == ["auth-failed", "auth-failed"]
    assert result.auth_failed
    for attempt in result.attempts:
        assert full.address in attempt.detail and full.local in attempt.detail  # both variants tried


def test_imap_is_preferred_over_pop3_when_both_work(dovecot: Dovecot, local: Account) -> None:
    candidates = [incoming(POP3, dovecot.pop3s_port, local.usernames),
                  incoming(IMAP, dovecot.imaps_port, local.usernames)]
    result = probe(candidates, local.password, dovecot.ca_file)

    assert result.incoming is not None
    assert result.incoming.candidate.protocol is IMAP
    assert outcomes(result)[1] == "ok"
    assert outcomes(result)[0] in ("ok", "skipped")


def test_within_a_protocol_the_earliest_candidate_wins(dovecot: Dovecot, local: Account) -> None:
    candidates = [incoming(IMAP, dovecot.imap_port, local.usernames, STARTTLS),
                  incoming(IMAP, dovecot.imaps_port, local.usernames)]
    result = probe(candidates, local.password, dovecot.ca_file)

    assert result.incoming is not None
    assert result.incoming.candidate == candidates[0]


def test_a_certificate_for_another_name_is_tls_failed(dovecot: Dovecot, local: Account) -> None:
    # other.example resolves to 127.0.0.1, but Dovecot's certificate is for localhost/127.0.0.1.
    result = probe([incoming(IMAP, dovecot.imaps_port, local.usernames, host="other.example"),
                    incoming(POP3, dovecot.pop3_port, local.usernames, STARTTLS, host="other.example")],
                   local.password, dovecot.ca_file)

    assert result.incoming is None
    assert outcomes(result) == ["tls-failed", "tls-failed"]
    assert not result.auth_failed


def test_an_unknown_ca_is_tls_failed(dovecot: Dovecot, local: Account) -> None:
    result = probe([incoming(IMAP, dovecot.imaps_port, local.usernames)], local.password, None)

    assert outcomes(result) == ["tls-failed"]


def test_no_such_host_and_unreachable(dovecot: Dovecot, local: Account) -> None:
    with DeadPort() as dead:
        result = probe([incoming(IMAP, dead.port, local.usernames),
                        incoming(IMAP, dovecot.imaps_port, local.usernames, host="nowhere.invalid")],
                       local.password, dovecot.ca_file)

    assert outcomes(result) == ["unreachable", "no-such-host"]
    assert result.incoming is None and not result.auth_failed


# -- the password goes nowhere it should not -------------------------------------------------


def test_a_plaintext_candidate_never_gets_the_password(hole: BlackHole, local: Account) -> None:
    result = probe([incoming(IMAP, hole.port, local.usernames, NONE), outgoing(hole.port, local.usernames, NONE)],
                   local.password, None, attempt_timeout=1.0)

    assert outcomes(result) == ["protocol-error", "protocol-error"]
    assert all("plaintext refused" in attempt.detail for attempt in result.attempts)
    time.sleep(0.1)
    assert hole.connections == 0
    assert local.password.encode() not in hole.received


def test_smtp_without_starttls_never_gets_the_password(local: Account) -> None:
    with SmtpSink("NONE", local.address, local.password) as plain:
        result = probe([outgoing(plain.port, local.usernames)], local.password, None)

    assert outcomes(result) == ["protocol-error"]
    assert "STARTTLS" in result.attempts[0].detail
    assert result.outgoing is None


def test_a_private_address_is_not_connected_to(hole: BlackHole, local: Account) -> None:
    result = probe([incoming(IMAP, hole.port, local.usernames), outgoing(hole.port, local.usernames)],
                   local.password, None, allow_private=False)

    assert outcomes(result) == ["private-address", "private-address"]
    time.sleep(0.1)
    assert hole.connections == 0


def test_a_host_with_any_private_address_is_refused(hole: BlackHole, local: Account,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(NAMES, "half.example", ["8.8.8.8", "127.0.0.1"])
    result = probe([incoming(IMAP, hole.port, local.usernames, host="half.example")], local.password, None,
                   allow_private=False)

    assert outcomes(result) == ["private-address"]
    time.sleep(0.1)
    assert hole.connections == 0


class RecordingResolver:
    """Like adapters.discovery.dns.Resolver: addresses(host, *, timeout)."""

    def __init__(self) -> None:
        self.timeouts: list[float | None] = []

    def addresses(self, host: str, *, timeout: float | None = None) -> list[str]:
        self.timeouts.append(timeout)
        return resolve(host)


def test_a_resolver_object_gets_the_attempt_timeout(dovecot: Dovecot, local: Account) -> None:
    resolver = RecordingResolver()
    result = verify_candidates([incoming(IMAP, dovecot.imaps_port, local.usernames)], local.password,
                               resolve=resolver, allow_private=True, extra_ca_file=dovecot.ca_file,
                               attempt_timeout=4.0, deadline=time.monotonic() + 20)

    assert result.incoming is not None
    assert len(resolver.timeouts) == 1
    assert resolver.timeouts[0] is not None and 0 < resolver.timeouts[0] <= 4.0


def test_a_refused_candidate_is_only_reported(hole: BlackHole, local: Account) -> None:
    refused = Candidate("srv", "incoming", IMAP, "localhost", hole.port, TLS, local.usernames, refused="not-offered")
    result = probe([refused], local.password, None)

    assert outcomes(result) == ["not-offered"]
    time.sleep(0.1)
    assert hole.connections == 0


# -- timing ----------------------------------------------------------------------------------


def test_a_black_hole_before_a_good_server_costs_one_attempt_timeout(
        dovecot: Dovecot, local: Account, hole: BlackHole) -> None:
    candidates = [incoming(IMAP, hole.port, local.usernames), incoming(IMAP, dovecot.imaps_port, local.usernames)]
    start = time.monotonic()
    result = probe(candidates, local.password, dovecot.ca_file, attempt_timeout=2.0, within=20.0)
    elapsed = time.monotonic() - start

    assert result.incoming is not None and result.incoming.candidate == candidates[1]
    assert outcomes(result) == ["timeout", "ok"]
    assert elapsed < 3.0
    assert local.password.encode() not in hole.received


def test_a_black_hole_after_a_good_server_does_not_delay_the_answer(
        dovecot: Dovecot, full: Account, hole: BlackHole) -> None:
    candidates = [incoming(IMAP, dovecot.imaps_port, full.usernames), incoming(IMAP, hole.port, full.usernames),
                  incoming(POP3, hole.port, full.usernames)]
    start = time.monotonic()
    result = probe(candidates, full.password, dovecot.ca_file, attempt_timeout=30.0, within=40.0)
    elapsed = time.monotonic() - start

    assert result.incoming is not None and result.incoming.candidate == candidates[0]
    assert outcomes(result) == ["ok", "skipped", "skipped"]
    assert elapsed < 1.0
    # The attempts still waiting for a greeting were aborted, not left to wait for 30 s.
    assert wait_until(lambda: not any(t.name.startswith("discovery-probe") for t in threading.enumerate()), 1.0)


def test_all_black_holes_answer_by_the_deadline(hole: BlackHole, local: Account) -> None:
    # More candidates than the probe runs at once: the last ones start late and are cut off
    # by the deadline rather than by their own attempt timeout.
    candidates = [incoming(protocol, hole.port, local.usernames, security) for protocol in (IMAP, POP3)
                  for security in (TLS, STARTTLS)] * 4 + [outgoing(hole.port, local.usernames, security)
                                                          for security in (TLS, STARTTLS)] * 2
    start = time.monotonic()
    result = probe(candidates, local.password, None, attempt_timeout=2.0, within=3.0)
    elapsed = time.monotonic() - start

    assert elapsed < 4.0
    assert result.incoming is None and result.outgoing is None and not result.auth_failed
    assert set(outcomes(result)) <= {"timeout", "skipped"}
    assert local.password.encode() not in hole.received


def test_the_deadline_cuts_a_long_attempt_timeout(hole: BlackHole, local: Account) -> None:
    start = time.monotonic()
    result = probe([incoming(IMAP, hole.port, local.usernames)], local.password, None,
                   attempt_timeout=30.0, within=1.0)
    elapsed = time.monotonic() - start

    assert outcomes(result) == ["timeout"]
    assert elapsed < 1.5


# -- outgoing --------------------------------------------------------------------------------


def test_smtp_starttls_auth_is_accepted_and_nothing_is_sent(smtp: SmtpSink, ca_file: str) -> None:
    local_part = smtp.user.partition("@")[0]
    result = probe([outgoing(smtp.port, (smtp.user, local_part))], smtp.password, ca_file)

    assert result.outgoing is not None
    assert result.outgoing.username == smtp.user
    assert outcomes(result) == ["ok"]
    assert smtp.messages == []


def test_smtp_wrong_password_is_auth_failed(smtp: SmtpSink, ca_file: str) -> None:
    result = probe([outgoing(smtp.port, (smtp.user,))], "wrong smtp password", ca_file)

    assert result.outgoing is None
    assert outcomes(result) == ["auth-failed"]
    assert smtp.messages == []


def test_smtp_with_implicit_tls(local: Account) -> None:
    with SmtpSink("TLS", local.local, local.password) as sink:
        result = probe([outgoing(sink.port, local.usernames, TLS)], local.password, sink.ca_file)
        assert sink.messages == []

    assert result.outgoing is not None
    assert result.outgoing.username == local.local  # after the full address was refused


def test_smtp_without_auth_is_auth_failed(smtp: SmtpSink, ca_file: str) -> None:
    smtp.offer_auth = False
    result = probe([outgoing(smtp.port, (smtp.user,))], smtp.password, ca_file)

    assert outcomes(result) == ["auth-failed"]
    assert "no AUTH" in result.attempts[0].detail


def test_a_whole_bind_incoming_and_outgoing(dovecot: Dovecot, smtp: SmtpSink, ca_file: str,
                                            hole: BlackHole) -> None:
    smtp_local = smtp.user.partition("@")[0]
    dovecot.add_user(smtp.user, smtp.password)
    usernames = (smtp.user, smtp_local)
    candidates = [incoming(IMAP, dovecot.imaps_port, usernames), incoming(IMAP, dovecot.imap_port, usernames, STARTTLS),
                  incoming(POP3, dovecot.pop3s_port, usernames), incoming(POP3, hole.port, usernames),
                  outgoing(smtp.port, usernames), outgoing(hole.port, usernames, TLS)]
    start = time.monotonic()
    result = probe(candidates, smtp.password, ca_file)
    elapsed = time.monotonic() - start

    assert result.incoming is not None and result.incoming.candidate == candidates[0]
    assert result.outgoing is not None and result.outgoing.candidate == candidates[4]
    assert outcomes(result)[0] == "ok" and outcomes(result)[4] == "ok"
    assert outcomes(result)[3] == outcomes(result)[5] == "skipped"
    assert elapsed < 1.0
    assert smtp.messages == []
