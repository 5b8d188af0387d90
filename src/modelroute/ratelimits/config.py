"""Rate-limit settings of one compiled policy, read once per policy version.

They come from the registry's ``limits: {rpm, tpm}`` and from the ``rateLimits`` section (schema
in :mod:`modelroute.policy.schema`, rules in :mod:`modelroute.policy.validate_ratelimits`):
``store: shared`` keeps the buckets in the Redis of ``budgetStore``, ``providerHeaders: ignore``
stops learning from the providers' headers, ``reserve`` holds a share of a model's limit for a
route. A policy with neither limits nor the section watches no model and pays nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from modelroute.policy import CompiledPolicy


@dataclass(frozen=True, slots=True)
class Reserve:
    """``share`` of a model's limit that only requests of ``route`` may use."""

    route: str
    share: float


@dataclass(frozen=True, slots=True)
class ModelLimits:
    model: str
    provider: str
    upstream: str
    rpm: int | None = None
    tpm: int | None = None
    reserves: tuple[Reserve, ...] = ()

    def floor(self, route: str | None) -> float:
        """The share of the limit a request of ``route`` must leave untouched (others' reserves)."""
        if not self.reserves:
            return 0.0
        return sum(r.share for r in self.reserves if r.route != route)


@dataclass(frozen=True, slots=True)
class SharedStore:
    redis_url: str
    key_prefix: str = "modelroute"
    timeout_seconds: float = 0.25


@dataclass(frozen=True, slots=True)
class RateLimitConfig:
    version: str
    models: Mapping[str, ModelLimits] = field(default_factory=dict)  # the models watched
    follow_headers: bool = True
    store: SharedStore | None = None

    @property
    def active(self) -> bool:
        return bool(self.models)


def build(policy: CompiledPolicy) -> RateLimitConfig:
    section: Mapping[str, Any] | None = policy.extensions.get("rateLimits")
    raw = section or {}
    reserves: dict[str, list[Reserve]] = {}
    for item in raw.get("reserve") or ():
        names = item.get("models") or list(policy.models)
        for name in names:
            reserves.setdefault(str(name), []).append(Reserve(str(item["route"]), float(item["share"])))
    models = {
        name: ModelLimits(name, m.provider, m.upstream_model, m.limits.rpm, m.limits.tpm, tuple(reserves.get(name, ())))
        for name, m in policy.models.items()
        if section is not None or m.limits.rpm is not None or m.limits.tpm is not None
    }
    store = None
    redis = (policy.extensions.get("budgetStore") or {}).get("redis") or {}
    if raw.get("store") == "shared" and redis.get("url"):
        store = SharedStore(str(redis["url"]), str(redis.get("keyPrefix", "modelroute")),
                            float(redis.get("timeoutMs", 250)) / 1000)
    return RateLimitConfig(policy.version, models, raw.get("providerHeaders", "follow") == "follow", store)


class ConfigCache:
    """RateLimitConfig per policy version (the active one and a few draining ones)."""

    def __init__(self, size: int = 8) -> None:
        self._items: dict[str, RateLimitConfig] = {}
        self._size = size
        self._lock = threading.Lock()

    def get(self, policy: CompiledPolicy) -> RateLimitConfig:
        cfg = self._items.get(policy.version)
        if cfg is None:
            cfg = build(policy)
            with self._lock:
                if len(self._items) >= self._size:
                    self._items.pop(next(iter(self._items)))
                self._items[policy.version] = cfg
        return cfg
