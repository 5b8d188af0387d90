"""Held-out comparison: the fitted router against always-the-baseline and the best single models."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from modelroute.calibrate.plans import Plan


@dataclass(frozen=True)
class Line:
    name: str
    accuracy: float
    cost_usd: float
    quality_ratio: float  # accuracy / baseline accuracy
    cost_ratio: float  # cost / baseline cost


def score(name: str, correct: NDArray[np.float64], cost: NDArray[np.float64],
          base_correct: NDArray[np.float64], base_cost: NDArray[np.float64]) -> Line:
    return Line(name, float(correct.mean()), float(cost.sum()),
                float(correct.sum() / max(base_correct.sum(), 1e-12)), float(cost.sum() / max(base_cost.sum(), 1e-12)))


def compare(plans: list[Plan], q: NDArray[np.float64], k: NDArray[np.float64], chosen: NDArray[np.int64],
            baseline: int, target: float, train_q: NDArray[np.float64], router_name: str) -> list[Line]:
    """Lines for the router (plan ``chosen[i]`` on prompt i), the baseline, the most accurate single
    model, and the cheapest single model whose *training* quality meets the target."""
    rows = np.arange(len(q))
    bq, bk = q[:, baseline], k[:, baseline]
    lines = [score(router_name, q[rows, chosen], k[rows, chosen], bq, bk),
             score(f"always {plans[baseline].models[0]} (baseline)", bq, bk, bq, bk)]
    singles = [i for i, p in enumerate(plans) if not p.is_cascade]
    best = max(singles, key=lambda i: train_q[:, i].mean())
    if best != baseline:
        lines.append(score(f"best single model {plans[best].models[0]}", q[:, best], k[:, best], bq, bk))
    able = [i for i in singles if train_q[:, i].sum() >= target * train_q[:, baseline].sum()]
    cheapest = min(able, key=lambda i: k[:, i].sum()) if able else None
    if cheapest is not None and cheapest not in (best, baseline):
        lines.append(score(f"cheapest single model at target {plans[cheapest].models[0]}", q[:, cheapest], k[:, cheapest], bq, bk))
    return lines


def table(lines: list[Line]) -> str:
    width = max(len(line.name) for line in lines)
    out = [f"{'':{width}}  accuracy  vs baseline  cost USD  vs baseline"]
    for line in lines:
        out.append(f"{line.name:{width}}  {line.accuracy:8.4f}  {line.quality_ratio:10.1%}  {line.cost_usd:8.4f}  {line.cost_ratio:10.1%}")
    return "\n".join(out)
