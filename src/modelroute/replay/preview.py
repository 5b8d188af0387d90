"""Impact preview: what a policy change does to a sample workload, for ``status.preview``.

The operator (on every accepted change of a RoutingPolicy whose ``spec.preview.configMap`` names a
workload) calls :func:`preview` with the new compiled policy, the previous one and the workload
items, and writes the returned dict to ``status.preview``; when ``costIncreaseExceeded`` is true it
emits a Warning Event. :func:`preview_status` is the pure part: it only reads replay results.

Returned shape (JSON-ready; USD as decimal strings, shares in 0..1)::

    {"policyVersion": "3f2a...", "requests": 200, "errors": 0,
     "routeMix": [{"route": "default", "model": "gpt-4o-mini", "requests": 150, "share": 0.75}, ...],
     "costPer1000": "0.412000", "baselineCostPer1000": "1.630000", "savingPercent": 74.7,
     "quality": 0.86 | null, "baselineQuality": 0.9 | null, "escalated": 12,
     "previous": {"policyVersion": "...", "costPer1000": "0.380000"} | null,
     "costChangePercent": 8.4 | null, "maxCostIncreasePercent": 10.0, "costIncreaseExceeded": false}
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from typing import Any

from modelroute.policy import CompiledPolicy
from modelroute.replay.run import ReplayResult, replay
from modelroute.replay.workload import Item, read_workload

DEFAULT_MAX_INCREASE = 10.0


def _usd(value: float) -> str:
    return f"{value:.6f}"


def summary_of(result: ReplayResult) -> dict[str, Any]:
    """The totals and route mix of one replay, as plain data."""
    total = result.total
    n = total.requests or 1
    return {
        "policy": result.policy,
        "policyVersion": result.version,
        "requests": result.requests,
        "errors": sum(result.errors.values()),
        "routeMix": [{"route": r, "model": m, "requests": c, "share": round(c / n, 4)} for (r, m), c in result.mix.most_common()],
        "cost": _usd(total.cost),
        "baselineCost": _usd(total.baseline_cost),
        "costPer1000": _usd(total.per_1000()),
        "baselineCostPer1000": _usd(total.baseline_cost / n * 1000 if total.requests else 0.0),
        "savingPercent": round(total.saving * 100, 2),
        "quality": None if total.quality is None else round(total.quality, 4),
        "baselineQuality": None if total.baseline_quality is None else round(total.baseline_quality, 4),
        "escalated": total.escalated,
    }


def preview_status(current: ReplayResult, previous: ReplayResult | None,
                   max_cost_increase_percent: float = DEFAULT_MAX_INCREASE) -> dict[str, Any]:
    """``status.preview`` from the replays of the new and the previous policy (pure)."""
    out = summary_of(current)
    for key in ("policy", "cost", "baselineCost"):
        out.pop(key)
    change = None
    if previous is not None:
        before, after = previous.total.per_1000(), current.total.per_1000()
        change = round((after - before) / before * 100, 2) if before > 0 else (0.0 if after == 0 else None)
        out["previous"] = {"policyVersion": previous.version, "costPer1000": _usd(before)}
    else:
        out["previous"] = None
    out["costChangePercent"] = change
    out["maxCostIncreasePercent"] = max_cost_increase_percent
    rose = previous is not None and current.total.per_1000() > previous.total.per_1000()
    out["costIncreaseExceeded"] = bool(rose and (change is None or change > max_cost_increase_percent))
    return out


async def preview(policy: CompiledPolicy, items: Sequence[Item], previous: CompiledPolicy | None = None,
                  max_cost_increase_percent: float = DEFAULT_MAX_INCREASE) -> dict[str, Any]:
    """Replay ``items`` through the new (and previous) policy and build ``status.preview``."""
    current = await replay(policy, items)
    before = await replay(previous, items) if previous is not None else None
    return preview_status(current, before, max_cost_increase_percent)


def workload_from_text(text: str) -> list[Item]:
    """Workload items from JSON-lines text (a ConfigMap value), in either workload format.

    The text goes through a temporary file: labelled lines are read by the shared RouterBench
    loader, which reads files."""
    if not text.strip():
        return []
    fd, path = tempfile.mkstemp(suffix=".jsonl")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        return read_workload(path)
    finally:
        os.unlink(path)
