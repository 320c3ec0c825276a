"""Routing rule checks: each mistake an admin can make, and the input field it points at."""

from __future__ import annotations

from uuid import UUID, uuid4

import pytest

from domain.errors import Collector
from domain.routing import (
    MAX_CONDITIONS,
    MAX_REGEX,
    REGEX_MAX_PROGRAM,
    PatternRefused,
    RuleSpec,
    check_condition,
    check_rule,
    compile_pattern,
)
from domain.values import AssignmentStrategy, Condition, ConditionField, ConditionMatch, ConditionOperator

F = ConditionField
Op = ConditionOperator
S = AssignmentStrategy

VALID = Condition(F.SUBJECT, Op.CONTAINS, "invoice")


def rule(**changes: object) -> RuleSpec:
    fields: dict[str, object] = {
        "name": "Billing",
        "mailbox_ids": [uuid4()],
        "group_ids": [uuid4()],
        "strategy": S.LOAD_BALANCED,
    }
    fields.update(changes)
    return RuleSpec(**fields)  # type: ignore[arg-type]


def fields_of(errors: Collector) -> list[tuple[str, ...] | None]:
    return [p.field for p in errors.problems]


# --- conditions -------------------------------------------------------------------------

BAD_CONDITIONS = [
    pytest.param(Condition(F.SUBJECT, Op.MATCHES_REGEX, "(unclosed"), "value", "does not compile", id="regex"),
    pytest.param(Condition(F.BODY, Op.MATCHES_REGEX, "[z-a]"), "value", "does not compile", id="regex-range"),
    pytest.param(
        Condition(F.SUBJECT, Op.MATCHES_REGEX, "a" * (MAX_REGEX + 1)), "value", "longer than 500", id="regex-long"
    ),
    pytest.param(Condition(F.SUBJECT, Op.MATCHES_REGEX, ""), "value", "needs a value", id="regex-empty"),
    pytest.param(Condition(F.SUBJECT, Op.MATCHES_REGEX, r"(a)\1"), "value", "backreference", id="regex-backref"),
    pytest.param(
        Condition(F.SUBJECT, Op.MATCHES_REGEX, r"(?P<x>a)(?P=x)"), "value", "backreference", id="regex-named-backref"
    ),
    pytest.param(Condition(F.SUBJECT, Op.MATCHES_REGEX, r"(?=a)"), "value", "lookahead", id="regex-lookahead"),
    pytest.param(Condition(F.BODY, Op.MATCHES_REGEX, r"x(?!a)"), "value", "lookahead", id="regex-negative-lookahead"),
    pytest.param(Condition(F.BODY, Op.MATCHES_REGEX, r"(?<=a)b"), "value", "lookbehind", id="regex-lookbehind"),
    pytest.param(Condition(F.SUBJECT, Op.MATCHES_REGEX, r"done\Z"), "value", "use \\z", id="regex-Z"),
    pytest.param(Condition(F.SUBJECT, Op.MATCHES_REGEX, r".{1,1000}x"), "value", "too complex", id="regex-big"),
    pytest.param(Condition(F.SUBJECT, Op.MATCHES_REGEX, r"\pL{1,20}"), "value", "too complex", id="regex-unicode"),
    pytest.param(Condition(F.HEADER, Op.EQUALS, "1"), "headerName", "need the header's name", id="no-header"),
    pytest.param(
        Condition(F.HEADER, Op.EQUALS, "1", header_name=""), "headerName", "need the header's name", id="empty-hdr"
    ),
    pytest.param(
        Condition(F.HEADER, Op.EQUALS, "1", header_name="X Priority"), "headerName", "not a header", id="space"
    ),
    pytest.param(
        Condition(F.HEADER, Op.EQUALS, "1", header_name="X-Priority:"), "headerName", "not a header", id="colon"
    ),
    pytest.param(
        Condition(F.HEADER, Op.EQUALS, "1", header_name="X-Prïority"), "headerName", "not a header", id="non-ascii"
    ),
    pytest.param(
        Condition(F.HEADER, Op.EQUALS, "1", header_name="X-A\r\nBcc"), "headerName", "not a header", id="crlf"
    ),
    pytest.param(Condition(F.HAS_ATTACHMENT, Op.CONTAINS, "pdf"), "operator", "IS_TRUE or IS_FALSE", id="att"),
    pytest.param(Condition(F.HAS_ATTACHMENT, Op.EQUALS, "yes"), "operator", "IS_TRUE or IS_FALSE", id="att-eq"),
    pytest.param(Condition(F.SUBJECT, Op.IS_TRUE), "operator", "HAS_ATTACHMENT only", id="subject-is-true"),
    pytest.param(Condition(F.FROM_ADDRESS, Op.IS_FALSE), "operator", "HAS_ATTACHMENT only", id="from-is-false"),
    pytest.param(Condition(F.SUBJECT, Op.CONTAINS, ""), "value", "CONTAINS needs a value", id="contains-empty"),
    pytest.param(Condition(F.BODY, Op.NOT_CONTAINS, ""), "value", "needs a value", id="not-contains-empty"),
    pytest.param(Condition(F.FROM_DOMAIN, Op.STARTS_WITH, ""), "value", "needs a value", id="starts-empty"),
    pytest.param(Condition(F.TO_ADDRESS, Op.ENDS_WITH, ""), "value", "needs a value", id="ends-empty"),
]


@pytest.mark.parametrize(("condition", "bad_field", "message"), BAD_CONDITIONS)
def test_bad_condition_points_at_its_field(condition: Condition, bad_field: str, message: str) -> None:
    errors = check_rule(rule(conditions=[VALID, condition]))
    assert set(fields_of(errors)) == {("input", "conditions", "1", bad_field)}
    assert all(p.code == "INVALID" for p in errors.problems)
    assert any(message in p.message for p in errors.problems)


@pytest.mark.parametrize(
    "condition",
    [
        Condition(F.SUBJECT, Op.MATCHES_REGEX, r"^\[ticket #\d+\]"),
        Condition(F.SUBJECT, Op.MATCHES_REGEX, "a" * MAX_REGEX),
        Condition(F.SUBJECT, Op.MATCHES_REGEX, r"(?i)^(re|fwd?):\s*(?P<ticket>\[#\d{1,10}\])"),
        Condition(F.FROM_ADDRESS, Op.MATCHES_REGEX, r"(?i)^[a-z0-9._%+-]+@(example|acme)\.(com|io)$"),
        Condition(F.BODY, Op.MATCHES_REGEX, r"(?m)^\s*(invoice|rechnung|счёт)\b"),
        Condition(F.BODY, Op.MATCHES_REGEX, r"\pL+ \p{Greek}+ \z"),
        Condition(F.SUBJECT, Op.MATCHES_REGEX, r"^(a|aa)+$"),  # catastrophic for backtracking, fine for RE2
        Condition(F.HEADER, Op.EQUALS, "1", header_name="X-Priority"),
        Condition(F.HEADER, Op.CONTAINS, "yes", header_name="X-Spam-Flag"),
        Condition(F.HAS_ATTACHMENT, Op.IS_TRUE),
        Condition(F.HAS_ATTACHMENT, Op.IS_FALSE),
        Condition(F.FROM_DOMAIN, Op.ENDS_WITH, "example.com"),
        Condition(F.CC_ADDRESS, Op.EQUALS, "boss@example.com"),
        Condition(F.SUBJECT, Op.NOT_EQUALS, ""),
    ],
)
def test_valid_condition_has_no_problems(condition: Condition) -> None:
    errors = Collector()
    check_condition(errors, ("input", "conditions", "0"), condition)
    assert errors.problems == []


def test_check_condition_uses_the_given_path() -> None:
    errors = Collector()
    check_condition(errors, ("input", "conditions", "7"), Condition(F.SUBJECT, Op.CONTAINS, ""))
    assert fields_of(errors) == [("input", "conditions", "7", "value")]


def test_each_bad_condition_is_reported_at_its_own_index() -> None:
    errors = check_rule(
        rule(
            conditions=[
                Condition(F.SUBJECT, Op.IS_TRUE),
                VALID,
                Condition(F.HEADER, Op.CONTAINS, ""),
            ]
        )
    )
    assert fields_of(errors) == [
        ("input", "conditions", "0", "operator"),
        ("input", "conditions", "2", "headerName"),
        ("input", "conditions", "2", "value"),
    ]


# --- the regex engine: one for accepting a rule and for routing with it -------------------


def test_refused_patterns_say_why() -> None:
    messages = {}
    for pattern in [r"(a)\1", r"(?=a)", r"(?<!a)b", r"(unclosed", "a" * (MAX_REGEX + 1), r".{1,1000}x"]:
        with pytest.raises(PatternRefused) as refused:
            compile_pattern(pattern)
        messages[pattern[:12]] = str(refused.value)
    assert messages == {
        r"(a)\1": "regex uses a backreference, which the routing engine (RE2: linear time, no backtracking)"
        " does not support",
        r"(?=a)": "regex uses lookahead or lookbehind ((?=), which the routing engine (RE2: linear time,"
        " no backtracking) does not support",
        r"(?<!a)b": "regex uses lookahead or lookbehind ((?<!), which the routing engine (RE2: linear time,"
        " no backtracking) does not support",
        "(unclosed": "regex does not compile (RE2 syntax): missing ): (unclosed",
        "a" * 12: f"regex longer than {MAX_REGEX} characters",
        r".{1,1000}x": f"regex is too complex: it compiles to 9004 RE2 instructions, at most {REGEX_MAX_PROGRAM}"
        " are allowed (large repetition counts such as {1,1000} or \\pL{1,20} cost the most)",
    }


def test_refused_pattern_in_a_rule_is_reported_with_the_others() -> None:
    errors = check_rule(
        rule(
            name="",
            conditions=[
                VALID,
                Condition(F.SUBJECT, Op.MATCHES_REGEX, r"(a)\1"),
                Condition(F.TO_ADDRESS, Op.MATCHES_REGEX, r"^(?!noreply@)"),
                Condition(F.BODY, Op.MATCHES_REGEX, "x" * (MAX_REGEX + 1)),
            ],
        )
    )
    assert fields_of(errors) == [
        ("input", "name"),
        ("input", "conditions", "1", "value"),
        ("input", "conditions", "2", "value"),
        ("input", "conditions", "3", "value"),
    ]
    assert all(p.code == "INVALID" for p in errors.problems)


def test_a_pattern_just_within_the_limits_compiles() -> None:
    assert compile_pattern("a" * MAX_REGEX).search(b"a" * MAX_REGEX) is not None
    assert compile_pattern(r"(?i)x{1,400}y").search(b"XXy") is not None


# --- rules ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "bad_field"),
    [
        ({"name": ""}, ("input", "name")),
        ({"name": "   "}, ("input", "name")),
        ({"name": "x" * 201}, ("input", "name")),
        ({"name": "a\nb"}, ("input", "name")),
        ({"mailbox_ids": []}, ("input", "mailboxIds")),
        ({"group_ids": []}, ("input", "groupIds")),
        ({"priority": 1_000_001}, ("input", "priority")),
        ({"priority": -1_000_001}, ("input", "priority")),
        ({"fallback_strategy": S.ACCOUNT_OWNER}, ("input", "fallbackStrategy")),
        ({"fallback_strategy": S.CONTACT_OWNER}, ("input", "fallbackStrategy")),
        ({"conditions": [VALID] * (MAX_CONDITIONS + 1)}, ("input", "conditions")),
    ],
)
def test_bad_rule_points_at_its_field(changes: dict[str, object], bad_field: tuple[str, ...]) -> None:
    errors = check_rule(rule(**changes))
    assert fields_of(errors) == [bad_field]
    assert errors.problems[0].code == "INVALID"


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"priority": 1_000_000},
        {"priority": -1_000_000},
        {"strategy": S.ACCOUNT_OWNER, "fallback_strategy": S.ROUND_ROBIN},
        {"strategy": S.CONTACT_OWNER, "fallback_strategy": S.IDLE_FIRST},
        {"strategy": S.IDLE_FIRST, "enabled": False, "match": ConditionMatch.ANY},
        {"conditions": [VALID] * MAX_CONDITIONS},
        {"mailbox_ids": [uuid4(), uuid4()], "group_ids": [uuid4(), uuid4()]},
    ],
)
def test_valid_rule_has_no_problems(changes: dict[str, object]) -> None:
    assert check_rule(rule(**changes)).problems == []


def test_rule_without_mailboxes_or_groups_reports_both() -> None:
    errors = check_rule(rule(mailbox_ids=[], group_ids=[]))
    assert fields_of(errors) == [("input", "mailboxIds"), ("input", "groupIds")]


def test_every_problem_of_a_rule_is_reported_at_once() -> None:
    errors = check_rule(
        rule(
            name="",
            mailbox_ids=[],
            priority=2_000_000,
            fallback_strategy=S.CONTACT_OWNER,
            conditions=[Condition(F.HAS_ATTACHMENT, Op.CONTAINS, "x")],
        )
    )
    assert fields_of(errors) == [
        ("input", "name"),
        ("input", "mailboxIds"),
        ("input", "priority"),
        ("input", "fallbackStrategy"),
        ("input", "conditions", "0", "operator"),
    ]


def test_rule_spec_defaults() -> None:
    spec = RuleSpec("r", [UUID(int=1)], [UUID(int=2)], S.ROUND_ROBIN)
    assert spec.priority == 100
    assert spec.enabled is True
    assert spec.match is ConditionMatch.ALL
    assert spec.conditions == []
    assert spec.fallback_strategy is S.LOAD_BALANCED
    assert check_rule(spec).problems == []
