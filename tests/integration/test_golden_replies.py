"""The replies log (issue 10) replays forever: every step of the outbox, read back into the
reply aggregates, the conversation's messages, the outbox and the last handler."""

from __future__ import annotations

import pytest

from api.bootstrap import Services
from domain.reply import FAILED, SENT, Reply
from tests.integration.test_golden_replay import load_golden_log


@pytest.mark.parametrize("name", ["golden_events_replies_v1.jsonl"])
def test_replies_log_loads_every_reply_and_every_view_takes_it_in(services: Services, name: str) -> None:
    events = load_golden_log(services, name)
    replies = {e.originator_id for e in events if e.topic == "mailroom:Reply.Queued"}
    loaded = [services.app.find(reply_id) for reply_id in replies]
    assert all(isinstance(r, Reply) for r in loaded)
    by_subject = sorted((r.mail.message_id.split(".")[1], r.status, r.attempt) for r in loaded)
    assert by_subject == [("golden1", FAILED, 1), ("golden2", FAILED, 2), ("golden3", SENT, 1)]
    bounced = next(r for r in loaded if "golden1" in r.mail.message_id)
    assert bounced.reason is not None and bounced.reason.startswith("550 5.1.1")
    unconfirmed = next(r for r in loaded if "golden3" in r.mail.message_id)
    assert unconfirmed.reason is not None and "never sent again" in unconfirmed.reason

    services.projections.wait_for(len(events))
    assert services.outbox.wait_for(len(events))
    conversation_id = bounced.conversation_id
    messages = services.conversations.messages(conversation_id)
    assert [(m["direction"], m["delivery_status"]) for m in messages] == [
        ("OUTBOUND", "FAILED"), ("OUTBOUND", "FAILED"), ("OUTBOUND", "SENT")]
    assert services.database.query("SELECT COUNT(*) AS n FROM rm_outbox")[0]["n"] == 0
    totals = services.database.query("SELECT sent, retried, failed FROM rm_outbox_totals")
    assert [(t["sent"], t["retried"], t["failed"]) for t in totals] == [(2, 1, 2)]
    handler = services.conversations.last_handler("dora@customer.example")
    assert handler == str(bounced.author_id)
