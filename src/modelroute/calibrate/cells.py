"""Cells: the units the fit buys quality for, a region or a region and what one model answered.

How often a cheap model is right depends on what it answered. On Winogrande Yi-34B answers A on
61% of the prompts and is right 73% of those times, but 81% of the times it answers B; on ARC it
is right 84% of the times it answers C and 93% when it answers B or D. So a region can be served
*by answer*: the sidecar asks the first model (the most accurate cheap one) and then, by what it
said, accepts the answer, checks it by agreement, or escalates it (a cascade's ``byAnswer`` rules).

A region is *conditional* when most of its training prompts get one of the first model's
frequent answers (``keys``: a letter, an option; free text such as code never repeats). Its cells
are one per key plus one for any other answer, and only plans that start with the first model
serve them. A plain region is one cell, and any plan serves it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

Ints = NDArray[np.int64]
Bools = NDArray[np.bool_]

MIN_KEY_SHARE = 0.02  # an answer is a key when at least this share of the training prompts get it
MIN_KEY_COUNT = 20
CONDITIONAL_SHARE = 0.5  # a region is conditional when at least this share of its prompts get a key


def frequent_answers(normalised: list[str]) -> tuple[str, ...]:
    """The keys: normalised answers frequent enough to fit a cell on, most frequent first."""
    least = max(MIN_KEY_COUNT, MIN_KEY_SHARE * len(normalised))
    return tuple(a for a, n in Counter(normalised).most_common() if a and n >= least)


def key_ids(normalised: list[str], keys: tuple[str, ...]) -> Ints:
    """Each answer's key index; ``len(keys)`` for any other answer."""
    index = {k: i for i, k in enumerate(keys)}
    return np.array([index.get(a, len(keys)) for a in normalised], np.int64)


@dataclass(frozen=True)
class Conditioning:
    """What the fit needs to serve regions by answer: the first model's key of every training
    prompt, the keys, and which plans may serve a conditional cell (those starting with it)."""

    first: str
    keys: tuple[str, ...]
    key: Ints  # per training prompt
    plans: Bools  # per plan


@dataclass(frozen=True)
class Layout:
    """The cells of a fit: region r is cells ``offsets[r]`` .. (one, or ``len(keys) + 1``)."""

    conditional: tuple[bool, ...]  # per region
    keys: tuple[str, ...]

    @property
    def sizes(self) -> Ints:
        return np.array([len(self.keys) + 1 if c else 1 for c in self.conditional], np.int64)

    @property
    def offsets(self) -> Ints:
        return np.concatenate([[0], np.cumsum(self.sizes)[:-1]]).astype(np.int64)

    @property
    def cells(self) -> int:
        return int(self.sizes.sum())

    def cell(self, regions: Ints, keys: Ints) -> Ints:
        """The cell of each prompt given its region and its first-model key."""
        conditional = np.array(self.conditional, bool)[regions]
        cells: Ints = self.offsets[regions] + np.where(conditional, keys, 0)
        return cells

    def allowed(self, plans: int, conditioning: Conditioning | None) -> Bools:
        """(cells, plans): which plans may serve each cell."""
        out = np.ones((self.cells, plans), bool)
        if conditioning is not None:
            for r in np.flatnonzero(self.conditional):
                out[self.offsets[r]:self.offsets[r] + self.sizes[r]] = conditioning.plans
        return out


def plain(regions: int) -> Layout:
    return Layout((False,) * regions, ())


def layout(assign: Ints, regions: int, conditioning: Conditioning | None, key: Ints) -> Layout:
    """Which regions are conditional, from the training prompts' regions and keys."""
    if conditioning is None or not conditioning.keys:
        return plain(regions)
    keyed = key < len(conditioning.keys)
    conditional = tuple(bool((assign == r).any() and keyed[assign == r].mean() >= CONDITIONAL_SHARE)
                        for r in range(regions))
    return Layout(conditional, conditioning.keys)
