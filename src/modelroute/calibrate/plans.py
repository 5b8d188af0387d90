"""Plans: what a region of the embedding space may be served by, scored on recorded answers.

A plan is one model (``model:<id>``) or an agreement cascade (``cascade:<first>+<checker>[+<checker>]``):
the first model answers, the checkers answer the same prompt one after the other, and the answer
stands when every checker agrees (compared as
:func:`~modelroute.routing.strategies.checks.normalise_answer` does at run time; the first to
disagree ends the check, so later checkers cost nothing), else the request escalates to the top
model. Its recorded correctness and cost per prompt follow from the dataset alone, which is how
the cascade is replayed with recorded cheap models as judges. A cascade without checkers accepts
the first model's answer unless it is empty; ``escalate:<first>`` asks the first model and then
always the top one. These two only make sense by answer (:mod:`~modelroute.calibrate.cells`).
``checked:<first>:<check>`` accepts the first model's answer when it matches one of the
:data:`ANSWER_CHECKS` patterns (the cascade's ``regex`` check), else escalates: a free-text task
has no answers to agree on, but a code answer without a function, or in another language than
the one asked for, is likely wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import permutations

import numpy as np
from numpy.typing import NDArray

from modelroute.calibrate.cells import Conditioning, frequent_answers, key_ids
from modelroute.calibrate.data import Dataset
from modelroute.routing.strategies.checks import normalise_answer

#: Answer checks a calibrated cascade may use (``checks.regex``): tag -> pattern the answer must match.
ANSWER_CHECKS: dict[str, str] = {
    "python-function": r"\bdef\s+\w+\s*\(",
    "code-block": r"```",
}


@dataclass(frozen=True)
class Plan:
    name: str
    models: tuple[str, ...]  # one model, or (first, *checkers, top) of a cascade
    check: str = ""  # an ANSWER_CHECKS tag: the first model's answer must match it
    escalates: bool = False  # the first model is asked, then always the top one

    @property
    def is_cascade(self) -> bool:
        return len(self.models) > 1

    @property
    def checkers(self) -> tuple[str, ...]:
        return self.models[1:-1]

    @property
    def unchecked(self) -> bool:
        """A cascade that accepts the first model's answer unless it is empty."""
        return self.is_cascade and not self.checkers and not self.check and not self.escalates


def single(model: str) -> Plan:
    return Plan(f"model:{model}", (model,))


def cascade(first: str, checkers: tuple[str, ...], top: str) -> Plan:
    return Plan(f"cascade:{'+'.join((first, *checkers))}", (first, *checkers, top))


def escalation(first: str, top: str) -> Plan:
    return Plan(f"escalate:{first}", (first, top), escalates=True)


def checked(first: str, check: str, top: str) -> Plan:
    return Plan(f"checked:{first}:{check}", (first, top), check)


def candidate_plans(data: Dataset, top: str, cascades: bool, pair_count: int = 3, triple_count: int = 5) -> list[Plan]:
    """Every model; with ``cascades``, agreement cascades escalating to ``top`` among the models
    that cost under a third of it: one checker among the ``pair_count`` most accurate of them,
    two checkers among the ``triple_count`` most accurate; and for serving by answer, the most
    accurate of them accepted unchecked, or always escalated; and the ``pair_count`` most accurate
    with each of :data:`ANSWER_CHECKS`."""
    plans = [single(m) for m in data.models]
    if not cascades:
        return plans
    top_cost = data.cost[:, data.column(top)].sum()
    cheap = [m for m in data.models if m != top and data.cost[:, data.column(m)].sum() < top_cost / 3]
    cheap.sort(key=lambda m: -data.correct[:, data.column(m)].mean())
    plans += [cascade(a, (b,), top) for a, b in permutations(cheap[:pair_count], 2)]
    plans += [cascade(a, (b, c), top) for a, b, c in permutations(cheap[:triple_count], 3)]
    plans += [checked(m, check, top) for m in cheap[:pair_count] for check in ANSWER_CHECKS]
    return plans + [cascade(cheap[0], (), top), escalation(cheap[0], top)] if cheap else plans


def first_answers(data: Dataset, first: str) -> list[str]:
    return [normalise_answer(row[data.column(first)]) for row in data.answers]


def answer_keys(data: Dataset, cond: Conditioning | None) -> NDArray[np.int64]:
    """The key of every prompt of ``data`` (other prompts than ``cond`` was made from); zeros
    without serving by answer."""
    return key_ids(first_answers(data, cond.first), cond.keys) if cond else np.zeros(len(data), np.int64)


def conditioning(data: Dataset, plans: list[Plan]) -> Conditioning | None:
    """Serving by the answer of the first model of the unchecked cascade, if the plans have one."""
    first = next((p.models[0] for p in plans if p.unchecked), None)
    if first is None:
        return None
    answers = first_answers(data, first)
    keys = frequent_answers(answers)
    mask = np.array([p.is_cascade and not p.check and p.models[0] == first for p in plans])
    return Conditioning(first, keys, key_ids(answers, keys), mask)


def outcomes(data: Dataset, plan: Plan, normalised: dict[int, list[str]] | None = None) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(correct, cost) of ``plan`` on every prompt of ``data``. ``normalised`` caches each model
    column's normalised answers across plans."""
    cols = [data.column(m) for m in plan.models]
    if not plan.is_cascade:
        return data.correct[:, cols[0]], data.cost[:, cols[0]]
    if plan.escalates:
        return data.correct[:, cols[-1]], data.cost[:, cols[0]] + data.cost[:, cols[-1]]
    if plan.check:
        pattern = re.compile(ANSWER_CHECKS[plan.check])
        ok = np.array([bool(row[cols[0]].strip()) and pattern.search(row[cols[0]]) is not None for row in data.answers])
        return (np.where(ok, data.correct[:, cols[0]], data.correct[:, cols[-1]]),
                data.cost[:, cols[0]] + np.where(ok, 0.0, data.cost[:, cols[-1]]))
    first, checkers, top = cols[0], cols[1:-1], cols[-1]
    answers = {} if normalised is None else normalised
    for c in (first, *checkers):
        if c not in answers:
            answers[c] = [normalise_answer(row[c]) for row in data.answers]
    mine = answers[first]
    asked = np.array([bool(row[first].strip()) for row in data.answers])  # an empty answer fails before any checker
    agree = asked & np.array([bool(a) or not checkers for a in mine])  # an empty normalised answer agrees with none
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
