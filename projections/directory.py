"""The admin directory: mailboxes, agents, groups, rules, accounts, contacts."""

from __future__ import annotations

import json
from typing import Any

from domain.mailbox import DEFAULT_FOLDERS
from domain.routing import RuleSpec
from projections.tables import Rows, Table
from projections.view import Handler, View, to_json
from projections.view import event_id as _id
from projections.view import event_time as _at

T, B = "TEXT", "BIGINT"

MAILBOXES = Table("rm_mailboxes", {
    "id": T, "address": T, "display_name": T, "protocol": T, "incoming": T, "outgoing": T,
    "enabled": B, "failing": B, "last_error": T, "last_synced_at": T,
    "subject_template": T, "footer": T, "folders": T, "created_at": T}, ("id",), (("address",),))
AGENTS = Table("rm_agents", {
    "id": T, "name": T, "email": T, "status": T, "capacity": B, "created_at": T}, ("id",))
GROUPS = Table("rm_groups", {
    "id": T, "name": T, "member_ids": T, "joined": B, "created_at": T}, ("id",))
MEMBERS = Table("rm_group_members", {
    "group_id": T, "agent_id": T, "position": B}, ("group_id", "agent_id"), (("agent_id",),))
RULES = Table("rm_rules", {
    "id": T, "name": T, "priority": B, "enabled": B, "mailbox_ids": T, "group_ids": T,
    "match": T, "conditions": T, "strategy": T, "fallback_strategy": T, "version": B,
    "created_at": T}, ("id",), (("priority", "created_at"),))
RULE_MAILBOXES = Table("rm_rule_mailboxes", {"rule_id": T, "mailbox_id": T},
                       ("rule_id", "mailbox_id"), (("mailbox_id",),))
RULE_GROUPS = Table("rm_rule_groups", {"rule_id": T, "group_id": T},
                    ("rule_id", "group_id"), (("group_id",),))
ACCOUNTS = Table("rm_accounts", {
    "id": T, "name": T, "domains": T, "owner_id": T, "created_at": T}, ("id",))
ACCOUNT_DOMAINS = Table("rm_account_domains", {"domain": T, "account_id": T},
                        ("domain", "account_id"), (("account_id",),))
CONTACTS = Table("rm_contacts", {
    "id": T, "email": T, "name": T, "account_id": T, "owner_id": T}, ("id",), (("account_id",),))


def _opt(value: Any) -> str | None:
    return None if value is None else str(value)


# ----------------------------------------------------------------- mailboxes

def mailbox_bound(e: Any, rows: Rows) -> None:
    rows.put(MAILBOXES, {
        "id": _id(e), "address": e.address, "display_name": e.display_name,
        "protocol": e.protocol.value, "incoming": to_json(e.incoming), "outgoing": to_json(e.outgoing),
        "enabled": 1, "failing": 0, "subject_template": "Re: {subject}", "footer": "",
        "folders": to_json(list(DEFAULT_FOLDERS)), "created_at": _at(e)})


def mailbox_settings(e: Any, rows: Rows) -> None:
    rows.update(MAILBOXES, _id(e), display_name=e.display_name, protocol=e.protocol.value,
                incoming=to_json(e.incoming), outgoing=to_json(e.outgoing))


def mailbox_reply(e: Any, rows: Rows) -> None:
    rows.update(MAILBOXES, _id(e), subject_template=e.subject_template, footer=e.footer)


# ----------------------------------------------------------------- agents and groups

def agent_created(e: Any, rows: Rows) -> None:
    rows.put(AGENTS, {"id": _id(e), "name": e.name, "email": e.email, "status": e.status.value,
                      "capacity": e.capacity, "created_at": _at(e)})


def group_created(e: Any, rows: Rows) -> None:
    rows.put(GROUPS, {"id": _id(e), "name": e.name, "member_ids": to_json([]), "joined": 0,
                      "created_at": _at(e)})
    _join(rows, _id(e), e.member_ids)


def _join(rows: Rows, group_id: str, agent_ids: list[Any]) -> None:
    group = rows.get(GROUPS, group_id)
    assert group is not None
    members = [*_load(group["member_ids"]), *map(str, agent_ids)]
    for offset, agent_id in enumerate(agent_ids):
        rows.put(MEMBERS, {"group_id": group_id, "agent_id": str(agent_id),
                           "position": group["joined"] + offset})
    rows.update(GROUPS, group_id, member_ids=to_json(members), joined=group["joined"] + len(agent_ids))


def members_removed(e: Any, rows: Rows) -> None:
    group = rows.get(GROUPS, _id(e))
    assert group is not None
    leaving = set(map(str, e.agent_ids))
    for agent_id in leaving:
        rows.delete(MEMBERS, _id(e), agent_id)
    members = [m for m in _load(group["member_ids"]) if m not in leaving]
    rows.update(GROUPS, _id(e), member_ids=to_json(members))


def group_deleted(e: Any, rows: Rows) -> None:
    group = rows.get(GROUPS, _id(e))
    assert group is not None
    for agent_id in _load(group["member_ids"]):
        rows.delete(MEMBERS, _id(e), agent_id)
    rows.delete(GROUPS, _id(e))


def _load(text: str | None) -> list[Any]:
    return list(json.loads(text)) if text else []


# ----------------------------------------------------------------- routing rules

def rule_written(e: Any, rows: Rows) -> None:
    spec: RuleSpec = e.spec
    rule_id = _id(e)
    old = rows.get(RULES, rule_id)
    _unlink_rule(rows, old)
    rows.put(RULES, {
        "id": rule_id, "name": spec.name, "priority": spec.priority, "enabled": int(spec.enabled),
        "mailbox_ids": to_json(spec.mailbox_ids), "group_ids": to_json(spec.group_ids),
        "match": spec.match.value, "conditions": to_json(spec.conditions),
        "strategy": spec.strategy.value, "fallback_strategy": spec.fallback_strategy.value,
        "version": e.originator_version, "created_at": old["created_at"] if old else _at(e)})
    for mailbox_id in spec.mailbox_ids:
        rows.put(RULE_MAILBOXES, {"rule_id": rule_id, "mailbox_id": str(mailbox_id)})
    for group_id in spec.group_ids:
        rows.put(RULE_GROUPS, {"rule_id": rule_id, "group_id": str(group_id)})


def _unlink_rule(rows: Rows, old: dict[str, Any] | None) -> None:
    if old is None:
        return
    for mailbox_id in _load(old["mailbox_ids"]):
        rows.delete(RULE_MAILBOXES, old["id"], mailbox_id)
    for group_id in _load(old["group_ids"]):
        rows.delete(RULE_GROUPS, old["id"], group_id)


def rule_deleted(e: Any, rows: Rows) -> None:
    _unlink_rule(rows, rows.get(RULES, _id(e)))
    rows.delete(RULES, _id(e))


# ----------------------------------------------------------------- customers

def account_written(e: Any, rows: Rows) -> None:
    old = rows.get(ACCOUNTS, _id(e))
    for domain in _load(old["domains"]) if old else []:
        rows.delete(ACCOUNT_DOMAINS, domain, _id(e))
    for domain in e.domains:
        rows.put(ACCOUNT_DOMAINS, {"domain": domain, "account_id": _id(e)})
    owner = old["owner_id"] if old else _opt(getattr(e, "owner_id", None))
    rows.put(ACCOUNTS, {"id": _id(e), "name": e.name, "domains": to_json(e.domains),
                        "owner_id": owner, "created_at": old["created_at"] if old else _at(e)})


def contact_created(e: Any, rows: Rows) -> None:
    rows.put(CONTACTS, {"id": _id(e), "email": e.email, "name": e.name,
                        "account_id": _opt(e.account_id), "owner_id": _opt(e.owner_id)})


def _set(table: Table, **columns: Any) -> Handler:
    """A handler copying event attributes (or constants) into columns of the event's row."""
    def handler(e: Any, rows: Rows) -> None:
        rows.update(table, _id(e), **{
            column: (source(e) if callable(source) else source) for column, source in columns.items()})
    return handler


class Directory(View):
    name = "directory"
    tables = (MAILBOXES, AGENTS, GROUPS, MEMBERS, RULES, RULE_MAILBOXES, RULE_GROUPS,
              ACCOUNTS, ACCOUNT_DOMAINS, CONTACTS)
    handlers: dict[str, Handler] = {
        "mailroom:Mailbox.Bound": mailbox_bound,
        "mailroom:Mailbox.SettingsChanged": mailbox_settings,
        "mailroom:Mailbox.ReplySettingsChanged": mailbox_reply,
        "mailroom:Mailbox.Disabled": _set(MAILBOXES, enabled=0),
        "mailroom:Mailbox.Enabled": _set(MAILBOXES, enabled=1),
        "mailroom:Mailbox.FoldersChanged": _set(MAILBOXES, folders=lambda e: to_json(e.folders)),
        "mailroom:Mailbox.SyncFailed": _set(MAILBOXES, failing=1, last_error=lambda e: e.error),
        "mailroom:Mailbox.SyncRecovered": _set(MAILBOXES, failing=0, last_error=None),
        "mailroom:Mailbox.Deleted": lambda e, rows: rows.delete(MAILBOXES, _id(e)),
        "mailroom:Agent.Created": agent_created,
        "mailroom:Agent.Edited": _set(AGENTS, name=lambda e: e.name, email=lambda e: e.email),
        "mailroom:Agent.StatusChanged": _set(AGENTS, status=lambda e: e.status.value),
        "mailroom:Agent.CapacityChanged": _set(AGENTS, capacity=lambda e: e.capacity),
        "mailroom:AgentGroup.Created": group_created,
        "mailroom:AgentGroup.MembersAdded": lambda e, rows: _join(rows, _id(e), e.agent_ids),
        "mailroom:AgentGroup.MembersRemoved": members_removed,
        "mailroom:AgentGroup.Deleted": group_deleted,
        "mailroom:RoutingRule.Created": rule_written,
        "mailroom:RoutingRule.Changed": rule_written,
        "mailroom:RoutingRule.Deleted": rule_deleted,
        "mailroom:Account.Created": account_written,
        "mailroom:Account.Updated": account_written,
        "mailroom:Account.OwnerChanged": _set(ACCOUNTS, owner_id=lambda e: _opt(e.owner_id)),
        "mailroom:Contact.Created": contact_created,
        "mailroom:Contact.Updated": _set(CONTACTS, name=lambda e: e.name, account_id=lambda e: _opt(e.account_id)),
        "mailroom:Contact.OwnerChanged": _set(CONTACTS, owner_id=lambda e: _opt(e.owner_id)),
    }

