"""Rate-limit metrics, on the sidecar's own Prometheus registry.

Labels stay bounded: models come from the policy, ``limit`` is rpm, tpm, itpm or otpm, ``source``
says which view had no room (local, shared, provider, reserved). Children are looked up once
(``labels()`` takes a lock).
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge


class RateLimitMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.remaining = Gauge("modelroute_provider_ratelimit_remaining",
                               "Units left as the provider last reported them (x-ratelimit-remaining-*, anthropic-ratelimit-*-remaining).",
                               ["model", "limit"], registry=r)
        self.limit = Gauge("modelroute_provider_ratelimit_limit", "The limit as the provider last reported it.",
                           ["model", "limit"], registry=r)
        self.share = Gauge("modelroute_rate_limit_share",
                           "This sidecar's estimated share of the key's traffic (without a shared store).", ["model", "limit"], registry=r)
        self.skips = Counter("modelroute_rate_limit_skips", "Candidates skipped because a bucket for them had no room.",
                             ["model", "limit", "source"], registry=r)
        self.throttled = Counter("modelroute_rate_limit_429s",
                                 "Upstream 429s avoided (a saturated model passed over before any call) and suffered (the provider answered 429).",
                                 ["model", "outcome"], registry=r)
        self.fail_open = Counter("modelroute_rate_limit_fail_open",
                                 "Attempts decided by this sidecar's own view because the shared store was away.", ["model"], registry=r)
        self.degraded = Gauge("modelroute_rate_limit_store_degraded", "1 while the shared rate-limit store is unreachable.",
                              ["store"], registry=r)
        self.store_errors = Counter("modelroute_rate_limit_store_errors", "Rate-limit store calls that failed.", ["store"], registry=r)
        self._children: dict[tuple[str, ...], Any] = {}

    def _child(self, metric: Any, *labels: str) -> Any:
        ident = (metric._name, *labels)
        child = self._children.get(ident)
        if child is None:
            child = self._children[ident] = metric.labels(*labels)
        return child

    def skipped(self, model: str, limit: str, source: str) -> None:
        self._child(self.skips, model, limit, source).inc()
        self._child(self.throttled, model, "avoided").inc()

    def suffered(self, model: str) -> None:
        self._child(self.throttled, model, "suffered").inc()

    def reported(self, model: str, limit: str, remaining: float, of: float | None, share: float | None) -> None:
        self._child(self.remaining, model, limit).set(remaining)
        if of is not None:
            self._child(self.limit, model, limit).set(of)
        if share is not None:
            self._child(self.share, model, limit).set(share)

    def failed_open(self, model: str) -> None:
        self._child(self.fail_open, model).inc()

    def store(self, up: bool) -> None:
        if not up:
            self._child(self.store_errors, "redis").inc()
        self._child(self.degraded, "redis").set(0 if up else 1)
