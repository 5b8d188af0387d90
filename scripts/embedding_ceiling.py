"""How far the embedding router alone can go on routerbench-train, and why it stops short of the bar.

    python scripts/embedding_ceiling.py [--data ../shared/data/routerbench-train.jsonl]

The embedding router alone serves each prompt by one model, chosen from the prompt's neighbours.
Issue 4's bar asks for 97% of gpt-4's accuracy at 35% of its cost. Three measurements, all on the
whole file:

1. **Per task, with exact task labels, in-sample.** This bounds any router that picks one model per
   prompt from what kind of prompt it is. Per task, the models' (cost, quality) points have an
   upper convex hull. Quality is then bought cheapest first across tasks, with shares, as
   ``calibrate.fit.allocate`` does with regions. This is the best a router can do when it knows the
   task but nothing about the prompt within it.
2. **Within a task, from the vectors.** A ridge logistic regression on the MiniLM vectors of the
   prompts' discriminating text (the router's own vectors), cross-fitted over 5 folds, scores each
   prompt for "gpt-4 is right where the task's cheap model is wrong". The printout gives its AUC,
   and the frontier when each task's prompts move to gpt-4 in the probe's order.
3. **How much within-task signal the bar needs.** The same frontier with an oracle score blurred by
   Gaussian noise gives the AUC at which 97% at 35% becomes reachable.
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path
from typing import Callable

import numpy as np
from numpy.typing import NDArray

from modelroute.calibrate import data as datamod
from modelroute.calibrate.fit import hull
from modelroute.calibrate.run import embed_prompts

BASELINE = "gpt-4-1106-preview"
HERE = Path(__file__).resolve().parent
DATA = HERE.parents[1] / "shared" / "data" / "routerbench-train.jsonl"
VECTORS = HERE.parent / "tests" / "calibrate" / "data" / "routerbench-vectors.npz"

Floats = NDArray[np.float64]
Curve = tuple[Floats, Floats]  # (cost, quality) points of one task's ways of serving it
Best = Callable[[list[Curve], float], float]  # the most quality the curves give within a budget


def frontier(curves: list[Curve], budget: float) -> float:
    """The most quality within ``budget`` (same units as the curves' costs): every task starts at
    its cheapest hull point, then hull steps are bought by price, the last one in part."""
    cost = quality = 0.0
    steps = []
    for k, q in curves:
        h = hull(k, q)
        cost, quality = cost + k[h[0]], quality + q[h[0]]
        steps += [((q[b] - q[a]) / max(k[b] - k[a], 1e-12), k[b] - k[a], q[b] - q[a]) for a, b in zip(h, h[1:])]
    for _, dk, dq in sorted(steps, reverse=True):
        share = min(1.0, max(0.0, (budget - cost) / dk))
        cost, quality = cost + share * dk, quality + share * dq
    return quality


def cost_for(best: Best, curves: list[Curve], goal: float, top: float) -> float:
    """The least cost at which ``best`` reaches quality ``goal`` (bisection up to ``top``)."""
    lo, hi = 0.0, top
    if best(curves, hi) < goal:
        return float("inf")
    for _ in range(30):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if best(curves, mid) < goal else (lo, mid)
    return hi


def ranked(order: NDArray[np.int64], cheap_k: Floats, cheap_q: Floats, top_k: Floats, top_q: Floats) -> Curve:
    """(cost, quality) after moving the first 0..n prompts of ``order`` from the cheap model to gpt-4."""
    k = cheap_k.sum() + np.r_[0.0, np.cumsum((top_k - cheap_k)[order])]
    q = cheap_q.sum() + np.r_[0.0, np.cumsum((top_q - cheap_q)[order])]
    return k, q


def best_prefixes(curves: list[Curve], budget: float, grid: int = 100) -> float:
    """The most quality within ``budget`` when each task moves a prefix of its ranked prompts to
    gpt-4: every task but the last on a grid of ``grid`` + 1 fractions, the last exactly. No hull
    is taken: the hull of one realised ranking would pick its lucky stretches."""
    *others, (last_k, last_q) = curves
    best_last = np.maximum.accumulate(last_q)  # last_k rises with the prefix: more prompts, more cost
    best = -np.inf
    picks = [np.unique(np.linspace(0, len(k) - 1, grid + 1).round().astype(np.int64)) for k, _ in others]
    for combo in itertools.product(*picks):
        spent = sum(others[i][0][j] for i, j in enumerate(combo))
        got = sum(others[i][1][j] for i, j in enumerate(combo))
        at = int(np.searchsorted(last_k, budget - spent, side="right")) - 1
        if at >= 0:
            best = max(best, got + best_last[at])
    return float(best)


def auc(score: Floats, positive: NDArray[np.bool_]) -> float:
    """Probability that a positive row scores above a negative one (ties count half)."""
    order = np.argsort(score, kind="stable")
    ranks = np.empty(len(score))
    ranks[order] = np.arange(1, len(score) + 1)
    for value in np.unique(score):  # average ranks over ties
        tie = score == value
        ranks[tie] = ranks[tie].mean()
    p, n = positive.sum(), (~positive).sum()
    return float((ranks[positive].sum() - p * (p + 1) / 2) / (p * n))


def probe(x: Floats, y: Floats, folds: NDArray[np.int64], ridge: float) -> Floats:
    """Out-of-fold scores of an L2-regularised logistic regression (Newton steps, numpy only)."""
    out = np.zeros(len(y))
    xb = np.c_[x, np.ones(len(x))]
    penalty = ridge * np.diag(np.r_[np.ones(x.shape[1]), 0.0])
    for f in np.unique(folds):
        tr = folds != f
        w = np.zeros(xb.shape[1])
        for _ in range(25):
            p = 1 / (1 + np.exp(-xb[tr] @ w))
            grad = xb[tr].T @ (p - y[tr]) + penalty @ w
            hess = (xb[tr].T * (p * (1 - p))) @ xb[tr] + penalty
            w -= np.linalg.solve(hess, grad)
        out[~tr] = xb[~tr] @ w
    return out


class Tasks:
    """The file's prompts by task, each task's cheap model, and the figures against gpt-4."""

    def __init__(self, ds: datamod.Dataset) -> None:
        self.ds, self.top = ds, ds.column(BASELINE)
        self.base_k, self.base_q = ds.cost[:, self.top].sum(), ds.correct[:, self.top].sum()
        self.rows = {t: np.array([i for i, name in enumerate(ds.tasks) if name == t]) for t in sorted(set(ds.tasks))}
        self.cheap = {}
        for t, r in self.rows.items():  # the most accurate model costing under a third of gpt-4 on the task
            affordable = ds.cost[r].sum(0) < ds.cost[r, self.top].sum() / 3
            self.cheap[t] = int(np.argmax(np.where(affordable, ds.correct[r].sum(0), -1)))
        self.gains = {t: ds.correct[r, self.top] - ds.correct[r, self.cheap[t]] for t, r in self.rows.items()}

    def models(self) -> list[Curve]:
        return [(self.ds.cost[r].sum(0), self.ds.correct[r].sum(0)) for r in self.rows.values()]

    def ranked(self, scores: dict[str, Floats]) -> list[Curve]:
        ds, top = self.ds, self.top
        return [ranked(np.argsort(-scores[t], kind="stable"), ds.cost[r, self.cheap[t]], ds.correct[r, self.cheap[t]],
                       ds.cost[r, top], ds.correct[r, top]) for t, r in self.rows.items()]

    def figures(self, best: Best, curves: list[Curve]) -> tuple[float, float]:
        """(quality at 35% of gpt-4's cost, cost at 97% of its quality), as fractions of gpt-4's."""
        return (best(curves, 0.35 * self.base_k) / self.base_q,
                cost_for(best, curves, 0.97 * self.base_q, self.base_k) / self.base_k)


def line(name: str, figures: tuple[float, float]) -> None:
    print(f"{name:62s} {figures[0]:7.2%} at 35%   97% at {figures[1]:6.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--vectors", default=str(VECTORS), help="cache of the prompts' vectors (.npz)")
    parser.add_argument("--ridge", type=float, default=3.0)
    parser.add_argument("--shuffles", type=int, default=20, help="random orders averaged for the baseline")
    args = parser.parse_args()
    ds = datamod.load(args.data)
    tasks, rng = Tasks(ds), np.random.default_rng(0)
    print(f"{len(ds)} prompts, {len(tasks.rows)} tasks; quality and cost against always {BASELINE}\n")
    line("1. per task, any mix of the 11 models, exact labels", tasks.figures(frontier, tasks.models()))

    shuffled = [tasks.figures(best_prefixes, tasks.ranked({t: rng.random(len(r)) for t, r in tasks.rows.items()}))
                for _ in range(args.shuffles)]
    line(f"2. cheap model or gpt-4 per task, prompts in random order ({args.shuffles})", tuple(np.mean(shuffled, 0)))
    vecs = embed_prompts(ds.prompts, args.vectors, lambda *_: None).astype(np.float64)
    scores = {}
    for t, r in tasks.rows.items():
        need = tasks.gains[t] > 0
        scores[t] = probe(vecs[r] - vecs[r].mean(0), need.astype(np.float64), rng.permutation(len(r)) % 5, args.ridge)
        print(f"   {t}: cheap model {ds.models[tasks.cheap[t]]}; {int(need.sum())} of {len(r)} prompts "
              f"need gpt-4; probe AUC {auc(scores[t], need):.3f}")
    line("   the same, prompts in the probe's order", tasks.figures(best_prefixes, tasks.ranked(scores)))

    print("\n3. an oracle score blurred by noise (mean of 3 draws): the within-task signal the bar needs")
    for sigma in (0.75, 1.0, 1.25, 1.5, 2.0):
        draws, aucs = [], []
        for _ in range(3):
            blurred = {t: (g > 0) + rng.normal(0, sigma, len(g)) for t, g in tasks.gains.items()}
            aucs += [auc(blurred[t], g > 0) for t, g in tasks.gains.items()]
            draws.append(tasks.figures(best_prefixes, tasks.ranked(blurred)))
        line(f"   noise sd {sigma:.2f}: mean AUC {np.mean(aucs):.3f}", tuple(np.mean(draws, 0)))

if __name__ == "__main__":
    main()
