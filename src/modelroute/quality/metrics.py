"""Prometheus metrics of the quality monitor, feedback and experiments (on the sidecar's registry).

Label sets, and why they stay bounded:

- quality signals (checks, judge scores, feedback) carry ``policy, route, model, experiment, arm``.
  ``experiment`` and ``arm`` are empty outside experiments, and a route belongs to at most one
  experiment, so they add series only on experiment routes (arms x models of that route).
- per-arm traffic (``modelroute_arm_*``) carries ``policy, experiment, arm`` only: the core
  request metrics keep their ``policy, route, model`` set, and arms are compared here.
- ``*_squares_total`` counters hold the sum of squared observations next to a histogram's
  ``_sum`` and ``_count``, so ``modelroute report`` computes exact variances (confidence intervals).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, Metric

QUALITY_LABELS = ["policy", "route", "model", "experiment", "arm"]
#: Values of QUALITY_LABELS.
QualityLabels = tuple[str, str, str, str, str]
ARM_LABELS = ["policy", "experiment", "arm"]
SCORE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class Moments:
    """A histogram and the sum of squares of what it observed."""

    __slots__ = ("hist", "squares")

    def __init__(self, name: str, doc: str, labels: list[str], buckets: tuple[float, ...], registry: CollectorRegistry) -> None:
        self.hist = Histogram(name, doc, labels, buckets=buckets, registry=registry)
        self.squares = Counter(name + "_squares", doc + " Sum of squared values (for variances).", labels, registry=registry)

    def observe(self, labels: tuple[str, ...], value: float) -> None:
        self.hist.labels(*labels).observe(value)
        self.squares.labels(*labels).inc(value * value)


class MeasureMetrics:
    """Every metric of the quality monitor, feedback and experiments."""

    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.checks = CheckTally(r)  # modelroute_quality_checks_total, modelroute_quality_answers_total
        self.judge = Moments("modelroute_judge_score", "Judge scores of sampled answers, 0..1.", QUALITY_LABELS, SCORE_BUCKETS, r)
        self.feedback = Moments("modelroute_feedback_score", "Feedback scores, 0..1 (thumbs up 1, down 0).", QUALITY_LABELS,
                                SCORE_BUCKETS, r)
        self.feedback_kinds = Counter("modelroute_feedback", "Feedback received, by kind (score, up, down).",
                                      [*QUALITY_LABELS, "kind"], registry=r)
        self.jobs = Counter("modelroute_quality_jobs", "Background quality jobs by kind (judge, regret) and result "
                            "(ok, error, dropped_queue_full, dropped_rate_limited).", ["policy", "kind", "result"], registry=r)
        self.quality_cost = Counter("modelroute_quality_cost_usd", "USD spent on monitoring (judge calls, regret re-runs), apart "
                                    "from the traffic's cost.", ["policy", "kind", "model"], registry=r)
        self.regret = Counter("modelroute_regret_samples", "Regret samples: result baseline_better (regret) or routed_ok.",
                              ["policy", "route", "model", "result"], registry=r)
        self.regret_saved = Counter("modelroute_regret_saved_usd", "USD saved on the regret samples (baseline re-run cost minus "
                                    "the routed answer's cost).", ["policy", "route", "model"], registry=r)
        self.arm_requests = Counter("modelroute_arm_requests", "Requests of experiment arms, by outcome.", [*ARM_LABELS, "status"],
                                    registry=r)
        self.arm_cost = Counter("modelroute_arm_cost_usd", "USD paid, per experiment arm.", ARM_LABELS, registry=r)
        self.arm_cost_squares = Counter("modelroute_arm_cost_usd_squares", "Sum of squared per-request cost, per arm.",
                                        ARM_LABELS, registry=r)
        self.arm_baseline_cost = Counter("modelroute_arm_baseline_cost_usd", "Baseline cost of the same tokens, per arm.",
                                         ARM_LABELS, registry=r)
        self.arm_latency = Moments("modelroute_arm_request_duration_seconds", "Time from request to the end of the answer, per arm.",
                                   ARM_LABELS, LATENCY_BUCKETS, r)

        self._children: dict[tuple[Any, tuple[str, ...]], Any] = {}

    def child(self, metric: Any, labels: tuple[str, ...]) -> Any:
        """``metric.labels(*labels)``, looked up once (labels() takes a lock and hashes every call)."""
        key = (metric, labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found

    def record_arm(self, labels: tuple[str, str, str], status: str, cost: float, baseline: float, seconds: float) -> None:
        self.child(self.arm_requests, (*labels, status)).inc()
        self.child(self.arm_cost, labels).inc(cost)
        self.child(self.arm_cost_squares, labels).inc(cost * cost)
        self.child(self.arm_baseline_cost, labels).inc(baseline)
        self.child(self.arm_latency.hist, labels).observe(seconds)
        self.child(self.arm_latency.squares, labels).inc(seconds * seconds)

    def record_checks(self, labels: tuple[str, ...], results: tuple[tuple[str, bool], ...]) -> None:
        self.checks.add(labels, results)


class CheckTally:
    """The heuristic checks' counters, kept as a tally of outcome patterns.

    Every answer is checked, so recording must be cheap: an answer adds one to the count of its
    (labels, results) pattern, a single dict update, and the two counter families are expanded from
    the patterns when the registry is scraped. Patterns are few: a handful of checks, each pass or
    fail, per label set. The event loop is the only writer; a scrape copies the tally first.
    """

    CHECKS = "modelroute_quality_checks"
    ANSWERS = "modelroute_quality_answers"

    def __init__(self, registry: CollectorRegistry) -> None:
        self._tally: dict[tuple[tuple[str, ...], tuple[tuple[str, bool], ...]], int] = {}
        registry.register(self)

    def add(self, labels: tuple[str, ...], results: tuple[tuple[str, bool], ...]) -> None:
        key = (labels, results)
        self._tally[key] = self._tally.get(key, 0) + 1

    def describe(self) -> Iterator[Metric]:
        return iter(self._families())

    def collect(self) -> Iterator[Metric]:
        checks, answers = self._families()
        by_check: dict[tuple[str, ...], int] = {}
        by_answer: dict[tuple[str, ...], int] = {}
        for (labels, results), count in list(self._tally.items()):
            for check, passed in results:
                key = (*labels, check, "pass" if passed else "fail")
                by_check[key] = by_check.get(key, 0) + count
            key = (*labels, "pass" if all(passed for _, passed in results) else "fail")
            by_answer[key] = by_answer.get(key, 0) + count
        for key, count in by_check.items():
            checks.add_metric(list(key), float(count))  # floats, as prometheus_client's own
        for key, count in by_answer.items():
            answers.add_metric(list(key), float(count))
        yield checks
        yield answers

    def _families(self) -> tuple[CounterMetricFamily, CounterMetricFamily]:
        return (CounterMetricFamily(self.CHECKS, "Heuristic checks on answers, by check and result (pass, fail).",
                                    labels=[*QUALITY_LABELS, "check", "result"]),
                CounterMetricFamily(self.ANSWERS, "Answers checked; result pass when every heuristic check passed.",
                                    labels=[*QUALITY_LABELS, "result"]))


def names() -> list[str]:
    """Metric family names these metrics export (for dashboards and their test)."""
    registry = CollectorRegistry()
    MeasureMetrics(registry)
    out: list[str] = []
    for family in registry.collect():
        out.extend(sample_names(family))
    return out


def sample_names(family: Any) -> list[str]:
    if family.type == "histogram":
        return [family.name + s for s in ("_bucket", "_sum", "_count")]
    if family.type == "counter":
        return [family.name + "_total"]
    return [family.name]
