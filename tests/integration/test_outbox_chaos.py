"""The outbox under SIGKILL, on both backends: two real `mailroom worker` processes over one
database deliver replies to a real SMTP server (STARTTLS + AUTH, in this process) while the one
delivering is killed at bad moments and restarted, again and again:

a. after the final dot, while the server holds its answer (it has the message): the killed
   sender had recorded the hand-over, so the other worker settles the reply as SENT
   (unconfirmed) and it never goes again;
b. with the whole message sent but not the final dot (the server stops before answering DATA
   with 354 until the test holds the database's write lock; the sender then waits in
   `record_handover`): nothing was delivered, so the reply is deferred and sent again, once;
c. at random moments while replies stream (the server slowed down a little).

At the end every reply is SENT or FAILED, none stuck QUEUED, and the server got each reply's
Message-ID at most once, exactly once for every reply SENT with a confirmed answer.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from uuid import UUID

import pytest

from api.services import Services
from domain.reply import FAILED, QUEUED, SENT
from tests.integration.outbox_chaos_support import (
    ChaosSink,
    Kill,
    Outbox,
    WriteBlock,
    conversations,
    message_ids,
    pid_of,
    stage,
    step_reasons,
    workers,
)

UP = 2.0  # seconds a (re)started worker is given to boot before it must be able to take over
UNCONFIRMED = "the sender stopped after handing the message to the server"
NOT_HANDED = "the sender stopped before handing the message over"


@pytest.fixture
def sink() -> Iterator[ChaosSink]:
    with ChaosSink("STARTTLS", "mailroom@example.test", "smtp-secret") as running:
        yield running


@pytest.fixture
def services(make_services: Callable[..., Services], sink: ChaosSink, monkeypatch: pytest.MonkeyPatch) -> Services:
    monkeypatch.setenv("MAILROOM_EXTRA_CA_FILE", sink.ca_file)  # the workers trust the sink's certificate
    return make_services(verify_login=lambda *args: None)


def test_killed_senders_never_send_a_reply_twice_nor_leave_one_queued(
        services: Services, sink: ChaosSink, tmp_path: Path) -> None:
    outbox = Outbox(services, conversations(services, sink, 4))
    kills: list[Kill] = []
    held: list[UUID] = []  # scenario a's replies: handed over, then their sender killed
    cut: list[UUID] = []  # scenario b's: every byte but the final dot, then their sender killed

    with workers(2, tmp_path) as pool:

        def settled(ids: list[UUID] | None, seconds: float = 20.0) -> None:
            left = outbox.wait_settled(ids, seconds, pool.check_alive)
            assert not left, (f"still QUEUED: {[(r.id, r.attempt, r.claimed_by, r.reason) for r in left]}\n"
                              f"{pool.output()}")

        outbox.queue(2)  # both workers up and sending
        settled(None)
        pool.wait_until_up(UP)

        # a. killed after the final dot, the server holding its answer (it has the message)
        for _ in range(2):
            release = threading.Event()
            sink.hold_data_end(release, deliver_before_hold=True)
            ends = sink.data_ends
            batch = outbox.queue(3)
            sink.wait_for_data_ends(ends + 1, timeout=20)
            time.sleep(0.2)  # the sender's other transactions (up to 4 at once) go as far as they can
            pid, claims = outbox.in_flight()
            assert pid in pool.pids
            arrived = message_ids(sink)
            # Held: the server has the message (recorded at the dot), its answer never comes.
            held += [r.id for r in claims if arrived[outbox.message_id[r.id]]]
            kills.append(Kill("a", pid, [stage(r) for r in claims]))
            sink.hold_data_end(None)  # later dots are answered at once; those held stay held

            def survivor_settles(release: threading.Event = release, ids: tuple[UUID, ...] = tuple(
                    r.id for r in claims)) -> None:
                release.set()  # the killed sender's connections are gone: nothing left to hold
                settled(list(ids))  # by the other worker, before the killed one is back

            pool.kill_and_restart(pid, survivor_settles)
            settled(batch)
            again = {i: n for i, n in message_ids(sink).items() if n > 1}
            assert not again, f"sent again after the hand-over: {again}"
            pool.wait_until_up(UP)

        # b. killed with every byte of the message sent but the final dot
        for _ in range(2):
            block = WriteBlock(services, os.environ["MAILROOM_DATABASE_URL"])
            queued, at_data = threading.Event(), threading.Event()

            def lock_before_354(block: WriteBlock = block, queued: threading.Event = queued,
                                at_data: threading.Event = at_data) -> None:
                queued.wait(20)  # the test's own writes first: the whole batch queued
                block.acquire()
                at_data.set()

            sink.before_data = lock_before_354
            ends = sink.data_ends
            try:
                batch = outbox.queue(3)
                queued.set()
                assert at_data.wait(20), "no DATA command"
                time.sleep(0.3)  # the sender gets 354, sends the message, waits to record the hand-over
                pid, claims = outbox.in_flight()  # reads pass the write lock
                assert pid in pool.pids
                assert not any(r.handed_over for r in claims) and sink.data_ends == ends, "a final dot went out"
                assert sink.open_connections >= 1
                cut += [r.id for r in claims]
                kills.append(Kill("b", pid, [stage(r) for r in claims]))
                pool.kill_and_restart(pid, block.release)
            finally:
                sink.before_data = None
                block.release()
            settled(batch)
            assert not {i: n for i, n in message_ids(sink).items() if n > 1}
            pool.wait_until_up(UP)

        # c. random kills of the sender while replies stream in (one every 80 ms)
        seed = int(os.environ.get("CHAOS_SEED", time.time_ns() % 10_000))
        rng = random.Random(seed)
        sink.delay_data_end(0.05)

        def stream_in() -> None:
            for _ in range(10):
                outbox.queue(1)
                time.sleep(0.08)

        stream = threading.Thread(target=stream_in)
        stream.start()
        try:
            for _ in range(3):
                time.sleep(rng.uniform(0.1, 0.5))
                live = [r for r in outbox.claimed() if pid_of(r.claimed_by) in pool.pids]
                # No live claim: between two catch-ups, or a takeover; kill either worker then.
                pid = pid_of(live[0].claimed_by) if live else rng.choice(pool.pids)
                kills.append(Kill("c", pid, [stage(r) for r in live if pid_of(r.claimed_by) == pid]))
                pool.kill_and_restart(pid)
        finally:
            stream.join()
        sink.delay_data_end(0)

        # The end: nothing stuck, nothing twice.
        settled(None, 60.0)

    replies = outbox.replies()
    sent = message_ids(sink)
    unconfirmed = sum(r.reason is not None for r in replies.values() if r.status == SENT)
    print(f"\nseed {seed}; kills:", *[(k.scenario, k.stages) for k in kills],
          f"\nreplies: {len(replies)}, accepted by the sink: {sum(sent.values())}, unconfirmed: {unconfirmed}")
    assert set(sent) <= set(outbox.message_id.values()), "the sink got a message the test never queued"
    twice = {m: n for m, n in sent.items() if n > 1}
    assert not twice, f"sent more than once: {twice}"
    for reply_id, reply in replies.items():
        assert reply.status in (SENT, FAILED), (reply_id, reply.status)
        count = sent[outbox.message_id[reply_id]]
        if reply.status == SENT and reply.reason is None:  # a confirmed send: the server said 250
            assert count == 1, (reply_id, step_reasons(services, reply_id))
    for reply_id in held:  # a: settled by the other worker as sent, unconfirmed; the server has it once
        reply = replies[reply_id]
        assert reply.status == SENT and reply.reason is not None and reply.reason.startswith(UNCONFIRMED), \
            step_reasons(services, reply_id)
        assert sent[outbox.message_id[reply_id]] == 1
    for reply_id in cut:  # b: deferred (no hand-over), then sent once by a later attempt
        reply = replies[reply_id]
        steps = step_reasons(services, reply_id)
        assert reply.status == SENT and reply.reason is None and reply.attempt >= 2, steps
        assert any(name == "Deferred" and (why or "").startswith(NOT_HANDED) for name, why in steps), steps
        assert sent[outbox.message_id[reply_id]] == 1
    assert all(r.status != QUEUED for r in replies.values())
    assert len(held) >= 2 and len(cut) >= 2, (held, cut)
