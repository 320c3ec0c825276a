"""Stored event data must decode after upgrades: every stored type round-trips, every
event class has a stable explicit topic, and the encoded form does not drift."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil
from enum import Enum
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.domain import Aggregate, CanMutateAggregate
from eventsourcing.persistence import JSONTranscoder, UUIDAsHex
from eventsourcing.utils import resolve_topic

import domain
from domain import values
from domain.routing import RuleSpec
from domain.transcodings import ENUMS, RECORDS, register_all
from domain.values import (
    AssignmentStrategy,
    Condition,
    ConditionField,
    ConditionMatch,
    ConditionOperator,
    ServerSettings,
    TransportSecurity,
)


@pytest.fixture(scope="module")
def transcoder() -> JSONTranscoder:
    transcoder = JSONTranscoder()
    transcoder.register(UUIDAsHex())
    register_all(transcoder)
    return transcoder


def round_trip(transcoder: JSONTranscoder, obj: Any) -> Any:
    return transcoder.decode(transcoder.encode({"x": obj}))["x"]


ALL_ENUM_MEMBERS = [pytest.param(member, id=f"{type(member).__name__}.{member.name}") for e in ENUMS for member in e]


@pytest.mark.parametrize("member", ALL_ENUM_MEMBERS)
def test_every_enum_member_round_trips(transcoder: JSONTranscoder, member: Enum) -> None:
    back = round_trip(transcoder, member)
    assert back is member


def test_every_enum_and_record_of_values_is_registered() -> None:
    """A new value type that is not registered would make saving its events fail."""
    enums = {o for o in vars(values).values() if inspect.isclass(o) and issubclass(o, Enum) and o is not Enum}
    records = {o for o in vars(values).values() if inspect.isclass(o) and dataclasses.is_dataclass(o)}
    assert enums <= set(ENUMS)
    assert records <= set(RECORDS)
    assert RuleSpec in RECORDS


RECORD_SAMPLES = [
    ServerSettings("imap.example.com", 993, TransportSecurity.TLS, "support@example.com"),
    ServerSettings("[2001:db8::1]", 110, TransportSecurity.NONE, "ünïcødé"),
    Condition(ConditionField.SUBJECT, ConditionOperator.CONTAINS, "invoice"),
    Condition(ConditionField.HEADER, ConditionOperator.EQUALS, "1", header_name="X-Priority"),
    Condition(ConditionField.HAS_ATTACHMENT, ConditionOperator.IS_TRUE),
    RuleSpec("Minimal", [UUID(int=1)], [UUID(int=2)], AssignmentStrategy.ROUND_ROBIN),
    RuleSpec(
        name="Everything",
        mailbox_ids=[UUID(int=1), UUID("12345678-1234-5678-1234-567812345678")],
        group_ids=[UUID(int=3), UUID(int=4), UUID(int=5)],
        strategy=AssignmentStrategy.CONTACT_OWNER,
        priority=-1_000_000,
        enabled=False,
        match=ConditionMatch.ANY,
        conditions=[
            Condition(ConditionField.FROM_DOMAIN, ConditionOperator.ENDS_WITH, "example.com"),
            Condition(ConditionField.BODY, ConditionOperator.MATCHES_REGEX, r"order #\d{4,}"),
            Condition(ConditionField.HEADER, ConditionOperator.NOT_CONTAINS, "", header_name="X-Spam"),
        ],
        fallback_strategy=AssignmentStrategy.IDLE_FIRST,
    ),
]


@pytest.mark.parametrize("record", RECORD_SAMPLES, ids=lambda r: type(r).__name__)
def test_every_record_round_trips(transcoder: JSONTranscoder, record: Any) -> None:
    back = round_trip(transcoder, record)
    assert type(back) is type(record)
    assert back == record


def test_nested_values_come_back_typed(transcoder: JSONTranscoder) -> None:
    back = round_trip(transcoder, RECORD_SAMPLES[-1])
    assert all(type(i) is UUID for i in back.mailbox_ids + back.group_ids)
    assert all(type(c) is Condition for c in back.conditions)
    assert all(isinstance(c.field, ConditionField) for c in back.conditions)
    assert back.conditions[2].header_name == "X-Spam"


def test_encoded_form_is_stable(transcoder: JSONTranscoder) -> None:
    """Stored events hold exactly this; renaming a transcoding or an enum value breaks replay."""
    encoded = transcoder.encode(ServerSettings("h.example", 993, TransportSecurity.STARTTLS, "u"))
    assert encoded == (
        b'{"_type_":"record:ServerSettings","_data_":{"host":"h.example","port":993,'
        b'"security":{"_type_":"enum:TransportSecurity","_data_":"STARTTLS"},"username":"u"}}'
    )
    assert transcoder.encode(AssignmentStrategy.ROUND_ROBIN) == (
        b'{"_type_":"enum:AssignmentStrategy","_data_":"ROUND_ROBIN"}'
    )


def test_transcoding_names_are_unique(transcoder: JSONTranscoder) -> None:
    assert len(transcoder.names) == len(transcoder.types) == len(ENUMS) + len(RECORDS) + 1


# --- explicit event topics ----------------------------------------------------------------


def domain_aggregates() -> list[type[Aggregate]]:
    found: set[type[Aggregate]] = set()
    for info in pkgutil.walk_packages(domain.__path__, "domain."):
        module = importlib.import_module(info.name)
        for obj in vars(module).values():
            if (
                inspect.isclass(obj)
                and issubclass(obj, Aggregate)
                and obj is not Aggregate
                and obj.__module__.startswith("domain.")
            ):
                found.add(obj)
    return sorted(found, key=lambda c: c.__qualname__)


def domain_event_classes() -> list[type[Any]]:
    events = []
    for aggregate in domain_aggregates():
        for name, obj in vars(aggregate).items():
            # "Event" is the abstract base eventsourcing defines per aggregate; never recorded.
            if inspect.isclass(obj) and issubclass(obj, CanMutateAggregate) and name != "Event":
                events.append(obj)
    return events


def test_the_walk_finds_every_aggregate() -> None:
    names = {a.__name__ for a in domain_aggregates()}
    assert names >= {
        "Agent", "AgentGroup", "Account", "Contact", "Claim", "Mailbox", "ApiToken", "RoutingRule"
    }


@pytest.mark.parametrize("aggregate", domain_aggregates(), ids=lambda a: a.__name__)
def test_aggregate_has_explicit_mailroom_topic(aggregate: type[Aggregate]) -> None:
    topic = aggregate.__dict__.get("TOPIC")
    assert topic == f"mailroom:{aggregate.__name__}"
    assert resolve_topic(topic) is aggregate


def own_topic(event_class: type[Any]) -> str | None:
    """The TOPIC written on the event class itself (eventsourcing may wrap a declared class
    in a generated subclass of the same name), not one inherited from another event."""
    for cls in event_class.__mro__:
        if "TOPIC" in cls.__dict__:
            return cls.__dict__["TOPIC"] if cls.__qualname__ == event_class.__qualname__ else None
    return None


@pytest.mark.parametrize("event_class", domain_event_classes(), ids=lambda c: c.__qualname__)
def test_event_class_has_explicit_mailroom_topic(event_class: type[Any]) -> None:
    topic = own_topic(event_class)
    assert topic is not None, f"{event_class.__qualname__} has no TOPIC of its own"
    assert topic.startswith("mailroom:")
    assert topic == f"mailroom:{event_class.__qualname__}"
    assert resolve_topic(topic) is event_class


def test_event_topics_are_unique() -> None:
    topics = [own_topic(c) for c in domain_event_classes()]
    assert len(topics) == len(set(topics))
    assert len(topics) >= 30
