"""Plans: what a region of the embedding space may be served by, scored on recorded answers.

A plan is one model (``model:<id>``) or an agreement cascade (``cascade:<first>+<second>``): the
first model answers, the second answers the same prompt, and the answer stands when both agree
(compared as :func:`~modelroute.routing.strategies.checks.normalise_answer` does at run time),
else the request escalates to the top model. Its recorded correctness and cost per prompt follow
from the dataset alone, which is how the cascade is replayed with a recorded cheap model as judge.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from modelroute.calibrate.data import Dataset
from modelroute.routing.strategies.checks import normalise_answer


@dataclass(frozen=True)
class Plan:
    name: str
    models: tuple[str, ...]  # one model, or (first, second, top) of a cascade

    @property
    def is_cascade(self) -> bool:
        return len(self.models) > 1


def single(model: str) -> Plan:
    return Plan(f"model:{model}", (model,))


def cascade(first: str, second: str, top: str) -> Plan:
    return Plan(f"cascade:{first}+{second}", (first, second, top))


def candidate_plans(data: Dataset, top: str, cascades: bool, cheap_count: int = 3) -> list[Plan]:
    """Every model, plus agreement cascades among the ``cheap_count`` most accurate models that
    cost under a third of ``top`` (escalating to ``top``)."""
    plans = [single(m) for m in data.models]
    if not cascades:
        return plans
    top_cost = data.cost[:, data.column(top)].sum()
    cheap = [m for m in data.models if m != top and data.cost[:, data.column(m)].sum() < top_cost / 3]
    cheap.sort(key=lambda m: -data.correct[:, data.column(m)].mean())
    chosen = cheap[:cheap_count]
    plans += [cascade(a, b, top) for a in chosen for b in chosen if a != b]
    return plans


def outcomes(data: Dataset, plan: Plan) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(correct, cost) of ``plan`` on every prompt of ``data``."""
    cols = [data.column(m) for m in plan.models]
    if not plan.is_cascade:
        return data.correct[:, cols[0]], data.cost[:, cols[0]]
    first, second, top = cols
    agree = np.array([
        bool(a := normalise_answer(row[first])) and a == normalise_answer(row[second]) for row in data.answers
    ])
    correct = np.where(agree, data.correct[:, first], data.correct[:, top])
    cost = data.cost[:, first] + data.cost[:, second] + np.where(agree, 0.0, data.cost[:, top])
    return correct, cost


def outcome_matrix(data: Dataset, plans: list[Plan]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(correct (n, p), cost (n, p)) of every plan on every prompt."""
    pairs = [outcomes(data, p) for p in plans]
    return np.stack([c for c, _ in pairs], 1), np.stack([k for _, k in pairs], 1)
