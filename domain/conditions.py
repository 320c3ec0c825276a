r"""Routing conditions: whether an inbound message satisfies a rule, and which rule wins.

Semantics:

- Text operators (EQUALS, NOT_EQUALS, CONTAINS, NOT_CONTAINS, STARTS_WITH, ENDS_WITH)
  ignore case for every field. For addresses and domains that is how email works; for
  SUBJECT, BODY and HEADER values it is a choice: it is what helpdesk admins expect, and
  Zammad and FreeScout do the same. Both sides are compared with ``str.casefold()``.
- MATCHES_REGEX searches anywhere in the text with the pattern as written (case-sensitive
  unless the pattern says ``(?i)``), in RE2 syntax (``domain.routing.compile_pattern``, the
  same engine that accepted the rule). RE2 differs from Python's ``re``: no backreferences or
  lookaround (refused when the rule is saved); ``\d``, ``\w``, ``\s`` and ``\b`` are ASCII;
  ``$`` without ``(?m)`` is the very end of the text (not before a final newline); ``\z``, not
  ``\Z``. A pattern the engine refuses (a rule saved before these checks) never matches; a
  search never raises.
- What a regex reads is bounded per message, by input size, never by a clock (see
  ``_regex_texts``): the first REGEX_MAX_CHARS characters of a text field; of TO_ADDRESS or
  CC_ADDRESS, the longest prefix of the list that has at most REGEX_MAX_ADDRESSES addresses
  and REGEX_MAX_CHARS characters in all (addresses are read whole). RE2 runs in time linear
  in that text, so the same message gives the same result on any machine, however slow.
  Text operators read whole fields (str operations, linear in the text anyway).
- TO_ADDRESS and CC_ADDRESS are lists: EQUALS, CONTAINS, STARTS_WITH, ENDS_WITH and
  MATCHES_REGEX hold if any address satisfies them; NOT_EQUALS and NOT_CONTAINS hold if no
  address satisfies the positive form, so an empty list satisfies them.
- HEADER looks up ``headers[header_name.lower()]``; a missing header reads as "" for every
  operator (NOT_CONTAINS holds on it, CONTAINS does not).
- HAS_ATTACHMENT takes IS_TRUE or IS_FALSE.
- A combination ``check_rule`` refuses (a text operator on HAS_ATTACHMENT, IS_TRUE on a
  text field, HEADER without a name) never holds.
- ``matches``: no conditions match; ALL needs every condition, ANY at least one.
- ``first_matching_rule``: enabled rules covering the mailbox, by ascending priority, ties
  by creation order (older first); the first whose conditions match wins.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from uuid import UUID

from domain.routing import CompiledPattern, PatternRefused, RuleSpec, compile_pattern
from domain.values import Condition, ConditionField, ConditionMatch, ConditionOperator

REGEX_MAX_CHARS = 100_000  # characters of one field a regex condition reads
REGEX_MAX_ADDRESSES = 1_000  # addresses of TO_ADDRESS or CC_ADDRESS a regex condition reads

Op = ConditionOperator

# Each operator as a test on casefolded (text, value); the NOT_* forms negate these.
_TEXT_TESTS: dict[ConditionOperator, Callable[[str, str], bool]] = {
    Op.EQUALS: lambda text, value: text == value,
    Op.CONTAINS: lambda text, value: value in text,
    Op.STARTS_WITH: lambda text, value: text.startswith(value),
    Op.ENDS_WITH: lambda text, value: text.endswith(value),
}
_NEGATIONS = {Op.NOT_EQUALS: Op.EQUALS, Op.NOT_CONTAINS: Op.CONTAINS}
_ADDRESS_LISTS = frozenset({ConditionField.TO_ADDRESS, ConditionField.CC_ADDRESS})


@dataclass(frozen=True)
class MessageFacts:
    """What conditions look at, taken from an inbound message."""

    from_address: str
    to: list[str]
    cc: list[str]
    subject: str
    body: str
    headers: dict[str, str]  # lower-cased header name -> first value
    has_attachment: bool

    @property
    def from_domain(self) -> str:
        """The part after the last "@", lower-cased; "" if there is no "@"."""
        _, at, domain = self.from_address.rpartition("@")
        return domain.lower() if at else ""


@dataclass(frozen=True)
class RuleEntry:
    """A rule as routing sees it; ``order`` is creation order (older rule = smaller)."""

    rule_id: UUID
    spec: RuleSpec
    order: int


@lru_cache(maxsize=512)
def _compiled(pattern: str) -> CompiledPattern | None:
    """Each pattern is compiled once, not once per message (None: the engine refuses it).

    Keyed by the pattern string, so rules and rule versions that share a pattern share its
    program; 512 programs of at most REGEX_MAX_MEM each (most use a few KiB)."""
    try:
        return compile_pattern(pattern)
    except PatternRefused:
        return None


def _regex_texts(field: ConditionField, texts: list[str]) -> list[str]:
    """The part of a field a regex reads: the bound on what one message can cost.

    A regex condition reads at most REGEX_MAX_CHARS characters of the message, in at most
    REGEX_MAX_ADDRESSES searches, whatever the message: a text field is cut at REGEX_MAX_CHARS;
    an address list is read in order, whole addresses only, and stops at the first address that
    would take it past either limit. The budget is the list's, not each address's (the old
    guard was 50 ms per address: 1,400 addresses took 74 s). With RE2 linear in the text and
    the program bounded (domain.routing.REGEX_MAX_PROGRAM), one condition costs at most one
    field's worth of text, one rule at most MAX_CONDITIONS of those. Only sizes decide what is
    read, never a clock, so a replay on any machine reads the same text and gets the same answer.
    """
    if field not in _ADDRESS_LISTS:
        return [text[:REGEX_MAX_CHARS] for text in texts]
    read: list[str] = []
    budget = REGEX_MAX_CHARS
    for text in texts[:REGEX_MAX_ADDRESSES]:
        if len(text) > budget:
            break
        read.append(text)
        budget -= len(text)
    return read


def _regex_finds(condition: Condition, texts: list[str]) -> bool:
    compiled = _compiled(condition.value)
    if compiled is None:
        return False
    # surrogatepass: a lone surrogate cannot make the search raise (intake removes them anyway)
    return any(
        compiled.search(text.encode("utf-8", "surrogatepass")) is not None
        for text in _regex_texts(condition.field, texts)
    )


def _texts(condition: Condition, facts: MessageFacts) -> list[str] | None:
    """The values a text condition looks at; None if the condition is malformed."""
    match condition.field:
        case ConditionField.FROM_ADDRESS:
            return [facts.from_address]
        case ConditionField.FROM_DOMAIN:
            return [facts.from_domain]
        case ConditionField.TO_ADDRESS:
            return facts.to
        case ConditionField.CC_ADDRESS:
            return facts.cc
        case ConditionField.SUBJECT:
            return [facts.subject]
        case ConditionField.BODY:
            return [facts.body]
        case ConditionField.HEADER:
            if not condition.header_name:
                return None
            return [facts.headers.get(condition.header_name.lower(), "")]
        case ConditionField.HAS_ATTACHMENT:
            return None


def holds(condition: Condition, facts: MessageFacts) -> bool:
    """Whether one condition holds for the message (semantics in the module docstring)."""
    op = condition.operator
    if condition.field is ConditionField.HAS_ATTACHMENT:
        return (op is Op.IS_TRUE and facts.has_attachment) or (op is Op.IS_FALSE and not facts.has_attachment)
    texts = _texts(condition, facts)
    if texts is None:
        return False
    if op is Op.MATCHES_REGEX:
        return _regex_finds(condition, texts)
    positive = _NEGATIONS.get(op, op)
    test = _TEXT_TESTS.get(positive)
    if test is None:  # IS_TRUE / IS_FALSE on a text field
        return False
    value = condition.value.casefold()
    found = any(test(text.casefold(), value) for text in texts)
    return found if positive is op else not found


def matches(match: ConditionMatch, conditions: Sequence[Condition], facts: MessageFacts) -> bool:
    """No conditions: True. ALL: every condition holds. ANY: at least one does."""
    if not conditions:
        return True
    results = (holds(condition, facts) for condition in conditions)
    return all(results) if match is ConditionMatch.ALL else any(results)


def first_matching_rule(rules: Sequence[RuleEntry], mailbox_id: UUID, facts: MessageFacts) -> RuleEntry | None:
    """The winning rule for a message that arrived in ``mailbox_id``, or None."""
    candidates = sorted(
        (rule for rule in rules if rule.spec.enabled and mailbox_id in rule.spec.mailbox_ids),
        key=lambda rule: (rule.spec.priority, rule.order),
    )
    return next((rule for rule in candidates if matches(rule.spec.match, rule.spec.conditions, facts)), None)
