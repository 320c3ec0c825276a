"""Routing rules: which mailboxes' messages go to which groups, under which strategy."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Protocol
from uuid import UUID

import re2
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
# Limits on a MATCHES_REGEX pattern. RE2's search is linear in the text; its cost per character
# grows with the program when the DFA runs out of its share of REGEX_MAX_MEM and RE2 falls back to
# its NFA. Probing nested counted repetitions (the worst found) over 100,000 characters: up to
# ~2,000 instructions, at most ~0.2 s; above ~3,200 instructions, cliffs of 5-9 s.
MAX_REGEX = 500  # characters of the pattern
REGEX_MAX_MEM = 8 << 20  # bytes RE2 may use for one pattern (RE2's default): program and DFA caches
REGEX_MAX_PROGRAM = 2_000  # RE2 instructions; \pL+ is 1,201, .{1,1000} is 9,004
MAX_CONDITIONS = 50


class CompiledPattern(Protocol):
    """What routing uses of an RE2 pattern (google-re2 ships no type information)."""

    @property
    def programsize(self) -> int: ...

    def search(self, text: bytes) -> object | None: ...


class PatternRefused(ValueError):
    """A MATCHES_REGEX value the routing engine will not run; the message says why, for the admin."""


def _re2_options() -> object:
    options = re2.Options()
    options.max_mem = REGEX_MAX_MEM  # a bigger program fails to compile ("pattern too large")
    options.log_errors = False  # refusals go to the admin as userErrors, not to stderr
    options.never_capture = True  # routing only asks whether the pattern matches
    return options


_RE2_OPTIONS = _re2_options()


def _refusal(detail: str) -> str:
    """RE2's reason for refusing a pattern, put in terms an admin can act on."""
    unsupported = "which the routing engine (RE2: linear time, no backtracking) does not support"
    operator = detail.removeprefix("invalid perl operator: ")
    if operator != detail and operator.startswith(("(?=", "(?!", "(?<=", "(?<!")):
        return f"regex uses lookahead or lookbehind ({operator}), {unsupported}"
    if re.fullmatch(r"invalid escape sequence: \\[1-9k]|invalid perl operator: \(\?P[=>]?", detail):
        return f"regex uses a backreference, {unsupported}"
    if detail == "invalid escape sequence: \\Z":
        return "regex does not compile: \\Z is not supported; use \\z for the end of the text"
    if detail.startswith("invalid repetition size"):  # a count over 1000, or nested counts past it
        return "regex is too complex: a repetition count (nested counts multiplied) is over 1000"
    if detail.startswith("pattern too large"):
        return f"regex is too complex: it needs more than {REGEX_MAX_MEM >> 20} MiB to compile"
    return f"regex does not compile (RE2 syntax): {detail}"


def compile_pattern(pattern: str) -> CompiledPattern:
    """The one engine for MATCHES_REGEX, used both to accept a rule and to route with it.

    RE2 matches in time linear in the text, so a search needs no time guard and gives the same
    answer on any machine. Raises PatternRefused with an admin-facing reason for a pattern
    longer than MAX_REGEX, one RE2 rejects (backreferences, lookaround, bad syntax), or one whose
    program is larger than REGEX_MAX_PROGRAM instructions (the bound on the cost per character).
    """
    if len(pattern) > MAX_REGEX:
        raise PatternRefused(f"regex longer than {MAX_REGEX} characters")
    try:
        compiled: CompiledPattern = re2.compile(pattern, _RE2_OPTIONS)
    except re2.error as exc:
        detail = exc.args[0] if exc.args else ""
        text = detail.decode("utf-8", "replace") if isinstance(detail, bytes) else str(detail)
        raise PatternRefused(_refusal(text)) from None
    size = compiled.programsize
    if size > REGEX_MAX_PROGRAM:
        raise PatternRefused(
            f"regex is too complex: it compiles to {size} RE2 instructions, at most {REGEX_MAX_PROGRAM} are allowed"
            " (large repetition counts such as {1,1000} or \\pL{1,20} cost the most)"
        )
    return compiled


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
        try:
            compile_pattern(c.value)
        except PatternRefused as exc:
            errors.add((*path, "value"), str(exc))


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
