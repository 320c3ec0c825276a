"""The live-updates hub (api/live.py) in process, views followed as when serving: changes in log
order with the conversation's row, one reader for every subscriber, a subscriber that falls
behind dropped (its queue emptied), afterPosition replayed from the log and handed over to the
live queue without gap or repeat; and the delay from a commit to a subscriber's receipt."""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from adapters.inbound import arrivals
from api import live
from api.live import Change, ChangeKind, Dropped, LiveHub, feed
from api.processes.workers import Workers
from api.services import Services
from domain.conversation import Conversation
from domain.mail import conversation_ref, message_key
from tests.integration.intake_support import mail

MAILBOX = uuid.uuid4()


@pytest.fixture
def hub(services: Services) -> Iterator[LiveHub]:
    workers = Workers(services, processes=False)  # the views and the log watch, as an API replica
    workers.start()
    made = LiveHub(services)
    made.start()
    yield made
    made.stop()
    workers.stop()


def take_in(services: Services, n: int) -> str:
    """One new mail (a conversation opened, a message received); returns the conversation's id."""
    message_id = f"live{n}-{uuid.uuid4().hex[:8]}@customer.example"
    raw = mail(subject=f"Live {n}", sender=f"c{n}@customer.example", message_id=f"<{message_id}>")
    services.app.take_in(MAILBOX, arrivals([(f"imap:INBOX:{n}:{message_id}", raw)], "support@example.com",
                                           services.blobs))
    return str(Conversation.create_id(conversation_ref(message_key(message_id))))


async def collect(changes: AsyncIterator[Change | None], count: int, timeout: float = 10.0) -> list[Change]:
    out: list[Change] = []

    async def run() -> None:
        async for change in changes:
            if change is not None:
                out.append(change)
                if len(out) == count:
                    return

    await asyncio.wait_for(run(), timeout)
    return out


def key(change: Change) -> tuple[int, ChangeKind | None, str]:
    return change.position, change.kind, change.id


def test_changes_come_in_log_order_with_their_rows_to_every_subscriber(services: Services, hub: LiveHub) -> None:
    async def main() -> tuple[list[Change], list[Change], list[str]]:
        one = feed(hub, "conversation", None)
        two = feed(hub, "conversation", None)
        first = asyncio.ensure_future(collect(one, 20))
        second = asyncio.ensure_future(collect(two, 20))
        await asyncio.sleep(0.1)  # both subscribed
        ids = [await asyncio.to_thread(take_in, services, n) for n in range(10)]
        return await first, await second, ids

    first, second, ids = asyncio.run(main())
    assert [key(c) for c in first] == [key(c) for c in second]
    positions = [c.position for c in first]
    assert positions == sorted(set(positions))
    assert [(c.kind, c.id) for c in first] == [
        (kind, i) for i in ids for kind in (ChangeKind.OPENED, ChangeKind.MESSAGE_RECEIVED)]
    received = [c for c in first if c.kind is ChangeKind.MESSAGE_RECEIVED]
    assert all(c.row is not None and c.row["id"] == c.id and c.row["message_count"] == 1 for c in received)
    assert hub.describe()["subscribers"] == 0  # both ended: unsubscribed


def test_a_subscriber_that_falls_behind_is_dropped_and_its_queue_emptied(services: Services) -> None:
    workers = Workers(services, processes=False)
    workers.start()
    small = LiveHub(services, queue_limit=5)
    small.start()
    try:
        async def main() -> tuple[list[Change], type[Exception] | None, live.Subscriber]:
            slow = small.subscribe("conversation")  # never reads
            reader = feed(small, "conversation", None)
            fine: list[Change] = []
            got = asyncio.ensure_future(collect(reader, 2))
            await asyncio.sleep(0.05)  # subscribed
            for n in range(6):  # the reader takes each mail's two changes before the next comes
                await asyncio.to_thread(take_in, services, n)
                fine += await got
                got = asyncio.ensure_future(collect(reader, 2))
            got.cancel()
            raised: type[Exception] | None = None
            try:
                await slow.take(0.1)
            except Dropped:
                raised = Dropped
            return fine, raised, slow

        fine, raised, slow = asyncio.run(main())
    finally:
        small.stop()
        workers.stop()
    assert len(fine) == 12  # the reader kept up: every change (its queue never held 5)
    assert raised is Dropped and not slow.items
    assert small.describe()["dropped"] == 1


def test_after_position_replays_the_log_then_hands_over_without_gap_or_repeat(
    services: Services, hub: LiveHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    replay = hub.reader.replay
    replaying = {"batches": 0}

    def slow_replay(after: int, stop: int, stopping: Any) -> tuple[int, list[Change]]:
        replaying["batches"] += 1
        time.sleep(0.3)  # mail keeps coming meanwhile: it waits in the live queue
        return replay(after, stop, stopping)

    async def main() -> tuple[list[Change], list[Change]]:
        witness = feed(hub, "conversation", None)
        seen = asyncio.ensure_future(collect(witness, 24))
        await asyncio.sleep(0.05)
        for n in range(6):  # before the resuming subscriber: 12 changes
            await asyncio.to_thread(take_in, services, n)
        while hub.position < services.projections.head():
            await asyncio.sleep(0.01)
        monkeypatch.setattr(hub.reader, "replay", slow_replay)
        early = await asyncio.to_thread(lambda: [c for c in hub.reader.replay(0, hub.position, hub.stopping)[1]])
        after = early[3].position  # resumes after the 4th change: 8 missed before it subscribes
        resumed = feed(hub, "conversation", after)
        got = asyncio.ensure_future(collect(resumed, 8 + 12))
        await asyncio.sleep(0.05)
        for n in range(6, 12):  # during the replay, and after it: 12 more
            await asyncio.to_thread(take_in, services, n)
        return await seen, await got

    everything, resumed = asyncio.run(main())
    assert replaying["batches"] >= 1
    expected = [key(c) for c in everything[4:]]
    assert [key(c) for c in resumed] == expected


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_delay_from_commit_to_subscriber(services: Services, hub: LiveHub) -> None:
    """~200 changes (100 mails, one at a time), on SQLite: from the commit's return to the
    subscriber's receipt of the conversation's MESSAGE_RECEIVED (the row then read from the view)."""
    committed: dict[str, float] = {}
    received: dict[str, float] = {}

    async def main() -> None:
        changes = feed(hub, "conversation", None)

        async def receive() -> None:
            async for change in changes:
                if change is not None and change.kind is ChangeKind.MESSAGE_RECEIVED:
                    received[change.id] = time.perf_counter()
                    if len(received) == 100:
                        return

        receiving = asyncio.ensure_future(receive())
        await asyncio.sleep(0.05)

        def send() -> None:
            for n in range(100):
                message_id = f"delay{n}-{uuid.uuid4().hex[:8]}@customer.example"
                raw = mail(subject=f"Delay {n}", sender=f"d{n}@customer.example", message_id=f"<{message_id}>")
                batch = arrivals([(f"imap:INBOX:{n}:{message_id}", raw)], "support@example.com", services.blobs)
                conversation = str(Conversation.create_id(conversation_ref(message_key(message_id))))
                services.app.take_in(MAILBOX, batch)
                committed[conversation] = time.perf_counter()
                time.sleep(0.01)

        await asyncio.to_thread(send)
        await asyncio.wait_for(receiving, 30)

    asyncio.run(main())
    ordered = sorted(max(received[i] - at, 0.0) for i, at in committed.items())
    p50, p99 = statistics.median(ordered), ordered[int(len(ordered) * 0.99) - 1]
    print(f"\nlive delay over {len(ordered) * 2} changes: p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms")
    assert p99 < 1.0


def test_a_slow_socket_is_closed_with_1013_and_resumes_with_after_position(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Served in process (uvicorn, a real socket): sending each change takes long here, so the
    subscriber's queue (3) overflows; its socket is closed with 1013, and a new one resumes."""
    import json
    import socket
    import threading

    import uvicorn
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect
    from websockets.typing import Subprotocol

    from api.graphql import subscriptions
    from api.main import create_app
    from domain.values import Role

    live.install(services, LiveHub(services, queue_limit=3))  # the hub the app then starts and serves
    app = create_app(services, run_workers=False)
    fresh = subscriptions.fresh
    def slowly(info: Any) -> None:  # a slow sender (blocking the loop: the hub's thread goes on)
        time.sleep(0.2)
        fresh(info)

    monkeypatch.setattr(subscriptions, "fresh", slowly)
    token, _ = services.app.create_api_token("admin", Role.ADMIN, None)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.02)
        url = f"ws://127.0.0.1:{port}/graphql"
        query = "subscription($a: Int) { conversationChanges(afterPosition: $a) { position kind } }"

        def subscribe(after: int | None) -> Any:
            ws = connect(url, subprotocols=[Subprotocol("graphql-transport-ws")], open_timeout=5).__enter__()
            ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}))
            assert json.loads(ws.recv(timeout=5))["type"] == "connection_ack"
            ws.send(json.dumps({"id": "1", "type": "subscribe",
                                "payload": {"query": query, "variables": {"a": after}}}))
            return ws

        slow = subscribe(None)
        time.sleep(0.3)
        for n in range(5):  # 10 changes, one hub batch each mail
            take_in(services, n)
        got: list[dict[str, Any]] = []
        code = None
        try:
            while True:
                got.append(json.loads(slow.recv(timeout=10))["payload"]["data"]["conversationChanges"])
        except ConnectionClosed as closed:
            code = closed.rcvd.code if closed.rcvd is not None else None
        assert code == 1013 and len(got) < 10
        monkeypatch.setattr(subscriptions, "fresh", fresh)
        last = got[-1]["position"] if got else 0
        resumed = subscribe(last)
        rest = [json.loads(resumed.recv(timeout=10))["payload"]["data"]["conversationChanges"]
                for _ in range(10 - len(got))]
        positions = [c["position"] for c in got + rest]
        assert positions == sorted(set(positions)) and len(positions) == 10
        resumed.close()
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_reply_changes_name_their_conversation(services: Services, hub: LiveHub) -> None:
    """A reply's events name the reply: the change names its conversation (from the reply's
    first event when the reader has not seen it); claims are no change, a failure is."""
    from datetime import UTC, datetime

    from api.live import LogReader
    from domain.reply import OutboundMail

    async def main() -> tuple[str, list[Change]]:
        changes = feed(hub, "conversation", None)
        got = asyncio.ensure_future(collect(changes, 4))
        await asyncio.sleep(0.05)
        conversation = await asyncio.to_thread(take_in, services, 1)

        def reply() -> None:
            now = datetime.now(UTC)
            out = OutboundMail(message_id=f"r-{uuid.uuid4().hex}@support.example", from_address="support@example.com",
                               from_name="Support", to=["c1@customer.example"], cc=[], subject="Re: Live 1",
                               date=now, text_blob="t", html_blob="h", raw_blob="r", size=1)
            written = services.app.queue_reply(uuid.UUID(conversation), None, out)
            delivery = services.app.claim_reply(written.id, "worker", now)
            assert delivery is not None
            services.app.record_failure(delivery, "worker", "550 no such user", True, now)

        await asyncio.to_thread(reply)
        return conversation, await got

    conversation, got = asyncio.run(main())
    assert [(c.kind, c.id) for c in got] == [
        (ChangeKind.OPENED, conversation), (ChangeKind.MESSAGE_RECEIVED, conversation),
        (ChangeKind.REPLY_QUEUED, conversation), (ChangeKind.REPLY_FAILED, conversation)]
    failed = got[-1].position
    [notification] = services.app.recorder.select_notifications(start=failed, limit=1, stop=failed)
    assert [(c.kind, c.id) for c in LogReader(services).changes([notification])] == [
        (ChangeKind.REPLY_FAILED, conversation)]
