"""A/B experiments: split a route's traffic between models, sticky per caller.

``spec.experiments[]`` names the routes it ``appliesTo``; once the router has chosen a route, an
experiment on that route replaces the chosen model with its arm's model. Assignment is sticky: the
value of the ``key`` header, hashed with the experiment's name, always lands in the same arm (so a
user sees one model for the whole experiment, and two experiments split independently). Requests
without the key are split at random, by weight.

The arm is reported in ``Decision.annotations`` (``experiment``, ``arm``), which the proxy turns
into the ``x-modelroute-arm`` header, span attributes and per-arm metrics.
"""

from __future__ import annotations

import hashlib
import random
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from modelroute.routing.request import RequestView

#: Hash values are mapped to [0, 1) with this many buckets (2^52: exact in a float).
_SCALE = float(1 << 52)


@dataclass(frozen=True, slots=True)
class Arm:
    name: str
    model: str
    weight: float


@dataclass(frozen=True, slots=True)
class Assignment:
    experiment: str
    arm: str
    model: str
    sticky: bool  # assigned by the key (False: the request had no key and was split at random)


class Experiment:
    """One experiment, compiled: cumulative weights for a bisect per request."""

    __slots__ = ("_bounds", "arms", "key_header", "name", "routes")

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.name = str(config["name"])
        key = config.get("key") or {}
        self.key_header: str | None = str(key["header"]).lower() if key.get("header") else None
        self.arms = tuple(Arm(str(a["name"]), str(a["model"]), float(a.get("weight", 1))) for a in config["arms"])
        self.routes = frozenset(str(r) for r in config["appliesTo"])
        total = sum(a.weight for a in self.arms)
        bounds, running = [], 0.0
        for arm in self.arms:
            running += arm.weight / total
            bounds.append(running)
        bounds[-1] = 1.0
        self._bounds = tuple(bounds)

    def point(self, key: str | None, rng: random.Random) -> float:
        """Where a caller falls in [0, 1): a hash of (experiment, key), or random without a key."""
        if key is None:
            return rng.random()
        digest = hashlib.blake2b(f"{self.name}\x00{key}".encode(), digest_size=8).digest()
        return (int.from_bytes(digest, "big") >> 12) / _SCALE

    def arm_at(self, point: float) -> Arm:
        index = bisect_right(self._bounds, point)
        return self.arms[min(index, len(self.arms) - 1)]

    def assign(self, view: RequestView, rng: random.Random) -> Assignment:
        key = view.headers.get(self.key_header) if self.key_header else None
        arm = self.arm_at(self.point(key, rng))
        return Assignment(self.name, arm.name, arm.model, key is not None)


class Experiments:
    """The experiments of a policy, found by route name."""

    def __init__(self, configs: Sequence[Mapping[str, Any]], seed: int | None = None) -> None:
        self.items = tuple(Experiment(c) for c in configs)
        self._by_route = {route: exp for exp in self.items for route in exp.routes}
        self._rng = random.Random(seed)

    def __bool__(self) -> bool:
        return bool(self._by_route)

    @classmethod
    def from_extensions(cls, extensions: Mapping[str, Any]) -> Experiments:
        return cls(extensions.get("experiments") or [])

    def assign(self, view: RequestView, route: str) -> Assignment | None:
        """The arm of this request when an experiment splits ``route``, else None."""
        exp = self._by_route.get(route)
        return exp.assign(view, self._rng) if exp is not None else None
