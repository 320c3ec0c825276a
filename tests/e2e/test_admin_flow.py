"""The admin's setup flow through GraphQL against the real server and a real Dovecot."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.dovecot import Dovecot
from tests.e2e.conftest import Server, cli_token

USER_ERRORS = "userErrors { field message code }"
MAILBOX_FIELDS = """
  id address displayName protocol status inWorkspace
  incoming { host port security username }
  replySettings { subjectTemplate footer }
"""
BIND = f"""
mutation($input: BindMailboxInput!) {{
  bindMailbox(input: $input) {{
    mailbox {{ {MAILBOX_FIELDS} }}
    needsAdvancedSettings
    attempts {{ source protocol host port security outcome }}
    {USER_ERRORS}
  }}
}}"""
AGENT_FIELDS = "id name email status capacity groups { id name }"
GROUP_FIELDS = "id name members { id name }"
RULE_FIELDS = """
  id name priority enabled match strategy fallbackStrategy
  mailboxes { id } groups { id }
  conditions { field operator value headerName }
"""
ACCOUNT_FIELDS = "id name domains owner { id }"
CONTACT_FIELDS = "id email name account { id name } owner { id }"


@dataclass
class Desk:
    server: Server
    admin: str
    dovecot: Dovecot


@pytest.fixture(scope="module")
def desk(start_server: Callable[..., Server], dovecot: Dovecot) -> Desk:
    server = start_server(MAILROOM_EXTRA_CA_FILE=dovecot.ca_file)
    return Desk(server, cli_token(server.env, server.dir, "ADMIN", "e2e admin"), dovecot)


def mail_user(dovecot: Dovecot, password: str) -> str:
    name = f"desk-{secrets.token_hex(4)}"
    dovecot.add_user(name, password)
    return name


def imap_tls(dovecot: Dovecot, username: str) -> dict[str, Any]:
    return {"host": dovecot.host, "port": dovecot.imaps_port, "security": "TLS", "username": username}


def pop3_starttls(dovecot: Dovecot, username: str) -> dict[str, Any]:
    return {"host": dovecot.host, "port": dovecot.pop3_port, "security": "STARTTLS", "username": username}


def address() -> str:
    return f"support-{secrets.token_hex(3)}@helpdesk.example"


def bind(desk: Desk, **input: Any) -> dict[str, Any]:
    return dict(desk.server.gql(desk.admin, BIND, input=input)["bindMailbox"])


def only(errors: list[dict[str, Any]]) -> dict[str, Any]:
    assert len(errors) == 1, errors
    return errors[0]


# ---------------------------------------------------------------------------------- binding


def test_bind_imap_over_tls_with_advanced_settings(desk: Desk) -> None:
    password = "imap pass " + secrets.token_hex(4)
    user = mail_user(desk.dovecot, password)
    mailbox_address = address()

    payload = bind(desk, address=mailbox_address, password=password, displayName="Support",
                   protocol="IMAP", incoming=imap_tls(desk.dovecot, user))

    assert payload["userErrors"] == []
    assert payload["needsAdvancedSettings"] is False
    assert payload["attempts"] == [{"source": "given", "protocol": "IMAP", "host": desk.dovecot.host,
                                    "port": desk.dovecot.imaps_port, "security": "TLS", "outcome": "ok"}]
    mailbox = payload["mailbox"]
    assert mailbox["status"] == "CONNECTED"
    assert mailbox["address"] == mailbox_address
    assert mailbox["displayName"] == "Support"
    assert mailbox["protocol"] == "IMAP"
    assert mailbox["incoming"] == imap_tls(desk.dovecot, user)
    listed = desk.server.gql(desk.admin, "query { mailboxes { id status } }")["mailboxes"]
    assert {"id": mailbox["id"], "status": "CONNECTED"} in listed


def test_bind_pop3_with_starttls(desk: Desk) -> None:
    password = "pop pass " + secrets.token_hex(4)
    user = mail_user(desk.dovecot, password)

    payload = bind(desk, address=address(), password=password, protocol="POP3",
                   incoming=pop3_starttls(desk.dovecot, user))

    assert payload["userErrors"] == []
    assert [(a["source"], a["protocol"], a["security"], a["outcome"]) for a in payload["attempts"]] == [
        ("given", "POP3", "STARTTLS", "ok")]
    assert payload["mailbox"]["status"] == "CONNECTED"
    assert payload["mailbox"]["protocol"] == "POP3"
    assert payload["mailbox"]["incoming"]["port"] == desk.dovecot.pop3_port


def test_bind_with_wrong_password_is_auth_failed(desk: Desk) -> None:
    user = mail_user(desk.dovecot, "the right one")
    mailbox_address = address()

    payload = bind(desk, address=mailbox_address, password="the wrong one", incoming=imap_tls(desk.dovecot, user))

    assert payload["mailbox"] is None
    assert payload["needsAdvancedSettings"] is False
    assert only(payload["userErrors"])["code"] == "AUTH_FAILED"
    assert [a["outcome"] for a in payload["attempts"]] == ["auth-failed"]
    addresses = [m["address"] for m in desk.server.gql(desk.admin, "query { mailboxes { address } }")["mailboxes"]]
    assert mailbox_address not in addresses


def test_bind_without_incoming_settings_asks_for_advanced_settings(desk: Desk) -> None:
    payload = bind(desk, address=address(), password="whatever")

    assert payload["mailbox"] is None
    assert payload["needsAdvancedSettings"] is True
    assert only(payload["userErrors"])["code"] == "NEEDS_ADVANCED_SETTINGS"


def test_bind_same_address_twice_is_refused(desk: Desk) -> None:
    password = "dup pass " + secrets.token_hex(4)
    user = mail_user(desk.dovecot, password)
    mailbox_address = address()
    assert bind(desk, address=mailbox_address, password=password,
                incoming=imap_tls(desk.dovecot, user))["userErrors"] == []

    again = bind(desk, address=mailbox_address.upper(), password=password, incoming=imap_tls(desk.dovecot, user))

    assert again["mailbox"] is None
    assert only(again["userErrors"])["field"] == ["input", "address"]


# ---------------------------------------------------------------------------------- the flow


def test_admin_flow_read_your_writes_then_queries_then_deletes(desk: Desk) -> None:
    gql = desk.server.gql
    admin = desk.admin
    password = "flow pass " + secrets.token_hex(4)
    user = mail_user(desk.dovecot, password)
    mailbox = bind(desk, address=address(), password=password, incoming=imap_tls(desk.dovecot, user))["mailbox"]
    assert mailbox["inWorkspace"] is False  # no rule covers it yet

    # Agents: the payload is the created agent.
    def create_agent(name: str, capacity: int | None) -> dict[str, Any]:
        payload = gql(admin, f"""mutation($input: CreateAgentInput!) {{
            createAgent(input: $input) {{ agent {{ {AGENT_FIELDS} }} {USER_ERRORS} }} }}""",
                      input={"name": name, "email": f"{name.upper()}@Desk.Example", "capacity": capacity})
        assert payload["createAgent"]["userErrors"] == []
        return dict(payload["createAgent"]["agent"])

    ann = create_agent("ann", 5)
    bob = create_agent("bob", None)
    assert (ann["name"], ann["email"], ann["status"], ann["capacity"], ann["groups"]) == (
        "ann", "ann@desk.example", "ONLINE", 5, [])
    assert bob["capacity"] is None

    # Groups: members in the order they joined (given order, not creation order).
    group = gql(admin, f"""mutation($input: CreateAgentGroupInput!) {{
        createAgentGroup(input: $input) {{ group {{ {GROUP_FIELDS} }} {USER_ERRORS} }} }}""",
                input={"name": "Tier 1", "memberIds": [bob["id"], ann["id"]]})["createAgentGroup"]
    assert group["userErrors"] == []
    group_id = group["group"]["id"]
    assert group["group"]["name"] == "Tier 1"
    assert [m["name"] for m in group["group"]["members"]] == ["bob", "ann"]

    removed = gql(admin, f"""mutation($g: UUID!, $a: [UUID!]!) {{
        removeGroupMembers(groupId: $g, agentIds: $a) {{ group {{ {GROUP_FIELDS} }} {USER_ERRORS} }} }}""",
                  g=group_id, a=[bob["id"]])["removeGroupMembers"]
    assert removed["userErrors"] == []
    assert [m["name"] for m in removed["group"]["members"]] == ["ann"]

    added = gql(admin, f"""mutation($g: UUID!, $a: [UUID!]!) {{
        addGroupMembers(groupId: $g, agentIds: $a) {{ group {{ {GROUP_FIELDS} }} {USER_ERRORS} }} }}""",
                g=group_id, a=[bob["id"]])["addGroupMembers"]
    assert added["userErrors"] == []
    assert [m["name"] for m in added["group"]["members"]] == ["ann", "bob"]  # bob rejoined last

    # Customers.
    account = gql(admin, f"""mutation($input: UpsertAccountInput!) {{
        upsertAccount(input: $input) {{ account {{ {ACCOUNT_FIELDS} }} {USER_ERRORS} }} }}""",
                  input={"name": "Acme", "domains": ["acme.com"], "ownerId": ann["id"]})["upsertAccount"]
    assert account["userErrors"] == []
    account_id = account["account"]["id"]
    assert account["account"] == {"id": account_id, "name": "Acme", "domains": ["acme.com"],
                                  "owner": {"id": ann["id"]}}
    renamed = gql(admin, f"""mutation($input: UpsertAccountInput!) {{
        upsertAccount(input: $input) {{ account {{ {ACCOUNT_FIELDS} }} {USER_ERRORS} }} }}""",
                  input={"id": account_id, "name": "Acme Corp", "domains": ["acme.com", "acme.org"]}
                  )["upsertAccount"]
    assert renamed["userErrors"] == []
    assert renamed["account"] == {"id": account_id, "name": "Acme Corp", "domains": ["acme.com", "acme.org"],
                                  "owner": {"id": ann["id"]}}  # owner not given: kept

    contact = gql(admin, f"""mutation($input: UpsertContactInput!) {{
        upsertContact(input: $input) {{ contact {{ {CONTACT_FIELDS} }} {USER_ERRORS} }} }}""",
                  input={"email": "Jane.Doe@Acme.com", "name": "Jane Doe", "accountId": account_id,
                         "ownerId": bob["id"]})["upsertContact"]
    assert contact["userErrors"] == []
    assert contact["contact"]["name"] == "Jane Doe"
    assert contact["contact"]["email"].lower() == "jane.doe@acme.com"
    assert contact["contact"]["account"] == {"id": account_id, "name": "Acme Corp"}
    assert contact["contact"]["owner"] == {"id": bob["id"]}

    # Routing rules.
    rule_input = {
        "name": "Acme to tier 1", "priority": 10, "mailboxIds": [mailbox["id"]], "groupIds": [group_id],
        "strategy": "ROUND_ROBIN", "match": "ALL",
        "conditions": [{"field": "FROM_DOMAIN", "operator": "EQUALS", "value": "acme.com"}],
    }
    created = gql(admin, f"""mutation($input: RoutingRuleInput!) {{
        createRoutingRule(input: $input) {{ rule {{ {RULE_FIELDS} }} {USER_ERRORS} }} }}""",
                  input=rule_input)["createRoutingRule"]
    assert created["userErrors"] == []
    rule = created["rule"]
    assert (rule["name"], rule["priority"], rule["enabled"], rule["match"], rule["strategy"],
            rule["fallbackStrategy"]) == ("Acme to tier 1", 10, True, "ALL", "ROUND_ROBIN", "LOAD_BALANCED")
    assert rule["mailboxes"] == [{"id": mailbox["id"]}]
    assert rule["groups"] == [{"id": group_id}]
    assert rule["conditions"] == [{"field": "FROM_DOMAIN", "operator": "EQUALS", "value": "acme.com",
                                   "headerName": None}]
    assert gql(admin, "query($id: UUID!) { mailbox(id: $id) { inWorkspace } }",
               id=mailbox["id"])["mailbox"]["inWorkspace"] is True

    updated = gql(admin, f"""mutation($id: UUID!, $input: RoutingRuleInput!) {{
        updateRoutingRule(id: $id, input: $input) {{ rule {{ {RULE_FIELDS} }} {USER_ERRORS} }} }}""",
                  id=rule["id"], input={
                      **rule_input, "name": "Acme and VIPs", "priority": 5, "match": "ANY",
                      "strategy": "ACCOUNT_OWNER", "fallbackStrategy": "IDLE_FIRST",
                      "conditions": [
                          {"field": "FROM_DOMAIN", "operator": "EQUALS", "value": "acme.com"},
                          {"field": "HEADER", "operator": "CONTAINS", "value": "vip", "headerName": "X-Tier"},
                      ]})["updateRoutingRule"]
    assert updated["userErrors"] == []
    assert updated["rule"]["id"] == rule["id"]
    assert (updated["rule"]["name"], updated["rule"]["priority"], updated["rule"]["match"],
            updated["rule"]["strategy"], updated["rule"]["fallbackStrategy"]) == (
        "Acme and VIPs", 5, "ANY", "ACCOUNT_OWNER", "IDLE_FIRST")
    assert updated["rule"]["conditions"][1] == {"field": "HEADER", "operator": "CONTAINS", "value": "vip",
                                                "headerName": "X-Tier"}

    # Mailbox settings.
    replies = gql(admin, f"""mutation($input: ReplySettingsInput!) {{
        setReplySettings(input: $input) {{ mailbox {{ {MAILBOX_FIELDS} }} {USER_ERRORS} }} }}""",
                  input={"mailboxId": mailbox["id"], "subjectTemplate": "[{mailbox}] Re: {subject}",
                         "footer": "-- The support team"})["setReplySettings"]
    assert replies["userErrors"] == []
    assert replies["mailbox"]["replySettings"] == {"subjectTemplate": "[{mailbox}] Re: {subject}",
                                                   "footer": "-- The support team"}

    renamed_mailbox = gql(admin, f"""mutation($input: UpdateMailboxInput!) {{
        updateMailbox(input: $input) {{ mailbox {{ {MAILBOX_FIELDS} }} {USER_ERRORS} }} }}""",
                          input={"id": mailbox["id"], "displayName": "Help Desk"})["updateMailbox"]
    assert renamed_mailbox["userErrors"] == []
    assert renamed_mailbox["mailbox"]["displayName"] == "Help Desk"
    assert renamed_mailbox["mailbox"]["replySettings"]["footer"] == "-- The support team"
    assert renamed_mailbox["mailbox"]["status"] == "CONNECTED"

    # Everything is readable through the queries as well.
    seen = gql(admin, f"""query($email: String!) {{
        mailboxes {{ {MAILBOX_FIELDS} }}
        agents {{ {AGENT_FIELDS} }}
        agentGroups {{ {GROUP_FIELDS} }}
        accounts {{ {ACCOUNT_FIELDS} }}
        contact(email: $email) {{ {CONTACT_FIELDS} }}
        routingRules {{ {RULE_FIELDS} }}
    }}""", email="jane.doe@ACME.com")
    assert renamed_mailbox["mailbox"] in seen["mailboxes"]
    agents = {a["id"]: a for a in seen["agents"]}
    assert agents[ann["id"]]["groups"] == [{"id": group_id, "name": "Tier 1"}]
    assert agents[bob["id"]]["groups"] == [{"id": group_id, "name": "Tier 1"}]
    assert added["group"] in seen["agentGroups"]
    assert renamed["account"] in seen["accounts"]
    assert seen["contact"] == contact["contact"]
    assert updated["rule"] in seen["routingRules"]

    # Deleting: a mailbox or group that a rule uses stays until the rule is gone.
    in_use = gql(admin, f"mutation($id: UUID!) {{ deleteMailbox(id: $id) {{ deletedId {USER_ERRORS} }} }}",
                 id=mailbox["id"])["deleteMailbox"]
    assert in_use["deletedId"] is None
    assert only(in_use["userErrors"])["code"] == "IN_USE"
    group_in_use = gql(admin, f"mutation($id: UUID!) {{ deleteAgentGroup(id: $id) {{ deletedId {USER_ERRORS} }} }}",
                       id=group_id)["deleteAgentGroup"]
    assert only(group_in_use["userErrors"])["code"] == "IN_USE"

    for mutation, deleted_id in (("deleteRoutingRule", rule["id"]), ("deleteAgentGroup", group_id),
                                 ("deleteMailbox", mailbox["id"])):
        done = gql(admin, f"mutation($id: UUID!) {{ {mutation}(id: $id) {{ deletedId {USER_ERRORS} }} }}",
                   id=deleted_id)[mutation]
        assert done == {"deletedId": deleted_id, "userErrors": []}, mutation

    after = gql(admin, "query($id: UUID!) { routingRules { id } agentGroups { id } mailboxes { id } "
                       "mailbox(id: $id) { id } agents { id groups { id } } }", id=mailbox["id"])
    assert {"id": rule["id"]} not in after["routingRules"]
    assert {"id": group_id} not in after["agentGroups"]
    assert {"id": mailbox["id"]} not in after["mailboxes"]
    assert after["mailbox"] is None
    assert all(a["groups"] == [] for a in after["agents"] if a["id"] in (ann["id"], bob["id"]))


# ---------------------------------------------------------------------------------- userErrors


def test_bad_regex_names_the_condition_value(desk: Desk) -> None:
    payload = desk.server.gql(desk.admin, f"""mutation($input: RoutingRuleInput!) {{
        createRoutingRule(input: $input) {{ rule {{ id }} {USER_ERRORS} }} }}""", input={
        "name": "broken", "mailboxIds": [], "groupIds": [], "strategy": "LOAD_BALANCED",
        "conditions": [{"field": "SUBJECT", "operator": "MATCHES_REGEX", "value": "(unclosed[a-z"}]},
    )["createRoutingRule"]

    assert payload["rule"] is None
    assert ["input", "conditions", "0", "value"] in [e["field"] for e in payload["userErrors"]]
    names = [r["name"] for r in desk.server.gql(desk.admin, "query { routingRules { name } }")["routingRules"]]
    assert "broken" not in names


def test_out_of_range_port_names_the_port(desk: Desk) -> None:
    payload = bind(desk, address=address(), password="x",
                   incoming={"host": desk.dovecot.host, "port": 70000, "security": "TLS"})

    assert payload["mailbox"] is None
    assert payload["attempts"] == []  # nothing was tried
    assert only(payload["userErrors"])["field"] == ["input", "incoming", "port"]


def test_unknown_group_is_not_found(desk: Desk) -> None:
    missing = str(uuid.uuid4())
    add = desk.server.gql(desk.admin, f"""mutation($g: UUID!) {{
        addGroupMembers(groupId: $g, agentIds: []) {{ group {{ id }} {USER_ERRORS} }} }}""", g=missing)
    delete = desk.server.gql(desk.admin, f"""mutation($g: UUID!) {{
        deleteAgentGroup(id: $g) {{ deletedId {USER_ERRORS} }} }}""", g=missing)

    assert add["addGroupMembers"]["group"] is None
    assert only(add["addGroupMembers"]["userErrors"])["code"] == "NOT_FOUND"
    assert delete["deleteAgentGroup"]["deletedId"] is None
    assert only(delete["deleteAgentGroup"]["userErrors"])["code"] == "NOT_FOUND"


def test_empty_agent_name_is_refused(desk: Desk) -> None:
    payload = desk.server.gql(desk.admin, f"""mutation($input: CreateAgentInput!) {{
        createAgent(input: $input) {{ agent {{ id }} {USER_ERRORS} }} }}""",
                              input={"name": "   ", "email": "nameless@desk.example"})["createAgent"]

    assert payload["agent"] is None
    assert only(payload["userErrors"])["field"] == ["input", "name"]
    emails = [a["email"] for a in desk.server.gql(desk.admin, "query { agents { email } }")["agents"]]
    assert "nameless@desk.example" not in emails
