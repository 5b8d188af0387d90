"""Spend settings of one compiled policy, read once per policy version from ``policy.extensions``.

The spec sections are ``budgets`` and ``budgetStore`` (schema in :mod:`modelroute.policy.schema`),
plus the route-level ``batch: preferred`` carried as ``extensions["routeBatch"]``. Money is held
in integer nano-USD (1e-9 USD) so that stores add and compare exactly (Redis integers, Lua).
Prices are held in pico-USD per token (a registry price of USD 0.15 per 1M tokens is 150,000).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal
from typing import Any

from modelroute.policy import CompiledPolicy

NANO = 10**9
#: Budget keys of a header scope: longer header values are cut to this length.
MAX_SCOPE_VALUE = 128


def to_nano(usd: Decimal | float) -> int:
    """USD as integer nano-USD, rounded up (spend is never under-counted)."""
    return int((Decimal(str(usd)) * NANO).to_integral_value(rounding=ROUND_CEILING))


def from_nano(nano: int) -> Decimal:
    return Decimal(nano) / NANO


def _pico_per_token(price_per_million: float) -> int:
    return int((Decimal(str(price_per_million)) * 10**6).to_integral_value(rounding=ROUND_CEILING))


@dataclass(frozen=True, slots=True)
class Budget:
    name: str
    window: str  # hour | day | week | month
    limit_nano: int
    header: str | None = None  # None: the whole policy; else one budget per value of this header
    downgrade_to: str | None = None  # None: reject

    @property
    def limit_usd(self) -> Decimal:
        return from_nano(self.limit_nano)

    def scope_value(self, headers: Mapping[str, str]) -> str | None:
        """The scope key of a request ('' for policy scope), or None when the budget does not apply."""
        if self.header is None:
            return ""
        value = headers.get(self.header)
        return None if value is None else value[:MAX_SCOPE_VALUE]


@dataclass(frozen=True, slots=True)
class StoreConfig:
    redis_url: str | None = None
    key_prefix: str = "modelroute"
    timeout_seconds: float = 0.25
    fail_open: bool = False


@dataclass(frozen=True, slots=True)
class Prices:
    """A model's prices for worst-case estimates: pico-USD per token, and its output cap."""

    input: int
    output: int
    max_output: int | None  # the registry's maxOutputTokens
    context_window: int | None
    batch_discount: float | None = None  # share of the price paid through the batch API


@dataclass(frozen=True, slots=True)
class SpendConfig:
    version: str
    budgets: tuple[Budget, ...] = ()
    store: StoreConfig = StoreConfig()
    batch_routes: frozenset[str] = frozenset()  # routes with batch: preferred
    prices: Mapping[str, Prices] = field(default_factory=dict)


def _budget(raw: Mapping[str, Any]) -> Budget:
    scope = raw.get("scope", "policy")
    on_exceed = raw.get("onExceed", "reject")
    return Budget(
        name=str(raw["name"]),
        window=str(raw["window"]),
        limit_nano=to_nano(raw["limitUSD"]),
        header=str(scope["header"]).lower() if isinstance(scope, Mapping) else None,
        downgrade_to=str(on_exceed["downgradeTo"]) if isinstance(on_exceed, Mapping) else None,
    )


def _store(raw: Mapping[str, Any]) -> StoreConfig:
    redis = raw.get("redis") or {}
    return StoreConfig(
        redis_url=redis.get("url"),
        key_prefix=str(redis.get("keyPrefix", "modelroute")),
        timeout_seconds=float(redis.get("timeoutMs", 250)) / 1000,
        fail_open=raw.get("onUnavailable", "failClosed") == "failOpen",
    )


def build(policy: CompiledPolicy) -> SpendConfig:
    ext = policy.extensions
    prices = {
        name: Prices(_pico_per_token(m.pricing.input), _pico_per_token(m.pricing.output),
                     m.max_output_tokens, m.context_window, m.pricing.batch_discount)
        for name, m in policy.models.items()
    }
    return SpendConfig(
        version=policy.version,
        budgets=tuple(_budget(b) for b in ext.get("budgets") or ()),
        store=_store(ext.get("budgetStore") or {}),
        batch_routes=frozenset(k for k, v in (ext.get("routeBatch") or {}).items() if v == "preferred"),
        prices=prices,
    )


class ConfigCache:
    """SpendConfig per policy version (a handful are alive at once: the active one and draining ones)."""

    def __init__(self, size: int = 8) -> None:
        self._items: dict[str, SpendConfig] = {}
        self._size = size
        self._lock = threading.Lock()

    def get(self, policy: CompiledPolicy) -> SpendConfig:
        cfg = self._items.get(policy.version)
        if cfg is None:
            cfg = build(policy)
            with self._lock:
                if len(self._items) >= self._size:
                    self._items.pop(next(iter(self._items)))
                self._items[policy.version] = cfg
        return cfg
