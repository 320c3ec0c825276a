"""Routing rules: which mailboxes' messages go to which groups, under which strategy."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import Collector
from domain.validation import check_name
from domain.values import (
    AssignmentStrategy,
    Condition,
    ConditionField,
    ConditionMatch,
    ConditionOperator,
)

OWNER_STRATEGIES = (AssignmentStrategy.ACCOUNT_OWNER, AssignmentStrategy.CONTACT_OWNER)
TEXT_OPERATORS = frozenset(ConditionOperator) - {ConditionOperator.IS_TRUE, ConditionOperator.IS_FALSE}
NEEDS_VALUE = frozenset(
    {
        ConditionOperator.CONTAINS,
        ConditionOperator.NOT_CONTAINS,
        ConditionOperator.STARTS_WITH,
        ConditionOperator.ENDS_WITH,
        ConditionOperator.MATCHES_REGEX,
    }
)
MAX_REGEX = 500
MAX_CONDITIONS = 50


@dataclass(frozen=True)
class RuleSpec:
    """Everything an admin sets on a rule; created and changed as a whole."""

    name: str
    mailbox_ids: list[UUID]
    group_ids: list[UUID]
    strategy: AssignmentStrategy
    priority: int = 100
    enabled: bool = True
    match: ConditionMatch = ConditionMatch.ALL
    conditions: list[Condition] = field(default_factory=list)
    fallback_strategy: AssignmentStrategy = AssignmentStrategy.LOAD_BALANCED


def check_condition(errors: Collector, path: tuple[str, ...], c: Condition) -> None:
    if c.field is ConditionField.HAS_ATTACHMENT:
        if c.operator in TEXT_OPERATORS:
            errors.add((*path, "operator"), "HAS_ATTACHMENT takes IS_TRUE or IS_FALSE")
        return
    if c.operator not in TEXT_OPERATORS:
        errors.add((*path, "operator"), f"{c.operator.value} applies to HAS_ATTACHMENT only")
    if c.field is ConditionField.HEADER and not (c.header_name or "").strip():
        errors.add((*path, "headerName"), "HEADER conditions need the header's name")
    if c.header_name and not re.fullmatch(r"[!-9;-~]+", c.header_name):
        errors.add((*path, "headerName"), f"'{c.header_name}' is not a header name")
    if c.operator in NEEDS_VALUE and not c.value:
        errors.add((*path, "value"), f"{c.operator.value} needs a value")
    if c.operator is ConditionOperator.MATCHES_REGEX and c.value:
        if len(c.value) > MAX_REGEX:
            errors.add((*path, "value"), f"regex longer than {MAX_REGEX} characters")
        else:
            try:
                re.compile(c.value)
            except re.error as exc:
                errors.add((*path, "value"), f"regex does not compile: {exc}")


def check_rule(spec: RuleSpec) -> Collector:
    """Checks that need no I/O; the caller adds the existence checks."""
    errors = Collector()
    check_name(errors, ("input", "name"), spec.name)
    if not spec.mailbox_ids:
        errors.add(("input", "mailboxIds"), "a rule needs at least one mailbox")
    if not spec.group_ids:
        errors.add(("input", "groupIds"), "a rule needs at least one group")
    if not -1_000_000 <= spec.priority <= 1_000_000:
        errors.add(("input", "priority"), "priority must be between -1000000 and 1000000")
    if spec.fallback_strategy in OWNER_STRATEGIES:
        errors.add(("input", "fallbackStrategy"), "the fallback cannot itself be an owner strategy")
    if len(spec.conditions) > MAX_CONDITIONS:
        errors.add(("input", "conditions"), f"at most {MAX_CONDITIONS} conditions")
    for i, condition in enumerate(spec.conditions):
        check_condition(errors, ("input", "conditions", str(i)), condition)
    return errors


class RoutingRule(Aggregate):
    TOPIC = "mailroom:RoutingRule"

    class Created(Aggregate.Created):
        TOPIC = "mailroom:RoutingRule.Created"
        spec: RuleSpec

    def __init__(self, spec: RuleSpec) -> None:
        self.spec = spec
        self.deleted = False

    @event("Changed", topic="mailroom:RoutingRule.Changed")
    def change(self, spec: RuleSpec) -> None:
        self.spec = spec

    @event("Deleted", topic="mailroom:RoutingRule.Deleted")
    def delete(self) -> None:
        self.deleted = True
