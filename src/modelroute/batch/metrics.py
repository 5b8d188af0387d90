"""Batch metrics, on the sidecar's own Prometheus registry (labels from fixed sets only)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter


class BatchMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = registry or CollectorRegistry()
        self.evictions = Counter("modelroute_batch_evictions", "Files or finished batches dropped from the sidecar's memory to stay "
                                 "within its caps.", ["store"], registry=r)
        self.recorded = Counter("modelroute_batches_recorded", "Batches whose cost was recorded (metrics and budgets) when the "
                                "provider finished them.", ["kind"], registry=r)
        self.polls = Counter("modelroute_batch_polls", "Polls of provider batches by the background poller, by result.",
                             ["result"], registry=r)

    def evicted(self, store: str) -> None:
        self.evictions.labels(store).inc()
