"""Stored event data must decode after upgrades: every stored type round-trips, every
event class has a stable explicit topic, and the encoded form does not drift."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil
from datetime import UTC, datetime
from enum import Enum
from typing import Any, ClassVar
from uuid import UUID

import pytest
from eventsourcing.domain import Aggregate, CanMutateAggregate
from eventsourcing.persistence import DatetimeAsISO, JSONTranscoder, Mapper, StoredEvent, UUIDAsHex
from eventsourcing.utils import resolve_topic

import domain
from adapters.sealing import SealingMapper
from domain import values
from domain.conversation import Conversation, InboundKey
from domain.mail import InboundMail, ReceivedMail, content_key, conversation_ref
from domain.routing import RuleSpec
from domain.transcodings import ENUMS, RECORDS, RecordAsDict, register_all
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


# --- versioned records ----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Window:
    """A record whose shape changed: v1 stored `minutes`, v2 stores `seconds` and a `label`."""

    class_version: ClassVar[int] = 2
    seconds: int
    label: str

    @staticmethod
    def upcast_v1_v2(data: dict[str, Any]) -> None:
        data["seconds"] = data.pop("minutes") * 60
        data.setdefault("label", "")


@pytest.fixture
def window_transcoder() -> JSONTranscoder:
    transcoder = JSONTranscoder()
    transcoder.register(RecordAsDict(Window))
    return transcoder


def test_an_old_version_record_is_read_in_its_new_shape(window_transcoder: JSONTranscoder) -> None:
    """Stored before the shape changed (no version: version 1), read after it."""
    stored_v1 = b'{"_type_":"record:Window","_data_":{"minutes":5}}'
    assert window_transcoder.decode(stored_v1) == Window(seconds=300, label="")


def test_a_versioned_record_stores_its_version_and_reads_back(window_transcoder: JSONTranscoder) -> None:
    encoded = window_transcoder.encode(Window(90, "short"))
    assert encoded == b'{"_type_":"record:Window","_data_":{"seconds":90,"label":"short","_v":2}}'
    assert window_transcoder.decode(encoded) == Window(90, "short")


def test_records_of_version_one_store_no_version() -> None:
    """Everything stored before records had versions is version 1: their form must not change."""
    assert all(RecordAsDict(r).version == 1 for r in RECORDS)
    assert "_v" not in RecordAsDict(ServerSettings).encode(ServerSettings("h", 1, TransportSecurity.TLS, "u"))


# --- upcasting stored events ----------------------------------------------------------------

# A MessageReceived as mailroom stored it before bodies and header maps moved to blobs (class
# version 1, no "class_version" key): the whole InboundMail inline, text and headers included.
MESSAGE_RECEIVED_V1 = (
    '{"timestamp":{"_type_":"datetime_iso","_data_":"2026-11-30T13:53:40.098394+00:00"},'
    '"message_id":{"_type_":"uuid_hex","_data_":"43e029089af55c2c895625c841100717"},'
    '"mailbox_id":{"_type_":"uuid_hex","_data_":"2607b2ee8bbb481aba69aeb47a20c7b9"},'
    '"mail":{"_type_":"record:InboundMail","_data_":{"message_id":"q1@customer.example",'
    '"source":"imap:INBOX:1700000000:1","from_address":"dora@customer.example","from_name":"Dora Customer",'
    '"to":["help@example.org"],"cc":[],"subject":"Invoice 1042 is wrong",'
    '"date":{"_type_":"datetime_iso","_data_":"2026-11-26T09:30:00+00:00"},'
    '"text":"Hello,\\n\\nthe invoice total is wrong.\\n",'
    '"html_blob":"c0ca920cb6dd2023a30bfdd703323e5ea0118fb80b880af433b4775ae6869d86",'
    '"raw_blob":"b12f50cf510156fc7ef907120e7c8330f9ae0a464566d89e89b6c7a3ffb9807d","size":655,'
    '"in_reply_to":[],"references":[],"attachments":[],'
    '"headers":{"from":"Dora Customer <dora@customer.example>","subject":"Invoice 1042 is wrong",'
    '"x-priority":"1"},"markers":[]}}}'
)


def stored_event_mapper() -> Mapper[UUID]:
    """The mapper as the application builds it (eventsourcing's transcodings, then mailroom's, and
    the sealing mapper's: without a keyring, sealed personal data reads as erased)."""
    transcoder = JSONTranscoder()
    for transcoding in (UUIDAsHex(), DatetimeAsISO()):
        transcoder.register(transcoding)
    register_all(transcoder)
    return SealingMapper(transcoder)


@pytest.fixture
def mapper() -> Mapper[UUID]:
    return stored_event_mapper()


def test_a_v1_message_received_is_read_with_its_text_and_headers_moved(mapper: Mapper[UUID]) -> None:
    conversation_id = UUID("9f91ac58-c16d-5250-bf53-e3099fc301c4")
    stored = StoredEvent(originator_id=conversation_id, originator_version=2,
                         topic="mailroom:Conversation.MessageReceived", state=MESSAGE_RECEIVED_V1.encode())
    event: Any = mapper.to_domain_event(stored)
    assert type(event) is Conversation.MessageReceived
    mail = event.mail
    assert type(mail) is ReceivedMail
    assert (mail.message_id, mail.subject, mail.from_address, mail.size) == (
        "q1@customer.example", "Invoice 1042 is wrong", "dora@customer.example", 655)
    # moved: no blob exists for them, so they stay inline, where readers fall back to
    assert (mail.text_blob, mail.headers_blob) == (None, None)
    assert mail.inline_text == "Hello,\n\nthe invoice total is wrong.\n"
    assert mail.blob_keys() == []
    assert mail.text_from({}) == "Hello,\n\nthe invoice total is wrong.\n"
    assert mail.headers_from({})["x-priority"] == "1"
    assert event.message_id == UUID("43e02908-9af5-5c2c-8956-25c841100717")
    # and it still applies to the aggregate
    opened = Conversation(mailbox_id=event.mailbox_id, customer_email="dora@customer.example",
                          subject="Invoice 1042 is wrong", ref=conversation_ref("q1@customer.example"))
    assert opened.id == conversation_id
    event.mutate(opened)
    assert (opened.message_count, opened.last_message_at) == (1, mail.date)


def test_a_new_message_received_stores_no_text_or_headers(mapper: Mapper[UUID]) -> None:
    mail = InboundMail(
        message_id="m@x", source="pop3:1", from_address="a@x", from_name=None, to=["b@x"], cc=[], subject="S",
        date=datetime(2026, 1, 1, tzinfo=UTC), text="secret body " * 400, html_blob=None, raw_blob="r" * 64,
        size=6000, headers={"subject": "S", "x-secret": "header value"})
    conversation = Conversation(mailbox_id=UUID(int=1), customer_email="a@x", subject="S", ref="ABCDEFGH")
    conversation.receive(UUID(int=2), UUID(int=1), mail.received())
    event = conversation.collect_events()[-1]
    stored = mapper.to_stored_event(event)
    assert b"secret body" not in stored.state and b"x-secret" not in stored.state
    assert b'"class_version":2' in stored.state
    back: Any = mapper.to_domain_event(stored)
    assert back.mail == mail.received()
    blobs = {content_key(mail.text_data()): mail.text_data(), content_key(mail.headers_data()): mail.headers_data()}
    assert sorted(back.mail.blob_keys()) == sorted(blobs)
    assert back.mail.text_from(blobs) == mail.text
    assert back.mail.headers_from(blobs) == mail.headers
    assert (back.mail.text_from({}), back.mail.headers_from({})) == ("", {})  # blobs erased


def test_a_v1_inbound_key_is_read_without_what_tells_mails_apart(mapper: Mapper[UUID]) -> None:
    state = ('{"timestamp":{"_type_":"datetime_iso","_data_":"2026-11-30T13:53:40.098563+00:00"},'
             '"originator_topic":"mailroom:InboundKey","key":"q1@customer.example",'
             '"conversation_id":{"_type_":"uuid_hex","_data_":"9f91ac58c16d5250bf53e3099fc301c4"},'
             '"message_id":{"_type_":"uuid_hex","_data_":"43e029089af55c2c895625c841100717"}}')
    event: Any = mapper.to_domain_event(StoredEvent(
        originator_id=InboundKey.create_id("q1@customer.example"), originator_version=1,
        topic="mailroom:InboundKey.Created", state=state.encode()))
    key = event.mutate(None)
    assert isinstance(key, InboundKey)
    assert (key.key, key.raw_blob, key.written) == ("q1@customer.example", None, None)
