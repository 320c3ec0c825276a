"""The sidebar log (issue 12) replays forever: sources and pushed records, read back into their
aggregates and the sidebar view."""

from __future__ import annotations

import json

from api.bootstrap import Services
from domain.sidebar import SidebarRecord, record_id
from tests.integration.test_golden_replay import load_golden_log


def test_sidebar_log_loads_sources_and_records_into_the_view(services: Services) -> None:
    events = load_golden_log(services, "golden_events_sidebar_v1.jsonl")
    services.projections.wait_for(len(events))
    [orders] = services.sidebar_queries.sources()  # the HTTP source was deleted
    assert (orders["title"], orders["kind"], orders["match_by"], orders["position"]) == (
        "Orders", "RECORDS", "CUSTOMER_EMAIL", 1)
    assert json.loads(orders["fields"]) == [{"key": "status", "label": "Status"}, {"key": "total", "label": "Total"}]
    record = services.app.find(record_id("order", "A-1042"))
    assert isinstance(record, SidebarRecord) and not record.deleted
    assert record.data.title == "Order A-1042 (reopened)" and record.data.fields == {}
    found = services.sidebar_queries.records("order", "CUSTOMER_EMAIL", ["dora@customer.example"])
    assert [r["title"] for r in found["dora@customer.example"]] == ["Order A-1042 (reopened)"]
