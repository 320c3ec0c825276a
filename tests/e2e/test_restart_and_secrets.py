"""A configured desk survives a restart, and its secrets are never readable anywhere."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.dovecot import Dovecot
from tests.e2e.conftest import Server, cli_token

ERRORS = "userErrors { field message code }"
EVERYTHING = """
query {
  mailboxes { id address displayName protocol status inWorkspace
              incoming { host port security username } outgoing { host port security username }
              replySettings { subjectTemplate footer } createdAt }
  agents { id name email status capacity groups { id } }
  agentGroups { id name members { id } }
  accounts { id name domains owner { id } }
  contact(email: "pat@customer.example") { id email name account { id } owner { id } }
  routingRules { id name priority enabled match strategy fallbackStrategy
                 mailboxes { id } groups { id } conditions { field operator value headerName } }
}"""
ME = "query { me { role agent { id } } }"


@dataclass
class Seeded:
    server: Server
    tokens: dict[str, str]  # role -> token value
    passwords: list[str]
    agent_id: str
    mailbox_id: str
    snapshot: dict[str, Any] = field(default_factory=dict)

    @property
    def secrets(self) -> list[str]:
        return [*self.passwords, *self.tokens.values()]


def ok(payload: dict[str, Any], name: str) -> dict[str, Any]:
    result = dict(payload[name])
    assert result["userErrors"] == [], result
    return result


@pytest.fixture(scope="module")
def seeded(start_server: Callable[..., Server], dovecot: Dovecot) -> Seeded:
    server = start_server(MAILROOM_EXTRA_CA_FILE=dovecot.ca_file)
    admin = cli_token(server.env, server.dir, "ADMIN", "cli admin")
    gql = server.gql
    first_password, second_password = f"Pw1-{secrets.token_hex(8)}", f"Pw2-{secrets.token_hex(8)}"
    first_user, second_user = f"keep-{secrets.token_hex(4)}", f"keep-{secrets.token_hex(4)}"
    dovecot.add_user(first_user, first_password)
    dovecot.add_user(second_user, second_password)

    # A refused password is a secret too: the failure must not echo it.
    wrong_password = f"Wrong-{secrets.token_hex(8)}"
    refused = gql(admin, f"""mutation($input: BindMailboxInput!) {{
        bindMailbox(input: $input) {{ mailbox {{ id }} attempts {{ outcome }} {ERRORS} }} }}""", input={
        "address": f"nope-{secrets.token_hex(3)}@helpdesk.example", "password": wrong_password,
        "incoming": {"host": dovecot.host, "port": dovecot.imaps_port, "security": "TLS", "username": first_user},
    })["bindMailbox"]
    assert [e["code"] for e in refused["userErrors"]] == ["AUTH_FAILED"]

    mailbox = ok(gql(admin, f"""mutation($input: BindMailboxInput!) {{
        bindMailbox(input: $input) {{ mailbox {{ id }} {ERRORS} }} }}""", input={
        "address": f"keep-{secrets.token_hex(3)}@helpdesk.example", "password": first_password,
        "incoming": {"host": dovecot.host, "port": dovecot.imaps_port, "security": "TLS", "username": first_user},
        "outgoing": {"host": dovecot.host, "port": 2525, "security": "STARTTLS"},
    }), "bindMailbox")["mailbox"]
    # A new password (and user) is verified by a login and stored like the first one.
    ok(gql(admin, f"""mutation($input: UpdateMailboxInput!) {{
        updateMailbox(input: $input) {{ mailbox {{ id }} {ERRORS} }} }}""", input={
        "id": mailbox["id"], "password": second_password,
        "incoming": {"host": dovecot.host, "port": dovecot.imaps_port, "security": "TLS", "username": second_user},
    }), "updateMailbox")

    agent = ok(gql(admin, f"""mutation {{ createAgent(input: {{name: "Kim", email: "kim@desk.example",
        capacity: 3}}) {{ agent {{ id }} {ERRORS} }} }}"""), "createAgent")["agent"]
    group = ok(gql(admin, f"""mutation($m: [UUID!]) {{ createAgentGroup(input: {{name: "Night", memberIds: $m}})
        {{ group {{ id }} {ERRORS} }} }}""", m=[agent["id"]]), "createAgentGroup")["group"]
    account = ok(gql(admin, f"""mutation($o: UUID) {{ upsertAccount(input: {{name: "Customer Ltd",
        domains: ["customer.example"], ownerId: $o}}) {{ account {{ id }} {ERRORS} }} }}""", o=agent["id"]),
                 "upsertAccount")["account"]
    ok(gql(admin, f"""mutation($a: UUID) {{ upsertContact(input: {{email: "pat@customer.example", name: "Pat",
        accountId: $a}}) {{ contact {{ id }} {ERRORS} }} }}""", a=account["id"]), "upsertContact")
    ok(gql(admin, f"""mutation($input: RoutingRuleInput!) {{ createRoutingRule(input: $input)
        {{ rule {{ id }} {ERRORS} }} }}""", input={
        "name": "Everything", "mailboxIds": [mailbox["id"]], "groupIds": [group["id"]], "strategy": "IDLE_FIRST",
        "conditions": [{"field": "SUBJECT", "operator": "MATCHES_REGEX", "value": "^(order|invoice) #\\d+"}]}),
        "createRoutingRule")
    ok(gql(admin, f"""mutation($id: UUID!, $template: String!) {{ setReplySettings(input: {{mailboxId: $id,
        subjectTemplate: $template, footer: "Thanks"}}) {{ mailbox {{ id }} {ERRORS} }} }}""",
           id=mailbox["id"], template="Re: {subject} [{conversation_ref}]"), "setReplySettings")

    tokens = {"ADMIN": admin}
    for role, agent_id in (("AUDITOR", None), ("AGENT", agent["id"])):
        tokens[role] = ok(gql(admin, f"""mutation($input: CreateApiTokenInput!) {{
            createApiToken(input: $input) {{ token {ERRORS} }} }}""",
                              input={"name": f"{role} token", "role": role, "agentId": agent_id}),
                          "createApiToken")["token"]

    seeded = Seeded(server, tokens, [first_password, second_password, wrong_password], agent["id"], mailbox["id"])
    seeded.snapshot = gql(admin, EVERYTHING)
    return seeded


def all_events(server: Server, token: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    after: int | None = 0
    while after is not None:
        page = server.gql(token, """query($after: Int) { events(afterPosition: $after, first: 500) {
            events { position aggregateId aggregateType version type occurredAt data } nextPosition } }""",
                          after=after)["events"]
        events += page["events"]
        after = page["nextPosition"]
    return events


def without_issued_token(query: str, body: str) -> str:
    """The response text, minus createApiToken's own `token` field (the one place it may appear)."""
    if "createApiToken" not in query:
        return body
    data = json.loads(body)
    payload = (data.get("data") or {}).get("createApiToken")
    if isinstance(payload, dict):
        payload.pop("token", None)
    return json.dumps(data)


def test_seeded_desk_is_as_configured(seeded: Seeded) -> None:
    snap = seeded.snapshot
    [mailbox] = snap["mailboxes"]
    assert mailbox["status"] == "CONNECTED"
    assert mailbox["inWorkspace"] is True
    assert mailbox["incoming"]["username"].startswith("keep-")
    assert mailbox["outgoing"]["port"] == 2525
    assert mailbox["outgoing"]["username"] == mailbox["address"]  # defaults to the address
    assert mailbox["replySettings"] == {"subjectTemplate": "Re: {subject} [{conversation_ref}]", "footer": "Thanks"}
    assert [a["name"] for a in snap["agents"]] == ["Kim"]
    assert snap["agentGroups"][0]["members"] == [{"id": seeded.agent_id}]
    assert snap["contact"]["account"] == {"id": snap["accounts"][0]["id"]}
    assert snap["routingRules"][0]["conditions"][0]["value"] == "^(order|invoice) #\\d+"


def test_restart_keeps_everything_and_old_tokens_work(seeded: Seeded) -> None:
    server = seeded.server

    server.restart()

    assert server.gql(seeded.tokens["ADMIN"], EVERYTHING) == seeded.snapshot
    assert server.gql(seeded.tokens["ADMIN"], ME)["me"] == {"role": "ADMIN", "agent": None}
    assert server.gql(seeded.tokens["AUDITOR"], ME)["me"] == {"role": "AUDITOR", "agent": None}
    assert server.gql(seeded.tokens["AGENT"], ME)["me"] == {"role": "AGENT", "agent": {"id": seeded.agent_id}}
    assert server.gql(seeded.tokens["AUDITOR"], "query { events(first: 1) { events { position } } }")
    # The restarted server keeps working on the same data.
    renamed = server.gql(seeded.tokens["ADMIN"], """mutation($id: UUID!) {
        updateMailbox(input: {id: $id, displayName: "After restart"}) {
          mailbox { displayName status } userErrors { code } } }""", id=seeded.mailbox_id)["updateMailbox"]
    assert renamed == {"mailbox": {"displayName": "After restart", "status": "CONNECTED"}, "userErrors": []}
    assert server.post(ME, token="mr_unknown-" + secrets.token_hex(8)).status_code == 401


def test_secrets_never_appear_in_events_logs_or_responses(seeded: Seeded) -> None:
    server = seeded.server
    feed = all_events(server, seeded.tokens["AUDITOR"])
    feed_text = json.dumps(feed)
    assert any(e["type"] == "Bound" and e["aggregateId"] == seeded.mailbox_id for e in feed)
    # Read everything there is to read, as every role.
    for token in seeded.tokens.values():
        server.gql_raw(token, EVERYTHING)
        server.gql_raw(token, ME)

    for secret in seeded.secrets:
        assert secret not in feed_text, "a secret is in the events feed"
        assert secret not in server.log(), "a secret is in the server's log"
        for query, body in server.transcript:
            assert secret not in without_issued_token(query, body), f"a secret is in the response to {query}"


def stored_bytes(database_url: str) -> bytes:
    """Everything the database holds, as bytes (PostgreSQL: every row as text, bytea in hex)."""
    if database_url.startswith("sqlite:///"):
        database = Path(database_url.removeprefix("sqlite:///"))
        return b"".join(p.read_bytes() for p in database.parent.glob(database.name + "*"))
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")]
        rows = [str(r[0]) for t in tables for r in conn.execute(f'SELECT t::text FROM "{t}" t')]
    return "\n".join(rows).encode()


def test_mailbox_passwords_are_not_stored_in_plain_text(seeded: Seeded) -> None:
    stored = stored_bytes(seeded.server.env["MAILROOM_DATABASE_URL"])

    assert b"kim@desk.example" in stored or b"kim@desk.example".hex().encode() in stored  # the data is there
    for password in seeded.passwords:
        assert password.encode() not in stored
        assert password.encode().hex().encode() not in stored
