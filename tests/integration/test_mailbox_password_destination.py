"""The stored mailbox password goes only to the servers it was given for: moving a mailbox to
another host, port, security or protocol (or adding/moving its outgoing server) needs the
password again, and plaintext for a new server is chosen explicitly. A listener stands in for
the attacker's host: it must never see a connection."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator

import pytest

from adapters.settings import load_settings
from api.bootstrap import Services, real_login
from domain.errors import Rejected
from domain.values import MailProtocol, ServerSettings, TransportSecurity
from tests.dovecot import Dovecot
from tests.integration.intake_support import bind


class Trap:
    """A TCP listener on loopback counting the connections it is offered."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            self.accepted += 1
            conn.close()


@pytest.fixture
def services(make_services: Callable[..., Services]) -> Services:
    """Services whose mailbox logins go to real servers (Dovecot, or the trap)."""
    return make_services(verify_login=real_login(load_settings()))


@pytest.fixture
def trap() -> Iterator[Trap]:
    t = Trap()
    yield t
    t.stop.set()
    t.thread.join()
    t.sock.close()


def codes(rejected: pytest.ExceptionInfo[Rejected]) -> dict[tuple[str, ...] | None, str]:
    return {p.field: p.code for p in rejected.value.problems}


def test_a_new_destination_needs_the_password_again(services: Services, dovecot: Dovecot, trap: Trap) -> None:
    mailbox_id, user = bind(services, dovecot)
    elsewhere = ServerSettings("127.0.0.1", trap.port, TransportSecurity.NONE, user)
    tls_elsewhere = ServerSettings("127.0.0.1", trap.port, TransportSecurity.TLS, user)
    for change in ({"incoming": elsewhere}, {"incoming": tls_elsewhere}, {"outgoing": tls_elsewhere},
                   {"protocol": MailProtocol.POP3}):
        with pytest.raises(Rejected) as rejected:
            services.app.update_mailbox(mailbox_id, **change)  # type: ignore[arg-type]
        assert codes(rejected)[("input", "password")] == "PASSWORD_REQUIRED", change
    # A protocol change keeping plaintext settings: NONE was not chosen in this request.
    with pytest.raises(Rejected) as rejected:
        services.app.update_mailbox(mailbox_id, protocol=MailProtocol.POP3, password="s3cret-pass")
    assert ("input", "incoming", "security") in codes(rejected)
    assert trap.accepted == 0  # the stored password was never offered to the new host
    stored = services.directory.mailbox(mailbox_id)
    assert stored is not None and json.loads(stored["incoming"])["port"] == dovecot.imap_port


def test_the_same_destination_or_the_password_given_again_is_accepted(services: Services, dovecot: Dovecot) -> None:
    mailbox_id, user = bind(services, dovecot)
    services.app.update_mailbox(mailbox_id, display_name="Support desk")  # nothing moves: no password
    same = ServerSettings(dovecot.host, dovecot.imap_port, TransportSecurity.NONE, user)
    services.app.update_mailbox(mailbox_id, incoming=same)  # the same server given again
    pop3 = ServerSettings(dovecot.host, dovecot.pop3_port, TransportSecurity.NONE, user)
    services.app.update_mailbox(mailbox_id, protocol=MailProtocol.POP3, incoming=pop3, password="s3cret-pass")
    services.projections.catch_up()
    stored = services.directory.mailbox(mailbox_id)
    assert stored is not None and stored["protocol"] == "POP3"
    assert json.loads(stored["incoming"])["port"] == dovecot.pop3_port
