"""The per-route series are plain accumulators exported at scrape time: what a scrape shows must be
what prometheus_client's own Counter and Histogram would show for the same requests."""

from __future__ import annotations

import random

from prometheus_client import CollectorRegistry, Counter, Histogram

from modelroute.telemetry.metrics import _LATENCY_BUCKETS, Metrics

LABELS = ("quickstart", "default", "gpt-4o-mini")


def samples(registry: CollectorRegistry, family_name: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in registry.collect() if f.name == family_name for s in f.samples if not s.name.endswith("_created")}


def test_latency_histogram_matches_prometheus_client_bucket_for_bucket() -> None:
    rng = random.Random(7)
    values = [rng.choice(_LATENCY_BUCKETS) for _ in range(50)]  # values on a bound belong to that bucket (le)
    values += [rng.uniform(0, 150) for _ in range(500)] + [0.0, 1e9]
    ours = Metrics()
    series = ours.route(*LABELS)
    reference = CollectorRegistry()
    hist = Histogram("modelroute_request_duration_seconds", "", ["policy", "route", "model"], buckets=_LATENCY_BUCKETS,
                     registry=reference)
    for value in values:
        series.duration.observe(value)
        hist.labels(*LABELS).observe(value)
    got, want = samples(ours.registry, "modelroute_request_duration_seconds"), samples(reference, "modelroute_request_duration_seconds")
    assert got.keys() == want.keys() and len(got) == len(_LATENCY_BUCKETS) + 3  # buckets, +Inf, _count, _sum
    for key, value in want.items():
        assert abs(got[key] - value) < 1e-6, key


def test_counters_match_prometheus_client() -> None:
    ours = Metrics()
    reference = CollectorRegistry()
    requests = Counter("modelroute_requests", "", ["policy", "route", "model", "status"], registry=reference)
    tokens = Counter("modelroute_tokens", "", ["policy", "route", "model", "direction"], registry=reference)
    for status, input_tokens, output_tokens in [("ok", 120, 30), ("ok", 7, 1), ("error", 0, 0)]:
        series = ours.route(*LABELS)
        series.count(status)
        series.input_tokens += input_tokens
        series.output_tokens += output_tokens
        requests.labels(*LABELS, status).inc()
        tokens.labels(*LABELS, "input").inc(input_tokens)
        tokens.labels(*LABELS, "output").inc(output_tokens)
    tokens.labels(*LABELS, "cached_input").inc(0)
    assert samples(ours.registry, "modelroute_requests") == samples(reference, "modelroute_requests")
    assert samples(ours.registry, "modelroute_tokens") == samples(reference, "modelroute_tokens")
    exposition = ours.render().decode()
    assert 'modelroute_requests_total{model="gpt-4o-mini",policy="quickstart",route="default",status="ok"} 2.0' in exposition
