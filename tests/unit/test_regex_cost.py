"""Issue 8, regex cost: the routing engine (RE2) routes a mail that is a backtracking trap in well
under a second, and refuses a pattern whose program would be huge when the rule is saved."""

from __future__ import annotations

import time
from uuid import UUID, uuid4

import pytest

from domain.application import Mailroom
from domain.conditions import MessageFacts, RuleEntry, first_matching_rule
from domain.routing import PatternRefused, RuleSpec, compile_pattern
from domain.values import AssignmentStrategy, Condition, ConditionField, ConditionMatch, ConditionOperator
from tests.unit.test_commands import app, mailbox_and_group, refused, spec  # noqa: F401  (fixtures)

TRAP = r"^(a|aa)+$"  # exponential for a backtracking engine on "aaaa…a1@…"
HUGE = "(((a{100}){100}){100}){10}"  # 10^7 copies of "a" once expanded
MAILBOX = uuid4()


def addresses(prefix: str, count: int) -> list[str]:
    return [f"{'a' * 40}{prefix}{i}@example.com" for i in range(count)]


def message(to: list[str], cc: list[str]) -> MessageFacts:
    return MessageFacts(from_address="customer@example.com", to=to, cc=cc, subject="hello", body="",
                        headers={}, has_attachment=False)


def trap_rule(match: ConditionMatch) -> RuleEntry:
    conditions = [Condition(ConditionField.TO_ADDRESS, ConditionOperator.MATCHES_REGEX, TRAP),
                  Condition(ConditionField.CC_ADDRESS, ConditionOperator.MATCHES_REGEX, TRAP)]
    spec = RuleSpec(name=f"trap {match.value}", mailbox_ids=[MAILBOX], group_ids=[uuid4()],
                    strategy=AssignmentStrategy.LOAD_BALANCED, match=match, conditions=conditions)
    return RuleEntry(uuid4(), spec, 0)


def catch_all() -> RuleEntry:
    spec = RuleSpec(name="everything else", mailbox_ids=[MAILBOX], group_ids=[uuid4()],
                    strategy=AssignmentStrategy.LOAD_BALANCED, priority=1000)
    return RuleEntry(uuid4(), spec, 1)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("match", [ConditionMatch.ALL, ConditionMatch.ANY])
def test_700_to_and_700_cc_against_a_backtracking_trap_route_in_well_under_a_second(match: ConditionMatch) -> None:
    facts = message(addresses("to", 700), addresses("cc", 700))
    rules = [trap_rule(match), catch_all()]

    started = time.perf_counter()
    winner = first_matching_rule(rules, MAILBOX, facts)
    elapsed = time.perf_counter() - started

    assert winner is not None and winner.spec.name == "everything else"  # every address read: none matches
    assert elapsed < 1.0, f"routing took {elapsed:.2f} s"


@pytest.mark.timeout(60)
def test_a_matching_address_last_in_the_list_is_still_found_in_time() -> None:
    facts = message(addresses("to", 700), [*addresses("cc", 699), "a" * 64])

    started = time.perf_counter()
    winner = first_matching_rule([trap_rule(ConditionMatch.ANY), catch_all()], MAILBOX, facts)

    assert time.perf_counter() - started < 1.0
    assert winner is not None and winner.spec.name == "trap ANY"


def test_a_pattern_with_a_huge_program_is_refused_quickly() -> None:
    started = time.perf_counter()
    with pytest.raises(PatternRefused, match="repetition"):  # RE2 caps nested counts at 1,000 in all
        compile_pattern(HUGE)
    assert time.perf_counter() - started < 1.0


@pytest.mark.parametrize("field", [ConditionField.TO_ADDRESS, ConditionField.SUBJECT])
def test_creating_a_rule_with_a_huge_pattern_is_a_user_error(
        app: Mailroom, mailbox_and_group: tuple[UUID, UUID], field: ConditionField) -> None:  # noqa: F811
    conditions = [Condition(field, ConditionOperator.MATCHES_REGEX, HUGE)]

    problems = refused(app.create_routing_rule, spec(list(mailbox_and_group[:1]), [mailbox_and_group[1]],
                                                     conditions=conditions))

    assert [(p.field, p.code) for p in problems] == [(("input", "conditions", "0", "value"), "INVALID")]
    assert problems[0].message.startswith("regex is too complex") and "repetition" in problems[0].message
