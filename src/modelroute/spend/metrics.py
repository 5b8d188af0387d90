"""Spend metrics, on the sidecar's own Prometheus registry.

Labels stay bounded: policy and budget names come from the policy; ``scope`` is the value of a
budget's scope header (empty for policy-wide budgets), exported for at most
:data:`MAX_SCOPES` values per budget (the rest are still enforced, and shown by ``GET /v1/budgets``).
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from modelroute.spend.config import NANO
from modelroute.spend.store import BudgetKey, Level

MAX_SCOPES = 100


class SpendMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        scoped = ["policy", "budget", "scope"]
        self.limit = Gauge("modelroute_budget_limit_usd", "A budget's limit per window.", ["policy", "budget"], registry=r)
        self.spent = Gauge("modelroute_budget_spent_usd", "USD settled in the budget's current window (as last seen).", scoped, registry=r)
        self.reserved = Gauge("modelroute_budget_reserved_usd", "USD held by requests in flight (as last seen).", scoped, registry=r)
        self.remaining = Gauge("modelroute_budget_remaining_usd", "USD left in the current window (limit - spent - reserved).", scoped, registry=r)
        self.settled = Counter("modelroute_budget_spend_usd", "USD settled against a budget by this sidecar.", ["policy", "budget"], registry=r)
        self.decisions = Counter(
            "modelroute_budget_decisions", "Budget checks by result (reserved, downgraded, rejected).", ["policy", "budget", "result"], registry=r
        )
        self.degraded = Gauge(
            "modelroute_budget_store_degraded", "1 while the shared budget store is unreachable and budgets are kept locally (failOpen).",
            ["store"], registry=r,
        )
        self.store_errors = Counter("modelroute_budget_store_errors", "Budget store operations that failed.", ["store"], registry=r)
        self._series: dict[tuple[str, str, str], tuple[Any, Any, Any] | None] = {}
        self._per_budget: dict[tuple[str, str], int] = {}
        self._decisions: dict[tuple[str, str, str], Any] = {}

    def spend(self, policy: str, budget: str, usd: float) -> None:
        child = self._decisions.get((policy, budget, ""))
        if child is None:
            child = self._decisions[(policy, budget, "")] = self.settled.labels(policy, budget)
        child.inc(usd)

    def decision(self, policy: str, budget: str, result: str) -> None:
        child = self._decisions.get((policy, budget, result))
        if child is None:
            child = self._decisions[(policy, budget, result)] = self.decisions.labels(policy, budget, result)
        child.inc()

    def _children(self, policy: str, key: BudgetKey) -> tuple[Any, Any, Any] | None:
        """The gauges of one (policy, budget, scope), looked up once (labels() takes a lock)."""
        ident = (policy, key.budget.name, key.scope)
        if ident in self._series:
            return self._series[ident]
        count = self._per_budget.get(ident[:2], 0)
        series = None
        if count < MAX_SCOPES:
            self._per_budget[ident[:2]] = count + 1
            self.limit.labels(policy, key.budget.name).set(key.budget.limit_nano / NANO)
            series = (self.spent.labels(*ident), self.reserved.labels(*ident), self.remaining.labels(*ident))
        self._series[ident] = series
        return series

    def levels(self, policy: str, keys: tuple[BudgetKey, ...], levels: list[Level]) -> None:
        for key, level in zip(keys, levels, strict=False):
            series = self._children(policy, key)
            if series is not None:
                series[0].set(level.spent / NANO)
                series[1].set(level.reserved / NANO)
                series[2].set((key.budget.limit_nano - level.spent - level.reserved) / NANO)
