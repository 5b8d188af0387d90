"""Prometheus metrics of the sidecar, on a registry of its own (served on ``GET /metrics``).

Label sets stay small and bounded: policy, route, model (registry names), never request data.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_BY_ROUTE = ["policy", "route", "model"]


class Metrics:
    """Every metric the sidecar exports. One instance per app."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("modelroute_requests", "Requests answered, by outcome.", [*_BY_ROUTE, "status"], registry=r)
        self.tokens = Counter("modelroute_tokens", "Tokens used, by direction (input, output, cached_input).", [*_BY_ROUTE, "direction"], registry=r)
        self.cost = Counter("modelroute_cost_usd", "USD paid to providers.", _BY_ROUTE, registry=r)
        self.baseline_cost = Counter(
            "modelroute_baseline_cost_usd", "USD the same tokens would have cost on the policy's baseline model.", _BY_ROUTE, registry=r
        )
        self.duration = Histogram(
            "modelroute_request_duration_seconds", "Time from request to the end of the answer.", _BY_ROUTE, buckets=_LATENCY_BUCKETS, registry=r
        )
        self.ttft = Histogram(
            "modelroute_time_to_first_token_seconds", "Time from request to the first streamed chunk.", _BY_ROUTE, buckets=_LATENCY_BUCKETS, registry=r
        )
        self.attempts = Counter("modelroute_attempts", "Upstream attempts, by result.", ["policy", "model", "result"], registry=r)
        self.fallbacks = Counter(
            "modelroute_fallbacks", "Times a request moved on to the next model of its chain, by reason.", ["policy", "route", "model", "reason"], registry=r
        )
        self.escalations = Counter("modelroute_escalations", "Answers rejected by a cascade review.", ["policy", "route", "model"], registry=r)
        self.dropped = Counter("modelroute_translation_dropped", "Request parameters dropped in translation.", ["provider", "parameter"], registry=r)
        self.errors = Counter("modelroute_errors", "Requests answered with an error, by type.", ["type"], registry=r)
        self.reloads = Counter("modelroute_policy_reloads", "Policy loads, by result (applied, rejected).", ["result"], registry=r)
        self.policy_info = Gauge("modelroute_policy_info", "The active policy (value 1).", ["policy", "version"], registry=r)
        self.breaker_open = Gauge("modelroute_circuit_open", "1 while a model is cooled down.", ["model"], registry=r)

        self._series: dict[tuple[str, str, str], RouteSeries] = {}
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}

    def child(self, metric: Any, *labels: str) -> Any:
        """``metric.labels(*labels)``, looked up once per label set (label sets here are bounded)."""
        key = (id(metric), labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found

    def route(self, policy: str, route: str, model: str) -> RouteSeries:
        """The per-route series of one (policy, route, model), looked up once and then reused."""
        key = (policy, route, model)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = RouteSeries(self, key)
        return series

    def set_policy(self, name: str, version: str) -> None:
        self.policy_info.clear()
        self.policy_info.labels(name, version).set(1)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class RouteSeries:
    """The children of the per-route metrics for one label set (labels() is a locked lookup)."""

    __slots__ = ("input_tokens", "output_tokens", "cached_tokens", "cost", "baseline_cost", "duration", "ttft", "_requests", "_metrics", "_key")

    def __init__(self, metrics: Metrics, key: tuple[str, str, str]) -> None:
        self._metrics, self._key = metrics, key
        self.input_tokens = metrics.tokens.labels(*key, "input")
        self.output_tokens = metrics.tokens.labels(*key, "output")
        self.cached_tokens = metrics.tokens.labels(*key, "cached_input")
        self.cost = metrics.cost.labels(*key)
        self.baseline_cost = metrics.baseline_cost.labels(*key)
        self.duration = metrics.duration.labels(*key)
        self.ttft = metrics.ttft.labels(*key)
        self._requests: dict[str, Any] = {}

    def requests(self, status: str) -> Any:
        child = self._requests.get(status)
        if child is None:
            child = self._requests[status] = self._metrics.requests.labels(*self._key, status)
        return child
