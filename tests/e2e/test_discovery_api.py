"""A new user's first step through the served API: bindMailbox with an address and a password
alone. The server asks the loopback DNS server (MAILROOM_DNS_SERVERS), which publishes SRV records
for a test domain pointing at the test Dovecot; the mailbox is bound and syncs."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from tests.dns_server import DnsServer
from tests.dovecot import Dovecot
from tests.e2e.conftest import Server, cli_token
from tests.e2e.intake_helpers import sync
from tests.integration.intake_support import mail

BIND = """mutation($input: BindMailboxInput!) { bindMailbox(input: $input) {
    mailbox { id address protocol status incoming { host port security username } }
    needsAdvancedSettings attempts { source protocol host port security outcome } userErrors { field code } } }"""


@pytest.fixture(scope="module", params=["sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    """Discovery does not depend on the engine; a bound mailbox's storage is covered on both by
    test_admin_flow.py and test_conversations_api.py: SQLite only (the module's fixtures follow)."""
    return str(request.param)


@pytest.fixture(scope="module")
def server(start_server: Callable[..., Server], dovecot: Dovecot, dns_server: DnsServer) -> Server:
    return start_server(MAILROOM_EXTRA_CA_FILE=dovecot.ca_file, MAILROOM_DNS_SERVERS=dns_server.spec,
                        MAILROOM_ALLOW_PRIVATE_HOSTS="1", MAILROOM_POLL_SECONDS="3600")


def test_address_and_password_alone_bind_and_sync(server: Server, dovecot: Dovecot, dns_server: DnsServer) -> None:
    domain = f"d{uuid.uuid4().hex[:8]}.test"
    user, password = f"u{uuid.uuid4().hex[:8]}", "first day"
    dovecot.add_user(user, password)
    dns_server.srv(f"_imaps._tcp.{domain}", "localhost", dovecot.imaps_port)
    admin = cli_token(server.env, server.dir, "ADMIN", "admin")
    bound = server.gql(admin, BIND, input={"address": f"{user}@{domain}", "password": password})["bindMailbox"]
    assert bound["userErrors"] == [] and bound["needsAdvancedSettings"] is False
    assert bound["mailbox"]["status"] == "CONNECTED"
    assert bound["mailbox"]["incoming"] == {"host": "localhost", "port": dovecot.imaps_port, "security": "TLS",
                                            "username": user}
    assert {"source": "srv", "protocol": "IMAP", "host": "localhost", "port": dovecot.imaps_port,
            "security": "TLS", "outcome": "ok"} in bound["attempts"]
    dovecot.append(user, mail(subject="First mail", to=f"{user}@{domain}"))
    # The server's own scheduler syncs a new mailbox too (IMAP IDLE may wake it for this mail):
    # what counts is what is there after syncMailbox, not what this one sync opened.
    assert sync(server, admin, bound["mailbox"]["id"])["userErrors"] == []
    opened = server.gql(admin, "{ conversations { edges { node { subject mailbox { id } } } } }")
    assert [e["node"] for e in opened["conversations"]["edges"]] == [
        {"subject": "First mail", "mailbox": {"id": bound["mailbox"]["id"]}}]


def test_nothing_found_asks_for_the_advanced_form_with_the_attempts(server: Server, dns_server: DnsServer) -> None:
    admin = cli_token(server.env, server.dir, "ADMIN", "admin2")
    found = server.gql(admin, BIND, input={"address": f"x@nowhere-{uuid.uuid4().hex[:6]}.test",
                                           "password": "pw"})["bindMailbox"]
    assert found["mailbox"] is None and found["needsAdvancedSettings"] is True
    assert [e["code"] for e in found["userErrors"]] == ["NEEDS_ADVANCED_SETTINGS"]
    assert found["attempts"] and all(a["outcome"] == "no-such-host" for a in found["attempts"]
                                     if a["source"] == "guess")
