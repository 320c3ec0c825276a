"""MATCHES_REGEX rules through the in-memory application: what RE2 will not run is refused
when a rule is created or changed, with the field and message, and nothing is written."""

from __future__ import annotations

from uuid import UUID

import pytest

from domain.application import Mailroom
from domain.routing import MAX_REGEX, RoutingRule, RuleSpec
from domain.values import Condition, ConditionField, ConditionOperator
from tests.unit.test_commands import app, mailbox_and_group, refused, spec  # noqa: F401  (fixtures)

REFUSED = [
    pytest.param(r"(a)\1", "regex uses a backreference", id="backreference"),
    pytest.param(r"^(?P<q>['\"]).*(?P=q)$", "regex uses a backreference", id="named-backreference"),
    pytest.param(r"invoice(?= overdue)", "regex uses lookahead or lookbehind ((?=)", id="lookahead"),
    pytest.param(r"^(?!noreply@)", "regex uses lookahead or lookbehind ((?!)", id="negative-lookahead"),
    pytest.param(r"(?<=#)\d+", "regex uses lookahead or lookbehind ((?<=)", id="lookbehind"),
    pytest.param("x" * (MAX_REGEX + 1), f"regex longer than {MAX_REGEX} characters", id="too-long"),
    pytest.param(r".{1,1000}@", "regex is too complex", id="too-complex"),
    pytest.param(r"([a-z", "regex does not compile (RE2 syntax): missing ]", id="syntax"),
]


def regex_rule(mailbox_id: UUID, group_id: UUID, pattern: str) -> RuleSpec:
    conditions = [
        Condition(ConditionField.SUBJECT, ConditionOperator.CONTAINS, "invoice"),
        Condition(ConditionField.SUBJECT, ConditionOperator.MATCHES_REGEX, pattern),
    ]
    return spec([mailbox_id], [group_id], conditions=conditions)


@pytest.mark.parametrize(("pattern", "message"), REFUSED)
def test_rule_with_a_pattern_re2_refuses_is_not_created(
    app: Mailroom, mailbox_and_group: tuple[UUID, UUID], pattern: str, message: str  # noqa: F811
) -> None:
    problems = refused(app.create_routing_rule, regex_rule(*mailbox_and_group, pattern))
    assert [(p.field, p.code) for p in problems] == [(("input", "conditions", "1", "value"), "INVALID")]
    assert problems[0].message.startswith(message)


@pytest.mark.parametrize(("pattern", "message"), REFUSED)
def test_rule_cannot_be_changed_to_a_pattern_re2_refuses(
    app: Mailroom, mailbox_and_group: tuple[UUID, UUID], pattern: str, message: str  # noqa: F811
) -> None:
    rule_id = app.create_routing_rule(regex_rule(*mailbox_and_group, r"#\d+")).id
    problems = refused(app.update_routing_rule, rule_id, regex_rule(*mailbox_and_group, pattern))
    assert [(p.field, p.code) for p in problems] == [(("input", "conditions", "1", "value"), "INVALID")]
    assert problems[0].message.startswith(message)
    kept: object = app.repository.get(rule_id)
    assert isinstance(kept, RoutingRule)
    assert kept.spec.conditions[1].value == r"#\d+"


def test_rule_with_a_pattern_re2_runs_is_created(
    app: Mailroom, mailbox_and_group: tuple[UUID, UUID]  # noqa: F811
) -> None:
    pattern = r"(?i)^(re|fwd?):\s*\[#\d{1,10}\]|^(a|aa)+$"
    rule: object = app.repository.get(app.create_routing_rule(regex_rule(*mailbox_and_group, pattern)).id)
    assert isinstance(rule, RoutingRule)
    assert rule.spec.conditions[1].value == pattern
