"""Views (and the assigner) dispatch events by class: every handler key is an event class the
log records (a stale or base class would never match `type(event)`), every handled class has
an event in the golden logs (so the golden replays exercise every handler), events decoded
from the golden logs (old versions upcast) land on their handlers, and an event no handler
is registered for is ignored."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast
from uuid import UUID

import pytest
from eventsourcing.persistence import DatetimeAsISO, JSONTranscoder, Mapper, StoredEvent, UUIDAsHex
from eventsourcing.utils import resolve_topic

from adapters.database import Tx
from domain import assigner, events
from domain.conversation import ADMIN, Conversation
from domain.transcodings import register_all
from domain.values import AssignmentStrategy, ConversationStatus
from projections.conversations import CONVERSATIONS, Conversations
from projections.counts import COUNTED, Counts
from projections.directory import Directory
from projections.tables import Rows
from projections.view import View, dispatch, on
from projections.workload import WORKLOAD, Workload
from tests.unit.test_transcodings import domain_event_classes

DATA = Path(__file__).resolve().parent.parent / "data"
GOLDEN_LOGS = sorted(DATA.glob("golden_events*.jsonl"))
VIEWS: list[View] = [Directory(), Conversations(), Workload("UTC"), Counts()]
HANDLED: dict[str, Mapping[Any, Any]] = {  # by name: event class -> handler
    **{view.name: view.handlers for view in VIEWS}, "assigner": assigner._HANDLERS}


def recorded_event_classes() -> set[type]:
    """Every event class the log records: all but the bases of named creation events."""
    classes = domain_event_classes()
    return {c for c in classes if not any(o is not c and issubclass(o, c) for o in classes)}


def golden_events() -> list[StoredEvent]:
    return [StoredEvent(originator_id=UUID(e["originator_id"]), originator_version=e["originator_version"],
                        topic=e["topic"], state=e["state"].encode())
            for log in GOLDEN_LOGS for e in map(json.loads, log.read_text().splitlines())]


def mapper() -> Mapper[UUID]:
    transcoder = JSONTranscoder()
    for transcoding in (UUIDAsHex(), DatetimeAsISO()):
        transcoder.register(transcoding)
    register_all(transcoder)
    return Mapper(transcoder)


class Untouched:
    """Rows that fail when used: an ignored event must not touch them."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"rows.{name} used for an event no handler is registered for")


@pytest.mark.parametrize("name", HANDLED)
def test_handler_keys_are_recorded_event_classes(name: str) -> None:
    recorded = recorded_event_classes()
    for cls in HANDLED[name]:
        assert cls in recorded, f"{name} handles {cls!r}, which is not an event class the log records"
        assert resolve_topic(cls.TOPIC) is cls  # what the mapper makes of a stored event of this topic


def test_the_catalogue_names_recorded_event_classes() -> None:
    recorded = recorded_event_classes()
    named = {name: getattr(events, name) for name, kind in vars(events)["__annotations__"].items()
             if str(kind).startswith("type[")}
    assert len(named) >= 25
    for name, cls in named.items():
        assert cls in recorded, name


@pytest.mark.parametrize("name", HANDLED)
def test_every_handled_class_has_golden_events(name: str) -> None:
    golden = {e.topic for e in golden_events()}
    missing = sorted(cls.TOPIC for cls in HANDLED[name] if cls.TOPIC not in golden)
    assert not missing, f"{name} handles events the golden logs lack: {missing}"


def test_decoded_golden_events_land_on_their_handlers() -> None:
    """The mapper upcasts (MessageReceived v1 -> v2, InboundKey v1 -> v2) into the current class,
    so an old event is dispatched like a new one."""
    m = mapper()
    decoded = [m.to_domain_event(stored) for stored in golden_events()]
    received = [e for e in decoded if type(e) is Conversation.MessageReceived]
    assert {e.mail.text_blob is None for e in received} == {True, False}  # v1 (upcast) and v2 both there
    for view in VIEWS:
        hit = {type(e) for e in decoded if type(e) in view.handlers}
        assert hit == set(view.handlers), view.name


@pytest.mark.parametrize("view", VIEWS, ids=lambda v: v.name)
def test_an_event_without_a_handler_is_ignored(view: View) -> None:
    rows = cast(Rows, Untouched())
    conversation = Conversation(UUID(int=1), "c@customer.example", "Hello", "ref-1")
    conversation.leave_unrouted("no rule covers the mailbox", 3)  # recorded, but no view shows it
    left_unrouted = conversation.collect_events()[-1]
    assert type(left_unrouted) not in view.handlers
    for event in (object(), left_unrouted, Conversation.Event(
            originator_id=UUID(int=1), originator_version=9, timestamp=datetime.now(UTC))):
        view.apply(event, rows)


def test_a_conversation_history_reaches_every_conversation_view() -> None:
    """Events as the aggregate makes them (classes generated by @event included) dispatch by class."""
    agent, rule, group = UUID(int=7), UUID(int=8), UUID(int=9)
    conversation = Conversation(UUID(int=1), "c@customer.example", "Hello", "ref-1")
    conversation.route(rule, [group], 3)
    conversation.assign(agent, None, AssignmentStrategy.ROUND_ROBIN, "first", "assigner", 3, rule)
    conversation.close(agent)
    conversation.reopen(agent)
    conversation.assign(agent, None, None, "by hand", ADMIN, None, None)
    history = conversation.collect_events()
    rows = Rows(cast(Tx, None), fresh=True)  # fresh: nothing is read from a database
    for view in (Conversations(), Workload("UTC"), Counts()):
        for event in history:
            view.apply(event, rows)
    key = str(conversation.id)
    [shown] = [r for r in rows.cached(CONVERSATIONS) if r["id"] == key]
    assert (shown["status"], shown["assignee_id"], shown["assignment_count"]) == (
        ConversationStatus.OPEN.value, str(agent), 2)
    [counted] = rows.cached(COUNTED)
    assert (counted["status"], counted["routed"]) == (ConversationStatus.OPEN.value, 1)
    [load] = rows.cached(WORKLOAD)
    assert (load["agent_id"], load["active"]) == (str(agent), 1)


def test_a_class_handled_twice_is_refused() -> None:
    def noop(e: events.Event, rows: Rows) -> None:
        pass

    with pytest.raises(ValueError, match=r"two handlers for Conversation\.Closed"):
        dispatch(on(events.CLOSED, noop), on(events.CLOSED, noop))
