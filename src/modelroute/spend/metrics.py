"""Spend metrics, on the sidecar's own Prometheus registry.

Labels stay bounded: policy and budget names come from the policy; ``scope`` is the value of a
budget's scope header (empty for policy-wide budgets), exported for at most
:data:`MAX_SCOPES` values per budget (the rest are still enforced, and shown by ``GET /v1/budgets``).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from modelroute.spend.config import from_nano
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
        self.rate_skips = Counter(
            "modelroute_rate_limit_skips", "Candidates skipped because the sidecar's rpm/tpm bucket for them was empty.", ["model", "limit"], registry=r
        )
        self._scopes: dict[tuple[str, str], set[str]] = {}

    def levels(self, policy: str, keys: tuple[BudgetKey, ...], levels: list[Level]) -> None:
        for key, level in zip(keys, levels):
            seen = self._scopes.setdefault((policy, key.budget.name), set())
            if key.scope not in seen:
                if len(seen) >= MAX_SCOPES:
                    continue
                seen.add(key.scope)
                self.limit.labels(policy, key.budget.name).set(float(key.budget.limit_usd))
            labels = (policy, key.budget.name, key.scope)
            self.spent.labels(*labels).set(float(from_nano(level.spent)))
            self.reserved.labels(*labels).set(float(from_nano(level.reserved)))
            self.remaining.labels(*labels).set(float(from_nano(key.limit - level.spent - level.reserved)))
