"""Plans: what a region of the embedding space may be served by, scored on recorded answers.

A plan is one model (``model:<id>``) or an agreement cascade (``cascade:<first>+<checker>[+<checker>]``):
the first model answers, the checkers answer the same prompt one after the other, and the answer
stands when every checker agrees (compared as
:func:`~modelroute.routing.strategies.checks.normalise_answer` does at run time; the first to
disagree ends the check, so later checkers cost nothing), else the request escalates to the top
model. Its recorded correctness and cost per prompt follow from the dataset alone, which is how
the cascade is replayed with recorded cheap models as judges.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import permutations

import numpy as np
from numpy.typing import NDArray

from modelroute.calibrate.data import Dataset
from modelroute.routing.strategies.checks import normalise_answer


@dataclass(frozen=True)
class Plan:
    name: str
    models: tuple[str, ...]  # one model, or (first, *checkers, top) of a cascade

    @property
    def is_cascade(self) -> bool:
        return len(self.models) > 1

    @property
    def checkers(self) -> tuple[str, ...]:
        return self.models[1:-1]


def single(model: str) -> Plan:
    return Plan(f"model:{model}", (model,))


def cascade(first: str, checkers: tuple[str, ...], top: str) -> Plan:
    return Plan(f"cascade:{'+'.join((first, *checkers))}", (first, *checkers, top))


def candidate_plans(data: Dataset, top: str, cascades: bool, pair_count: int = 3, triple_count: int = 5) -> list[Plan]:
    """Every model; with ``cascades``, agreement cascades escalating to ``top`` among the models
    that cost under a third of it: one checker among the ``pair_count`` most accurate of them,
    two checkers among the ``triple_count`` most accurate."""
    plans = [single(m) for m in data.models]
    if not cascades:
        return plans
    top_cost = data.cost[:, data.column(top)].sum()
    cheap = [m for m in data.models if m != top and data.cost[:, data.column(m)].sum() < top_cost / 3]
    cheap.sort(key=lambda m: -data.correct[:, data.column(m)].mean())
    plans += [cascade(a, (b,), top) for a, b in permutations(cheap[:pair_count], 2)]
    plans += [cascade(a, (b, c), top) for a, b, c in permutations(cheap[:triple_count], 3)]
    return plans


def outcomes(data: Dataset, plan: Plan, normalised: dict[int, list[str]] | None = None) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(correct, cost) of ``plan`` on every prompt of ``data``. ``normalised`` caches each model
    column's normalised answers across plans."""
    cols = [data.column(m) for m in plan.models]
    if not plan.is_cascade:
        return data.correct[:, cols[0]], data.cost[:, cols[0]]
    first, checkers, top = cols[0], cols[1:-1], cols[-1]
    answers = {} if normalised is None else normalised
    for c in (first, *checkers):
        if c not in answers:
            answers[c] = [normalise_answer(row[c]) for row in data.answers]
    mine = answers[first]
    asked = np.array([bool(row[first].strip()) for row in data.answers])  # an empty answer fails before any checker
    agree = asked & np.array([bool(a) for a in mine])
    cost = data.cost[:, first].copy()
    for c in checkers:
        cost += np.where(asked, data.cost[:, c], 0.0)  # asked only while every earlier checker agreed
        agree &= np.array([a == b for a, b in zip(mine, answers[c])])
        asked = agree.copy()
    correct = np.where(agree, data.correct[:, first], data.correct[:, top])
    return correct, cost + np.where(agree, 0.0, data.cost[:, top])


def outcome_matrix(data: Dataset, plans: list[Plan]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(correct (n, p), cost (n, p)) of every plan on every prompt."""
    normalised: dict[int, list[str]] = {}
    pairs = [outcomes(data, p, normalised) for p in plans]
    return np.stack([c for c, _ in pairs], 1), np.stack([k for _, k in pairs], 1)
