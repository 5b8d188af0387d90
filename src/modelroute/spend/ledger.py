"""The ledger: which budget keys a request is subject to, and the store that holds them.

With ``budgetStore.redis`` the shared Redis store is used; when it cannot be reached the ledger
marks it down for :data:`RETRY_SECONDS` (no request waits on a dead store meanwhile) and either
keeps accounts in this process (``onUnavailable: failOpen``, flagged by
``modelroute_budget_store_degraded``) or refuses (``failClosed``, the default: a budget is a hard
limit). Without ``budgetStore`` budgets are this sidecar's own.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from modelroute.spend import windows
from modelroute.spend.config import SpendConfig, StoreConfig, from_nano
from modelroute.spend.errors import BudgetStoreDown, StoreUnavailable
from modelroute.spend.metrics import SpendMetrics
from modelroute.spend.store import (
    BudgetKey,
    BudgetStore,
    Level,
    LocalStore,
    Reservation,
    ReserveResult,
)

log = logging.getLogger("modelroute.spend")

RETRY_SECONDS = 1.0
#: Scope values remembered per budget window for ``GET /v1/budgets``.
MAX_SEEN = 1000
#: Budget keys kept built (a key is rebuilt when its window changes or after the cache was cleared).
MAX_KEYS = 10_000


def _safe(part: str) -> str:
    """A key part without separators or braces (they would break the key or the hash tag)."""
    if part.isascii() and all(c.isalnum() or c in "-_." for c in part):
        return part
    return "h" + hashlib.sha256(part.encode()).hexdigest()[:24]


class Ledger:
    def __init__(self, metrics: SpendMetrics | None = None, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock  # wall-clock seconds (UTC windows)
        self.local = LocalStore()
        self.metrics = metrics
        self._shared: dict[StoreConfig, BudgetStore] = {}
        self._down_until = 0.0
        self._windows: dict[str, tuple[float, datetime, str]] = {}  # kind -> (ends at, end, label)
        self.seen: dict[tuple[str, str, str], dict[str, BudgetKey]] = {}  # (policy, budget, window) -> scope -> key
        self._keys: dict[tuple[str, str, str, str], BudgetKey] = {}  # (version, budget, window, scope) -> key

    # -- keys --------------------------------------------------------------------------------

    def _window(self, kind: str) -> tuple[datetime, str]:
        now = self.clock()
        cached = self._windows.get(kind)
        if cached is None or now >= cached[0]:
            start, end = windows.bounds(kind, datetime.fromtimestamp(now, UTC))
            cached = self._windows[kind] = (end.timestamp(), end, windows.label(kind, start))
        return cached[1], cached[2]

    def keys(self, cfg: SpendConfig, policy: str, headers: Mapping[str, str]) -> tuple[BudgetKey, ...]:
        out = []
        for budget in cfg.budgets:
            scope = budget.scope_value(headers)
            if scope is None:
                continue
            end, label = self._window(budget.window)
            ident = (cfg.version, budget.name, label, scope)
            key = self._keys.get(ident)
            if key is None:
                key = self._key(cfg, policy, scope, end, label, budget.name, ident)
            out.append(key)
        return tuple(out)

    def _key(self, cfg: SpendConfig, policy: str, scope: str, end: datetime, label: str, budget: str,
             ident: tuple[str, str, str, str]) -> BudgetKey:
        spec = next(b for b in cfg.budgets if b.name == budget)
        name = f"{cfg.store.key_prefix}:{{{_safe(policy)}}}:{_safe(budget)}:{label}:{_safe(scope) if scope else ''}"
        key = BudgetKey(spec, scope, label, end, name)
        if len(self._keys) >= MAX_KEYS:
            self._keys.clear()
        self._keys[ident] = key
        seen = self.seen.setdefault((policy, budget, label), {})
        if scope not in seen and len(seen) < MAX_SEEN:
            seen[scope] = key
        return key

    # -- stores ------------------------------------------------------------------------------

    def store_for(self, cfg: SpendConfig) -> BudgetStore:
        if cfg.store.redis_url is None:
            return self.local
        store = self._shared.get(cfg.store)
        if store is None:
            from modelroute.spend.redis_store import RedisStore

            store = self._shared[cfg.store] = RedisStore(cfg.store.redis_url, cfg.store.timeout_seconds)
        return store

    def _mark(self, store: BudgetStore, up: bool) -> None:
        if up:
            if self._down_until:
                self._down_until = 0.0
                if self.metrics:
                    self.metrics.degraded.labels(store.name).set(0)
            return
        self._down_until = time.monotonic() + RETRY_SECONDS
        if self.metrics:
            self.metrics.store_errors.labels(store.name).inc()
            self.metrics.degraded.labels(store.name).set(1)

    def _fallback(self, cfg: SpendConfig) -> LocalStore:
        if not cfg.store.fail_open:
            raise BudgetStoreDown()
        return self.local

    async def reserve(self, cfg: SpendConfig, keys: tuple[BudgetKey, ...], amount: int, ttl: float) -> ReserveResult:
        store = self.store_for(cfg)
        if store is self.local:
            return self.local.reserve_now(keys, amount)
        if self._down_until and time.monotonic() < self._down_until:
            return self._fallback(cfg).reserve_now(keys, amount)
        try:
            result = await store.reserve(keys, amount, ttl)
        except StoreUnavailable as exc:
            log.warning("budget store %s unreachable (%s); %s", store.name, exc, "failing open" if cfg.store.fail_open else "failing closed")
            self._mark(store, up=False)
            return self._fallback(cfg).reserve_now(keys, amount)
        self._mark(store, up=True)
        return result

    async def settle(self, keys: tuple[BudgetKey, ...], reservation: Reservation | None, actual: int,
                     store: BudgetStore) -> list[Level]:
        if isinstance(store, LocalStore):
            return store.settle_now(keys, reservation, actual)
        try:
            levels = await store.settle(keys, reservation, actual)
        except StoreUnavailable:
            self._mark(store, up=False)
            log.warning("budget store %s unreachable while settling; USD %s counted locally", store.name, from_nano(actual))
            return self.local.settle_now(keys, None, actual)
        self._mark(store, up=True)
        return levels

    async def settle_once(self, keys: tuple[BudgetKey, ...], reservation: Reservation | None, actual: int,
                          store: BudgetStore, marker: str) -> list[Level] | None:
        """Settle once per ``marker`` (None: settled before). An unreachable store raises
        StoreUnavailable rather than counting locally: the caller (a batch) retries until the
        shared store has it, so it is neither lost nor counted twice."""
        if isinstance(store, LocalStore):
            return store.settle_once_now(keys, reservation, actual, marker)
        try:
            levels = await store.settle_once(keys, reservation, actual, marker)
        except StoreUnavailable:
            self._mark(store, up=False)
            raise
        self._mark(store, up=True)
        return levels

    async def snapshot(self, cfg: SpendConfig, policy: str) -> list[dict[str, Any]]:
        """Every budget of the policy in its current window, per scope value this sidecar has seen."""
        store = self.store_for(cfg)
        rows: list[dict[str, Any]] = []
        for budget in cfg.budgets:
            end, label = self._window(budget.window)
            keys = tuple(self.seen.get((policy, budget.name, label), {}).values())
            if budget.header is None and not keys:
                keys = self.keys(SpendConfig(cfg.version, (budget,), cfg.store), policy, {})
            source = store.name
            try:
                levels = await store.read(keys) if keys else []
            except StoreUnavailable:
                self._mark(store, up=False)
                levels, source = await self.local.read(keys), "local"
            for key, level in zip(keys, levels):
                rows.append({
                    "budget": budget.name, "scope": {"header": budget.header, "value": key.scope} if budget.header else "policy",
                    "window": label, "window_ends": end.isoformat().replace("+00:00", "Z"),
                    "limit_usd": float(budget.limit_usd), "spent_usd": float(from_nano(level.spent)),
                    "reserved_usd": float(from_nano(level.reserved)),
                    "remaining_usd": float(from_nano(budget.limit_nano - level.spent - level.reserved)),
                    "on_exceed": {"downgrade_to": budget.downgrade_to} if budget.downgrade_to else "reject", "store": source,
                })
        return rows

    async def close(self) -> None:
        for store in self._shared.values():
            await store.close()
        self._shared.clear()
