"""Routing rules: validated as a whole, references checked against the log."""

from __future__ import annotations

from dataclasses import replace
from uuid import UUID

from domain.agents import AgentGroup
from domain.commands.base import Base, Written, retrying
from domain.errors import Problem, Rejected
from domain.mailbox import Mailbox
from domain.routing import RoutingRule, RuleSpec, check_rule


class RoutingCommands(Base):
    def _checked(self, spec: RuleSpec) -> RuleSpec:
        given = spec  # problem paths index the caller's lists, before duplicates are dropped
        spec = replace(
            spec,
            name=spec.name.strip(),
            mailbox_ids=list(dict.fromkeys(spec.mailbox_ids)),
            group_ids=list(dict.fromkeys(spec.group_ids)),
        )
        errors = check_rule(spec)
        for i, mailbox_id in enumerate(given.mailbox_ids):
            found = self._find(mailbox_id)
            if not isinstance(found, Mailbox) or found.deleted:
                errors.add(("input", "mailboxIds", str(i)), f"mailbox {mailbox_id} not found", "NOT_FOUND")
        for i, group_id in enumerate(given.group_ids):
            found = self._find(group_id)
            if not isinstance(found, AgentGroup) or found.deleted:
                errors.add(("input", "groupIds", str(i)), f"group {group_id} not found", "NOT_FOUND")
        errors.raise_if_any()
        return spec

    def create_routing_rule(self, spec: RuleSpec) -> Written:
        rule = RoutingRule(spec=self._checked(spec))
        return Written(rule.id, self._store(rule))

    @retrying()
    def update_routing_rule(
        self, rule_id: UUID, spec: RuleSpec, expected_version: int | None = None
    ) -> Written:
        """Without expected_version a concurrent change is retried on top (the input is the
        whole rule, so the retry states the caller's intent); with it, a stale caller gets CONFLICT."""
        rule = self._load(RoutingRule, rule_id, ("id",), "routing rule")
        if expected_version is not None and rule.version != expected_version:
            raise Rejected(
                Problem(
                    ("expectedVersion",),
                    f"the rule is at version {rule.version}, not {expected_version}: reload it",
                    "CONFLICT",
                )
            )
        spec = self._checked(spec)
        if spec != rule.spec:
            rule.change(spec)
        return Written(rule.id, self._store(rule))

    @retrying()
    def delete_routing_rule(self, rule_id: UUID) -> Written:
        rule = self._load(RoutingRule, rule_id, ("id",), "routing rule")
        rule.delete()
        return Written(rule.id, self._store(rule))


