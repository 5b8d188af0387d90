"""Nearest neighbours by cosine similarity over unit vectors: exact for small sets, IVF for large.

An inverted-file index (spherical k-means cells, vectors stored cell by cell) keeps a lookup over
50,000 examples near half a millisecond: the query is compared with the cell centroids, then only
with the vectors of the ``probes`` nearest cells. Below ``EXACT_BELOW`` examples the scan is exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

Matrix = NDArray[np.float32]
Ints = NDArray[np.int64]

#: Libraries smaller than this are scanned exactly (a scan of 4,096 x 384 takes ~0.1 ms).
EXACT_BELOW = 4096


def normalise(x: Matrix) -> Matrix:
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    out: Matrix = (x / np.maximum(norms, 1e-12)).astype(np.float32)
    return out


def spherical_kmeans(x: Matrix, k: int, *, iterations: int = 12, seed: int = 0) -> tuple[Matrix, Ints]:
    """(unit centroids (k, d), assignment (n,)) of unit vectors ``x``. Deterministic for a seed."""
    rng = np.random.default_rng(seed)
    k = max(1, min(k, len(x)))
    centroids = x[rng.choice(len(x), k, replace=False)].copy()
    assign = np.zeros(len(x), np.int64)
    for _ in range(iterations):
        assign = np.argmax(x @ centroids.T, axis=1)
        onehot = np.zeros((len(x), k), np.float32)
        onehot[np.arange(len(x)), assign] = 1.0
        sums = onehot.T @ x
        empty = np.bincount(assign, minlength=k) == 0
        sums[empty] = x[rng.choice(len(x), int(empty.sum()), replace=False)] if empty.any() else sums[empty]
        centroids = normalise(sums)
    return centroids, np.argmax(x @ centroids.T, axis=1)


@dataclass(frozen=True)
class Neighbours:
    index: Ints  # positions in the library, nearest first
    similarity: Matrix  # cosine similarities, same order


class VectorIndex:
    """k-nearest-neighbour search over unit vectors (rows of ``vectors``)."""

    def __init__(self, vectors: Matrix, *, cells: int | None = None, probes: int = 16, seed: int = 0) -> None:
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        n = len(self.vectors)
        self.exact = n < EXACT_BELOW
        self.probes = probes
        if self.exact:
            return
        cells = cells or int(max(16, round(np.sqrt(n))))
        sample = self.vectors if n <= 20_000 else self.vectors[np.random.default_rng(seed).choice(n, 20_000, replace=False)]
        self.centroids, _ = spherical_kmeans(sample, cells, seed=seed)
        assign = np.argmax(self.vectors @ self.centroids.T, axis=1)
        self.order = np.argsort(assign, kind="stable")
        self.sorted = np.ascontiguousarray(self.vectors[self.order])
        counts = np.bincount(assign, minlength=len(self.centroids))
        self.starts = np.concatenate([[0], np.cumsum(counts)])

    def __len__(self) -> int:
        return len(self.vectors)

    def search(self, query: Matrix, k: int) -> Neighbours:
        """The ``k`` nearest examples to the unit vector ``query`` (shape (d,))."""
        q = np.asarray(query, dtype=np.float32).reshape(-1)
        if self.exact:
            return _top(self.vectors @ q, np.arange(len(self.vectors)), k)
        near = np.argpartition(-(self.centroids @ q), min(self.probes, len(self.centroids)) - 1)[:self.probes]
        sims = np.concatenate([self.sorted[self.starts[c]:self.starts[c + 1]] @ q for c in near])
        ids = np.concatenate([self.order[self.starts[c]:self.starts[c + 1]] for c in near])
        return _top(sims, ids, k)


def _top(sims: Matrix, ids: Ints, k: int) -> Neighbours:
    k = min(k, len(sims))
    if k <= 0:
        return Neighbours(np.zeros(0, np.int64), np.zeros(0, np.float32))
    part = np.argpartition(-sims, k - 1)[:k] if k < len(sims) else np.arange(len(sims))
    best = part[np.argsort(-sims[part], kind="stable")]
    return Neighbours(ids[best].astype(np.int64), sims[best].astype(np.float32))
