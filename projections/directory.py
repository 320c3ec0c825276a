"""The admin directory: mailboxes, agents, groups, rules, accounts, contacts, API tokens (their
records: never a value or a hash; when each was last used is not history, see
adapters/token_usage.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar
from uuid import UUID

from domain import events as ev
from domain.agents import Agent, AgentGroup
from domain.customers import Account, Contact, Erasure
from domain.mailbox import DEFAULT_FOLDERS, Mailbox
from domain.routing import RoutingRule, RuleSpec
from domain.tokens import ApiToken
from projections import erasure
from projections.tables import Rows, Table
from projections.view import On, View, dispatch, on, to_json
from projections.view import event_id as _id
from projections.view import event_time as _at

T, B = "TEXT", "BIGINT"

MAILBOXES = Table("rm_mailboxes", {
    "id": T, "address": T, "display_name": T, "protocol": T, "incoming": T, "outgoing": T,
    "enabled": B, "failing": B, "last_error": T, "last_synced_at": T,
    "subject_template": T, "footer": T, "folders": T, "created_at": T}, ("id",), (("address",),))
AGENTS = Table("rm_agents", {
    "id": T, "name": T, "email": T, "status": T, "capacity": B, "created_at": T, "active": B,
    "deactivated_at": T}, ("id",))
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
TOKENS = Table("rm_api_tokens", {
    "id": T, "name": T, "role": T, "agent_id": T, "created_at": T, "expires_at": T, "revoked_at": T}, ("id",))


def _opt(value: UUID | None) -> str | None:
    return None if value is None else str(value)


# ----------------------------------------------------------------- mailboxes

def mailbox_bound(e: Mailbox.Bound, rows: Rows) -> None:
    rows.put(MAILBOXES, {
        "id": _id(e), "address": e.address, "display_name": e.display_name,
        "protocol": e.protocol.value, "incoming": to_json(e.incoming), "outgoing": to_json(e.outgoing),
        "enabled": 1, "failing": 0, "subject_template": "Re: {subject}", "footer": "",
        "folders": to_json(list(DEFAULT_FOLDERS)), "created_at": _at(e)})


def mailbox_settings(e: ev.MailboxSettingsChanged, rows: Rows) -> None:
    rows.update(MAILBOXES, _id(e), display_name=e.display_name, protocol=e.protocol.value,
                incoming=to_json(e.incoming), outgoing=to_json(e.outgoing))


def mailbox_reply(e: ev.MailboxReplySettingsChanged, rows: Rows) -> None:
    rows.update(MAILBOXES, _id(e), subject_template=e.subject_template, footer=e.footer)


# ----------------------------------------------------------------- agents and groups

def agent_created(e: Agent.Created, rows: Rows) -> None:
    rows.put(AGENTS, {"id": _id(e), "name": e.name, "email": e.email, "status": e.status.value,
                      "capacity": e.capacity, "created_at": _at(e), "active": 1, "deactivated_at": None})


def group_created(e: AgentGroup.Created, rows: Rows) -> None:
    rows.put(GROUPS, {"id": _id(e), "name": e.name, "member_ids": to_json([]), "joined": 0,
                      "created_at": _at(e)})
    _join(rows, _id(e), e.member_ids)


def _join(rows: Rows, group_id: str, agent_ids: list[UUID]) -> None:
    group = rows.get(GROUPS, group_id)
    assert group is not None
    members = [*_load(group["member_ids"]), *map(str, agent_ids)]
    for offset, agent_id in enumerate(agent_ids):
        rows.put(MEMBERS, {"group_id": group_id, "agent_id": str(agent_id),
                           "position": group["joined"] + offset})
    rows.update(GROUPS, group_id, member_ids=to_json(members), joined=group["joined"] + len(agent_ids))


def members_removed(e: ev.MembersChanged, rows: Rows) -> None:
    group = rows.get(GROUPS, _id(e))
    assert group is not None
    leaving = set(map(str, e.agent_ids))
    for agent_id in leaving:
        rows.delete(MEMBERS, _id(e), agent_id)
    members = [m for m in _load(group["member_ids"]) if m not in leaving]
    rows.update(GROUPS, _id(e), member_ids=to_json(members))


def group_deleted(e: ev.Event, rows: Rows) -> None:
    group = rows.get(GROUPS, _id(e))
    assert group is not None
    for agent_id in _load(group["member_ids"]):
        rows.delete(MEMBERS, _id(e), agent_id)
    rows.delete(GROUPS, _id(e))


def _load(text: str | None) -> list[Any]:
    return list(json.loads(text)) if text else []


# ----------------------------------------------------------------- routing rules

def rule_written(e: ev.RuleChanged, rows: Rows) -> None:
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


def rule_deleted(e: ev.Event, rows: Rows) -> None:
    _unlink_rule(rows, rows.get(RULES, _id(e)))
    rows.delete(RULES, _id(e))


# ----------------------------------------------------------------- customers

def account_created(e: Account.Created, rows: Rows) -> None:
    account_written(e, rows, e.owner_id)


def account_updated(e: ev.AccountUpdated, rows: Rows) -> None:
    account_written(e, rows, None)


def account_written(e: ev.AccountUpdated, rows: Rows, owner_id: UUID | None) -> None:
    """The account's row and domains; its owner only when the row is new (OwnerChanged sets it)."""
    old = rows.get(ACCOUNTS, _id(e))
    for domain in _load(old["domains"]) if old else []:
        rows.delete(ACCOUNT_DOMAINS, domain, _id(e))
    for domain in e.domains:
        rows.put(ACCOUNT_DOMAINS, {"domain": domain, "account_id": _id(e)})
    owner = old["owner_id"] if old else _opt(owner_id)
    rows.put(ACCOUNTS, {"id": _id(e), "name": e.name, "domains": to_json(e.domains),
                        "owner_id": owner, "created_at": old["created_at"] if old else _at(e)})


def contact_created(e: Contact.Created, rows: Rows) -> None:
    rows.put(CONTACTS, {"id": _id(e), "email": e.email, "name": e.name,
                        "account_id": _opt(e.account_id), "owner_id": _opt(e.owner_id)})


# ----------------------------------------------------------------- API tokens

def token_issued(e: ApiToken.Issued, rows: Rows) -> None:
    rows.put(TOKENS, {"id": _id(e), "name": e.name, "role": e.role.value, "agent_id": _opt(e.agent_id),
                      "created_at": _at(e), "expires_at": e.expires_at.isoformat() if e.expires_at else None,
                      "revoked_at": None})


EV = TypeVar("EV", bound=ev.Event)


def _set(event_class: type[EV], table: Table, columns: Callable[[EV], dict[str, Any]]) -> On:
    """The handler copying what `columns` makes of an event into columns of the event's row."""
    def handler(e: EV, rows: Rows) -> None:
        rows.update(table, _id(e), **columns(e))
    return on(event_class, handler)


class Directory(View):
    name = "directory"
    version = 2  # 2: agents' active and deactivated_at, API tokens
    tables = (MAILBOXES, AGENTS, GROUPS, MEMBERS, RULES, RULE_MAILBOXES, RULE_GROUPS,
              ACCOUNTS, ACCOUNT_DOMAINS, CONTACTS, TOKENS)
    handlers = dispatch(
        on(Erasure.Erased, lambda e, rows: erasure.contacts(e, rows, CONTACTS)),
        on(Mailbox.Bound, mailbox_bound),
        on(ev.MAILBOX_SETTINGS_CHANGED, mailbox_settings),
        on(ev.MAILBOX_REPLY_SETTINGS_CHANGED, mailbox_reply),
        _set(ev.MAILBOX_DISABLED, MAILBOXES, lambda e: {"enabled": 0}),
        _set(ev.MAILBOX_ENABLED, MAILBOXES, lambda e: {"enabled": 1}),
        _set(ev.MAILBOX_FOLDERS_CHANGED, MAILBOXES, lambda e: {"folders": to_json(e.folders)}),
        _set(ev.MAILBOX_SYNC_FAILED, MAILBOXES, lambda e: {"failing": 1, "last_error": e.error}),
        _set(ev.MAILBOX_SYNC_RECOVERED, MAILBOXES, lambda e: {"failing": 0, "last_error": None}),
        on(ev.MAILBOX_DELETED, lambda e, rows: rows.delete(MAILBOXES, _id(e))),
        on(Agent.Created, agent_created),
        _set(ev.AGENT_EDITED, AGENTS, lambda e: {"name": e.name, "email": e.email}),
        _set(ev.AGENT_STATUS_CHANGED, AGENTS, lambda e: {"status": e.status.value}),
        _set(ev.AGENT_CAPACITY_CHANGED, AGENTS, lambda e: {"capacity": e.capacity}),
        _set(ev.AGENT_DEACTIVATED, AGENTS, lambda e: {"active": 0, "deactivated_at": _at(e)}),
        on(AgentGroup.Created, group_created),
        on(ev.MEMBERS_ADDED, lambda e, rows: _join(rows, _id(e), e.agent_ids)),
        on(ev.MEMBERS_REMOVED, members_removed),
        on(ev.GROUP_DELETED, group_deleted),
        on(RoutingRule.Created, rule_written),
        on(ev.RULE_CHANGED, rule_written),
        on(ev.RULE_DELETED, rule_deleted),
        on(Account.Created, account_created),
        on(ev.ACCOUNT_UPDATED, account_updated),
        _set(ev.ACCOUNT_OWNER_CHANGED, ACCOUNTS, lambda e: {"owner_id": _opt(e.owner_id)}),
        on(Contact.Created, contact_created),
        _set(ev.CONTACT_UPDATED, CONTACTS, lambda e: {"name": e.name, "account_id": _opt(e.account_id)}),
        _set(ev.CONTACT_OWNER_CHANGED, CONTACTS, lambda e: {"owner_id": _opt(e.owner_id)}),
        on(ApiToken.Issued, token_issued),
        _set(ev.TOKEN_REVOKED, TOKENS, lambda e: {"revoked_at": _at(e)}),
    )
