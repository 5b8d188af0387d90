"""Fit the router: regions of the embedding space, and the cheapest plan per region that keeps
the quality target.

For a number of regions R (spherical k-means on the training prompts' vectors) and a price of
quality λ, every region takes the plan maximising ``quality - λ * cost`` (its mean over the
region's prompts, shrunk towards the whole training set's mean by ``PRIOR`` pseudo-prompts;
cost in units of the baseline's mean cost per prompt). Raising λ trades quality for cost. Which
(R, λ) to use is decided by cross-fitting: fit on four fifths of the training prompts, route the
last fifth exactly as the sidecar will (a similarity-weighted vote of the k nearest examples'
labels), average over ``REPEATS`` fold shuffles (one shuffle's best of ~200 settings is optimistic
by about a point), and keep the cheapest (R, λ) whose out-of-fold quality is at least ``target``
times the baseline's. The chosen (R, λ) is then fitted on all training prompts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from numpy.typing import NDArray

from modelroute.embedding.knn import spherical_kmeans

Floats = NDArray[np.float64]
Vectors = NDArray[np.float32]
Ints = NDArray[np.int64]

REGIONS = (1, 3, 6, 12, 24)
LAMBDAS = tuple([0.0] + [float(x) for x in np.geomspace(0.002, 2.0, 40)])
PRIOR = 8.0
FOLDS = 5
REPEATS = 5  # cross-fitting repeated over this many fold shuffles (less selection noise)
K = 16


@dataclass(frozen=True)
class Fit:
    regions: int
    lam: float
    labels: Ints  # plan index of every training prompt (its region's plan)
    region_plan: Ints
    oof_quality: float  # out-of-fold quality as a fraction of the baseline's
    oof_cost: float  # out-of-fold cost as a fraction of the baseline's


def choose_plans(q: Floats, k: Floats, assign: Ints, regions: int, lam: float) -> Ints:
    """Plan index per region (q, k: (n, p) quality and cost in baseline units)."""
    prior_q, prior_k = q.mean(0), k.mean(0)
    out = np.zeros(regions, np.int64)
    for r in range(regions):
        rows = assign == r
        n = rows.sum()
        mean_q = (q[rows].sum(0) + PRIOR * prior_q) / (n + PRIOR)
        mean_k = (k[rows].sum(0) + PRIOR * prior_k) / (n + PRIOR)
        out[r] = int(np.argmax(mean_q - lam * mean_k))
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


def _oof(vecs: Vectors, q: Floats, k: Floats, regions: int, folds: Ints) -> tuple[Floats, Floats]:
    """Out-of-fold (quality, cost) totals per λ for one R: arrays of len(LAMBDAS)."""
    total_q = np.zeros(len(LAMBDAS))
    total_k = np.zeros(len(LAMBDAS))
    for f in range(FOLDS):
        tr, te = folds != f, folds == f
        _, assign = spherical_kmeans(vecs[tr], regions, seed=f)
        near, weights = neighbours(vecs[tr], vecs[te])
        for j, lam in enumerate(LAMBDAS):
            plan = choose_plans(q[tr], k[tr], assign, regions, lam)
            got = tally(near, weights, plan[assign], q.shape[1])
            total_q[j] += q[te][np.arange(te.sum()), got].sum()
            total_k[j] += k[te][np.arange(te.sum()), got].sum()
    return total_q, total_k


def fit(vecs: Vectors, q: Floats, k: Floats, baseline: int, target: float,
        progress: Callable[[int, int], None] | None = None) -> Fit:
    """Choose (R, λ) by cross-fitting and fit on everything. ``baseline``: the baseline's plan."""
    shuffles = []
    for seed in range(REPEATS):
        folds = np.arange(len(vecs)) % FOLDS
        np.random.default_rng(seed).shuffle(folds)
        shuffles.append(folds)
    base_q, base_k = q[:, baseline].sum(), k[:, baseline].sum()
    best: tuple[float, float, int, float] | None = None  # (cost, -quality, R, λ)
    fallback: tuple[float, float, int, float] | None = None
    for step, regions in enumerate(REGIONS):
        if regions * 8 > len(vecs):
            continue
        tq = np.zeros(len(LAMBDAS))
        tk = np.zeros(len(LAMBDAS))
        for folds in shuffles:
            oq, ok = _oof(vecs, q, k, regions, folds)
            tq += oq / len(shuffles)
            tk += ok / len(shuffles)
        for j, lam in enumerate(LAMBDAS):
            entry = (tk[j] / base_k, -tq[j] / base_q, regions, lam)
            if tq[j] >= target * base_q and (best is None or entry < best):
                best = entry
            if fallback is None or (-entry[1], -entry[0]) > (-fallback[1], -fallback[0]):
                fallback = entry
        if progress is not None:
            progress(step + 1, len(REGIONS))
    chosen = best or fallback
    assert chosen is not None
    cost, neg_quality, regions, lam = chosen
    _, assign = spherical_kmeans(vecs, regions, seed=0)
    plan = choose_plans(q, k, assign, regions, lam)
    return Fit(regions, lam, plan[assign], plan, -neg_quality, cost)
