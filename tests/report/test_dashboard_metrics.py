"""Every query of the chart's Grafana dashboard uses only metrics (and labels) the sidecar exports.

The exported names come from the sidecar's own registries (core, measurement and spend metrics), so a renamed metric breaks this test rather than a dashboard panel in production.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from modelroute.quality.metrics import MeasureMetrics, sample_names
from modelroute.telemetry import Metrics

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = sorted((ROOT / "charts" / "modelroute").glob("**/dashboards/*.json"))
METRIC = re.compile(r"\b(modelroute_[a-z0-9_]+)\b")
SELECTOR = re.compile(r"\b(modelroute_[a-z0-9_]+)\s*\{([^}]*)\}")
MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*\"((?:[^\"\\]|\\.)*)\"")
GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
#: Label values the sidecar sets, for labels with a closed set of values.
STATUSES = ("ok", "error", "client_closed")

pytestmark = pytest.mark.skipif(not DASHBOARDS, reason="the chart has no dashboard yet (charts/modelroute/**/dashboards/*.json)")


def exported() -> dict[str, set[str]]:
    """Sample name -> its label names, for every metric the sidecar can export."""
    registry = CollectorRegistry()
    Metrics(registry)
    MeasureMetrics(registry)
    try:  # spend control's metrics (issue 7), when present
        from modelroute.spend.metrics import SpendMetrics
    except ImportError:
        pass
    else:
        SpendMetrics(registry)
    out: dict[str, set[str]] = {}
    for collector in list(registry._collector_to_names):  # every registered metric, samples or not
        for family in collector.collect():  # labels: a metric's own, or a custom collector's family's
            labels = set(getattr(collector, "_labelnames", ()) or getattr(family, "_labelnames", ()))
            for name in sample_names(family):
                out[name] = labels | ({"le"} if name.endswith("_bucket") else set())
    return out


def queries(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("expr", "query") and isinstance(value, str):
                yield value
            else:
                yield from queries(value)
    elif isinstance(node, list):
        for item in node:
            yield from queries(item)


def all_queries() -> list[tuple[str, str]]:
    return [(path.name, q) for path in DASHBOARDS for q in queries(json.loads(path.read_text()))]


def test_the_dashboard_has_queries() -> None:
    assert len(all_queries()) >= 5


def test_every_metric_name_is_exported() -> None:
    names = exported()
    unknown = [(f, name, q) for f, q in all_queries() for name in METRIC.findall(q) if name not in names]
    assert not unknown, "dashboard queries use metrics the sidecar does not export:\n" + "\n".join(f"{f}: {n} in {q}" for f, n, q in unknown)


def test_every_label_in_a_selector_or_grouping_exists_on_its_metric() -> None:
    names = exported()
    problems = []
    for f, q in all_queries():
        used = {m: names.get(m, set()) for m in METRIC.findall(q)}
        for metric, body in SELECTOR.findall(q):
            for label, _, _ in MATCHER.findall(body):
                if label not in used[metric]:
                    problems.append(f"{f}: {metric} has no label {label!r}: {q}")
        for group in GROUPING.findall(q):
            for label in filter(None, (x.strip() for x in group.split(","))):
                if not any(label in labels for labels in used.values()):
                    problems.append(f"{f}: no metric of the query has label {label!r}: {q}")
    assert not problems, "\n".join(problems)


def test_status_matchers_select_real_statuses() -> None:
    problems = []
    for f, q in all_queries():
        for _, body in SELECTOR.findall(q):
            for label, op, value in MATCHER.findall(body):
                if label != "status":
                    continue
                hits = [s for s in STATUSES if (re.fullmatch(value, s) if "~" in op else s == value)]
                if not hits:  # a positive matcher then selects nothing, a negative one excludes nothing
                    problems.append(f"{f}: status{op}\"{value}\" matches none of the statuses the sidecar sets {STATUSES}: {q}")
    assert not problems, "\n".join(problems)
