"""/metrics in the Prometheus text format: request counts, log head and view positions."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from api.processes.outbox import OutboxSender
from api.services import Services


class StoreCollector(Collector):
    """Read at scrape time, so every process reports the shared truth."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        projections = self.services.projections
        head = projections.head()
        yield GaugeMetricFamily("mailroom_event_log_head", "Position of the newest event in the log", head)
        positions = GaugeMetricFamily("mailroom_projection_position", "Last event applied, per view", labels=["view"])
        lag = GaugeMetricFamily("mailroom_projection_lag", "Events not yet applied, per view", labels=["view"])
        for view, position in projections.positions().items():
            positions.add_metric([view], position)
            lag.add_metric([view], max(head - position, 0))
        yield positions
        yield lag
        followers = self.services.followers()
        stored = GaugeMetricFamily("mailroom_follower_position", "Stored position, per log follower (views and "
                                   "processes)", labels=["follower"])
        failures = GaugeMetricFamily("mailroom_follower_failures", "Consecutive failed batches of a follower in "
                                     "this process (0 when healthy)", labels=["follower"])
        for follower in followers:
            stored.add_metric([follower.name], follower.consumer.stored_position())
            failures.add_metric([follower.name], follower.health.failures)
        yield stored
        yield failures
        yield from self.outbox()

    def outbox(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        """Replies waiting, and delivered / retried / failed so far, per mailbox (by id: never an address)."""
        sender = self.services.outbox.consumer
        assert isinstance(sender, OutboxSender)
        depth = GaugeMetricFamily("mailroom_outbox_depth", "Replies queued and not yet sent or failed, per mailbox",
                                  labels=["mailbox_id"])
        for mailbox_id, waiting in sender.depth().items():
            depth.add_metric([mailbox_id], waiting)
        yield depth
        totals = {what: CounterMetricFamily(f"mailroom_outbox_{what}", help_text, labels=["mailbox_id"])
                  for what, help_text in (("sent", "Replies delivered, per mailbox"),
                                          ("retried", "Delivery attempts that failed temporarily, per mailbox"),
                                          ("failed", "Replies that failed for good (5xx, bounced, too old), per "
                                                     "mailbox"))}
        for row in sender.totals():
            for what, family in totals.items():
                family.add_metric([str(row["mailbox_id"])], int(row[what]))
        yield from totals.values()


class Metrics:
    def __init__(self, services: Services) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(StoreCollector(services))
        self.requests = Counter(
            "mailroom_graphql_requests", "GraphQL requests by HTTP status", ["status"], registry=self.registry
        )
