"""The relay's Prometheus metrics (registered in the app's registry, beside the HTTP ones)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class RelayMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.leader = Gauge(
            "syncd_outbox_relay_leader",
            "1 while this replica's relay holds the leader lock and publishes",
            registry=registry,
        )
        self.published = Counter(
            "syncd_outbox_published", "Outbox messages confirmed and deleted", registry=registry
        )
        self.confirm = Histogram(
            "syncd_outbox_confirm_seconds",
            "Publish to last confirm of one relay round",
            buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30),
            registry=registry,
        )
