"""Fit the router: regions of the embedding space, and the cheapest mix of plans per region that
keeps the quality target.

Regions come from spherical k-means on the training prompts' vectors. Within a region the plans
worth using lie on the upper convex hull of (cost, quality); moving a region one hull step up buys
quality at that step's price (quality per unit of cost). :func:`allocate` starts every region at
its cheapest hull plan and buys the cheapest quality first, across all regions, until the fitting
goal is reached; the region bought last takes the step in part, so it is served by a mix of two
adjacent plans (the sidecar splits it by a hash of the prompt). This is the exact optimum of the
linear relaxation, so the cost lands where the goal puts it instead of jumping between whole
plans. The allocation's units are cells (:mod:`~modelroute.calibrate.cells`): a region, or in a
region served by answer, one cell per answer of the first model.

Which number of regions R, and how far above the target to aim (the margin: quality measured
in-sample is optimistic), are decided by cross-fitting: fit on four fifths of the training
prompts, route the last fifth exactly as the sidecar will (a similarity-weighted vote of the k
nearest examples' labels), average over ``REPEATS`` fold shuffles, and keep the cheapest (R,
margin) whose out-of-fold quality is at least ``target`` times the baseline's. The chosen setting
is then fitted on all training prompts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from numpy.typing import NDArray

from modelroute.calibrate.cells import Bools, Conditioning, Ints, Layout, layout
from modelroute.embedding.knn import spherical_kmeans

Floats = NDArray[np.float64]
Vectors = NDArray[np.float32]

REGIONS = (1, 2, 3, 4, 6, 12)
MARGINS = (0.0, 0.0025, 0.005, 0.0075, 0.01, 0.0125, 0.015, 0.02, 0.025, 0.03)
PRIOR = 8.0  # a region's plan means are shrunk towards the whole training set's by this many prompts
FOLDS = 5
REPEATS = 5  # cross-fitting repeated over this many fold shuffles (less selection noise)
K = 16


@dataclass(frozen=True)
class Mix:
    """How a region is served: plan ``low``, and plan ``high`` for a ``share`` of its prompts."""

    low: int
    high: int
    share: float

    @property
    def pure(self) -> bool:
        return self.share <= 0.0 or self.low == self.high


@dataclass(frozen=True)
class Fit:
    regions: int
    margin: float
    assign: Ints  # region of every training prompt
    layout: Layout
    mixes: tuple[Mix, ...]  # per cell
    oof_quality: float  # out-of-fold quality as a fraction of the baseline's
    oof_cost: float  # out-of-fold cost as a fraction of the baseline's


def hull(cost: Floats, quality: Floats) -> list[int]:
    """Indices of the plans on the upper convex hull of (cost, quality), cheapest first."""
    order = sorted(range(len(cost)), key=lambda i: (cost[i], -quality[i]))
    out: list[int] = []
    for i in order:
        if out and quality[i] <= quality[out[-1]]:
            continue
        while len(out) >= 2:
            a, b = out[-2], out[-1]
            if (quality[b] - quality[a]) * (cost[i] - cost[a]) <= (quality[i] - quality[a]) * (cost[b] - cost[a]):
                out.pop()
            else:
                break
        out.append(i)
    return out


def allocate(q: Floats, k: Floats, goal: float) -> tuple[Mix, ...]:
    """Per region, the mix reaching total quality ``goal`` at least cost (q, k: (regions, plans)
    totals). Without enough quality in any mix, every region takes its most accurate hull plan."""
    hulls = [hull(k[r], q[r]) for r in range(len(q))]
    at = [h[0] for h in hulls]
    total = sum(q[r, at[r]] for r in range(len(q)))
    steps = sorted(((q[r, b] - q[r, a]) / max(k[r, b] - k[r, a], 1e-12), r, a, b)
                   for r, h in enumerate(hulls) for a, b in zip(h, h[1:]))
    mixes = {r: Mix(at[r], at[r], 0.0) for r in range(len(q))}
    for _, r, a, b in reversed(steps):
        if total >= goal:
            break
        gain = q[r, b] - q[r, a]
        share = min(1.0, (goal - total) / gain) if gain > 0 else 1.0
        mixes[r] = Mix(b, b, 0.0) if share >= 1.0 else Mix(a, b, float(share))
        total += share * gain
    return tuple(mixes[r] for r in range(len(q)))


def cell_totals(q: Floats, k: Floats, cells: Ints, lay: Layout, allowed: Bools | None = None) -> tuple[Floats, Floats]:
    """(quality, cost) totals per (cell, plan), each cell's means shrunk towards the whole's
    (shrinking a cell towards its region instead did no better: 31 of 100 splits met the bar,
    against 35); a plan not ``allowed`` in a cell gets a cost and quality no allocation buys."""
    counts = np.bincount(cells, minlength=lay.cells).astype(np.float64)[:, None]
    sums_q = np.zeros((lay.cells, q.shape[1]))
    sums_k = np.zeros((lay.cells, q.shape[1]))
    np.add.at(sums_q, cells, q)
    np.add.at(sums_k, cells, k)
    tq = (sums_q + PRIOR * q.mean(0)) / (counts + PRIOR) * counts
    tk = (sums_k + PRIOR * k.mean(0)) / (counts + PRIOR) * counts
    if allowed is not None:
        tq, tk = np.where(allowed, tq, -1e12), np.where(allowed, tk, 1e12)
    return tq, tk


def label_ids(lay: Layout, mixes: tuple[Mix, ...], plans: int) -> Ints:
    """The library label of each region: its plan when one pure cell, else its own label."""
    return np.array([mixes[o].low if not c and mixes[o].pure else plans + r
                     for r, (c, o) in enumerate(zip(lay.conditional, lay.offsets))], np.int64)


def served(lay: Layout, mixes: tuple[Mix, ...], plans: int, labels: Ints, keys: Ints, values: Floats) -> Floats:
    """Expected value (quality or cost) of each row under the label it got and its first-model key
    (values: (n, plans))."""
    rows = np.arange(len(labels))
    out = values[rows, np.minimum(labels, plans - 1)].astype(np.float64)
    own = labels >= plans
    cells = lay.cell(np.where(own, labels - plans, 0), keys)
    for c in np.unique(cells[own]):
        m, hit = mixes[c], own & (cells == c)
        out[hit] = (1 - m.share) * values[hit, m.low] + m.share * values[hit, m.high]
    return out


def neighbours(train_vecs: Vectors, query: Vectors, k: int = K) -> tuple[Ints, Floats]:
    """(indices (q, k), weights (q, k)) of each query row's k nearest training rows."""
    sims = query @ train_vecs.T
    k = min(k, sims.shape[1])
    near = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    return near, np.maximum(np.take_along_axis(sims, near, 1), 1e-6).astype(np.float64)


def tally(near: Ints, weights: Floats, train_labels: Ints, n_labels: int) -> Ints:
    """The label with the largest similarity-weighted vote among each row's neighbours."""
    votes = np.zeros((len(near), n_labels))
    rows = np.repeat(np.arange(len(near)), near.shape[1])
    np.add.at(votes, (rows, train_labels[near].ravel()), weights.ravel())
    best: Ints = np.argmax(votes, 1).astype(np.int64)
    return best


def vote(train_vecs: Vectors, train_labels: Ints, query: Vectors, n_labels: int, k: int = K) -> Ints:
    """The label each query row gets from its k nearest training rows, as the sidecar votes."""
    near, weights = neighbours(train_vecs, query, k)
    return tally(near, weights, train_labels, n_labels)


def fold_shuffles(n: int) -> list[Ints]:
    """The fold of each of ``n`` rows, for each of ``REPEATS`` shuffles."""
    out = []
    for seed in range(REPEATS):
        folds = np.arange(n) % FOLDS
        np.random.default_rng(seed).shuffle(folds)
        out.append(folds)
    return out


def margin_totals(q: Floats, k: Floats, cells: Ints, lay: Layout, allowed: Bools, base: int, goal: float,
                  route: Callable[[Ints], Ints], q_te: Floats, k_te: Floats, keys_te: Ints) -> tuple[Floats, Floats]:
    """Held-out (quality, cost) totals per margin (arrays of len(MARGINS)) of cells fitted on
    (q, k, cells). ``route`` labels the held-out rows given each region's label id."""
    plans = q.shape[1]
    rq, rk = cell_totals(q, k, cells, lay, allowed)
    total_q, total_k = np.zeros(len(MARGINS)), np.zeros(len(MARGINS))
    for j, margin in enumerate(MARGINS):
        mixes = allocate(rq, rk, (goal + margin) * q[:, base].sum())
        got = route(label_ids(lay, mixes, plans))
        total_q[j] = served(lay, mixes, plans, got, keys_te, q_te).sum()
        total_k[j] = served(lay, mixes, plans, got, keys_te, k_te).sum()
    return total_q, total_k


def _keys(cond: Conditioning | None, n: int) -> Ints:
    return cond.key if cond is not None else np.zeros(n, np.int64)


def _oof(vecs: Vectors, q: Floats, k: Floats, base: int, goal: float, regions: int, folds: Ints,
         cond: Conditioning | None) -> tuple[Floats, Floats]:
    """Out-of-fold (quality, cost) totals per margin for one R: arrays of len(MARGINS)."""
    labels = q.shape[1] + regions
    keys = _keys(cond, len(q))
    total_q, total_k = np.zeros(len(MARGINS)), np.zeros(len(MARGINS))
    for f in range(FOLDS):
        tr, te = folds != f, folds == f
        _, assign = spherical_kmeans(vecs[tr], regions, seed=f)
        lay = layout(assign, regions, cond, keys[tr])
        near, weights = neighbours(vecs[tr], vecs[te])
        oq, ok = margin_totals(q[tr], k[tr], lay.cell(assign, keys[tr]), lay, lay.allowed(q.shape[1], cond), base, goal,
                               lambda ids: tally(near, weights, ids[assign], labels), q[te], k[te], keys[te])
        total_q += oq
        total_k += ok
    return total_q, total_k


def fit(vecs: Vectors, q: Floats, k: Floats, baseline: int, target: float,
        progress: Callable[[int, int], None] | None = None, cond: Conditioning | None = None) -> Fit:
    """Choose (R, margin) by cross-fitting and fit on everything. ``baseline``: the baseline's plan;
    ``cond``: serve regions by the first model's answer where most prompts get a key."""
    shuffles = fold_shuffles(len(vecs))
    base_q, base_k = q[:, baseline].sum(), k[:, baseline].sum()
    best: tuple[float, float, int, float] | None = None  # (cost, -quality, R, margin)
    fallback: tuple[float, float, int, float] | None = None
    usable = [r for r in REGIONS if r * 8 <= len(vecs)] or [1]
    for step, regions in enumerate(usable):
        tq, tk = np.zeros(len(MARGINS)), np.zeros(len(MARGINS))
        for folds in shuffles:
            oq, ok = _oof(vecs, q, k, baseline, target, regions, folds, cond)
            tq += oq / len(shuffles)
            tk += ok / len(shuffles)
        for j, margin in enumerate(MARGINS):
            entry = (tk[j] / base_k, -tq[j] / base_q, regions, margin)
            if tq[j] >= target * base_q and (best is None or entry < best):
                best = entry
            if fallback is None or (-entry[1], -entry[0]) > (-fallback[1], -fallback[0]):
                fallback = entry
        if progress is not None:
            progress(step + 1, len(usable))
    chosen = best or fallback
    assert chosen is not None
    cost, neg_quality, regions, margin = chosen
    _, assign = spherical_kmeans(vecs, regions, seed=0)
    keys = _keys(cond, len(q))
    lay = layout(assign, regions, cond, keys)
    rq, rk = cell_totals(q, k, lay.cell(assign, keys), lay, lay.allowed(q.shape[1], cond))
    mixes = allocate(rq, rk, (target + margin) * base_q)
    return Fit(regions, margin, assign.astype(np.int64), lay, mixes, -neg_quality, cost)
