"""Prometheus metrics of the sidecar, on a registry of its own (served on ``GET /metrics``).

Label sets stay small and bounded: policy, route, model (registry names), never request data.

The per-request series (requests, tokens, cost, baseline cost, latency and time to first token,
by policy, route and model) are plain accumulators, one :class:`RouteSeries` per label set, that
:class:`RouteCollector` turns into counter and histogram families when the registry is scraped:
every request updates them, so an update is an attribute increment, with no lock and no label
lookup. The event loop is the only writer; readers on other threads (the OTLP bridge) copy first.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_BY_ROUTE = ["policy", "route", "model"]


class Metrics:
    """Every metric the sidecar exports. One instance per app."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self._series: dict[tuple[str, str, str], RouteSeries] = {}
        r.register(RouteCollector(self._series))
        self.attempts = Counter("modelroute_attempts", "Upstream attempts, by result.", ["policy", "model", "result"], registry=r)
        self.fallbacks = Counter(
            "modelroute_fallbacks", "Times a request moved on to the next model of its chain, by reason.", ["policy", "route", "model", "reason"], registry=r
        )
        self.escalations = Counter("modelroute_escalations", "Answers rejected by a cascade review.", ["policy", "route", "model"], registry=r)
        self.dropped = Counter("modelroute_translation_dropped", "Request parameters dropped in translation.", ["provider", "parameter"], registry=r)
        self.errors = Counter("modelroute_errors", "Requests answered with an error, by type.", ["type"], registry=r)
        self.passthrough = Counter("modelroute_passthrough", "Requests passed, unrouted, to a provider, by path and status.",
                                   ["policy", "provider", "path", "status"], registry=r)
        self.reloads = Counter("modelroute_policy_reloads", "Policy loads, by result (applied, rejected).", ["result"], registry=r)
        self.policy_info = Gauge("modelroute_policy_info", "The active policy (value 1).", ["policy", "version"], registry=r)
        self.breaker_open = Gauge("modelroute_circuit_open", "1 while a model is cooled down.", ["model"], registry=r)

        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}

    def child(self, metric: Any, *labels: str) -> Any:
        """``metric.labels(*labels)``, looked up once per label set (label sets here are bounded)."""
        key = (id(metric), labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found

    def route(self, policy: str, route: str, model: str) -> RouteSeries:
        """The per-route series of one (policy, route, model), created on first use."""
        key = (policy, route, model)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = RouteSeries()
        return series

    def set_policy(self, name: str, version: str) -> None:
        self.policy_info.clear()
        self.policy_info.labels(name, version).set(1)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class Buckets:
    """A histogram's counts: ``counts[i]`` holds the values <= ``bounds[i]`` and above the bound
    before it; the last count is the +Inf bucket."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    def cumulative(self) -> list[tuple[str, float]]:
        """Prometheus buckets: (le, count of values <= le), ending with +Inf."""
        out, total = [], 0
        for bound, count in zip((*map(_le, self.bounds), "+Inf"), list(self.counts)):
            total += count
            out.append((bound, float(total)))
        return out


def _le(bound: float) -> str:
    return str(float(bound))


class RouteSeries:
    """What one (policy, route, model) has served so far."""

    __slots__ = ("requests", "input_tokens", "output_tokens", "cached_tokens", "cost", "baseline_cost", "duration", "ttft")

    def __init__(self) -> None:
        self.requests: dict[str, int] = {}  # by status
        self.input_tokens = self.output_tokens = self.cached_tokens = 0
        self.cost = self.baseline_cost = 0.0
        self.duration = Buckets(_LATENCY_BUCKETS)
        self.ttft = Buckets(_LATENCY_BUCKETS)

    def count(self, status: str) -> None:
        self.requests[status] = self.requests.get(status, 0) + 1


class RouteCollector:
    """The families of every :class:`RouteSeries`, built at scrape time."""

    def __init__(self, series: dict[tuple[str, str, str], RouteSeries]) -> None:
        self._series = series

    def describe(self) -> Iterator[Metric]:
        return iter(self._families())

    def collect(self) -> Iterator[Metric]:
        families = self._families()
        requests, tokens, cost, baseline = families[:4]
        duration, ttft = families[4:]
        for key, s in list(self._series.items()):
            labels = list(key)
            for status, n in list(s.requests.items()):
                requests.add_metric([*labels, status], float(n))  # floats, as prometheus_client's own
            for direction, n in (("input", s.input_tokens), ("output", s.output_tokens), ("cached_input", s.cached_tokens)):
                tokens.add_metric([*labels, direction], float(n))
            cost.add_metric(labels, s.cost)
            baseline.add_metric(labels, s.baseline_cost)
            duration.add_metric(labels, s.duration.cumulative(), s.duration.sum)
            ttft.add_metric(labels, s.ttft.cumulative(), s.ttft.sum)
        yield from families

    @staticmethod
    def _families() -> tuple[CounterMetricFamily, CounterMetricFamily, CounterMetricFamily, CounterMetricFamily,
                             HistogramMetricFamily, HistogramMetricFamily]:
        return (
            CounterMetricFamily("modelroute_requests", "Requests answered, by outcome.", labels=[*_BY_ROUTE, "status"]),
            CounterMetricFamily("modelroute_tokens", "Tokens used, by direction (input, output, cached_input).",
                                labels=[*_BY_ROUTE, "direction"]),
            CounterMetricFamily("modelroute_cost_usd", "USD paid to providers.", labels=_BY_ROUTE),
            CounterMetricFamily("modelroute_baseline_cost_usd", "USD the same tokens would have cost on the policy's baseline model.",
                                labels=_BY_ROUTE),
            HistogramMetricFamily("modelroute_request_duration_seconds", "Time from request to the end of the answer.",
                                  labels=_BY_ROUTE),
            HistogramMetricFamily("modelroute_time_to_first_token_seconds", "Time from request to the first streamed chunk.",
                                  labels=_BY_ROUTE),
        )
