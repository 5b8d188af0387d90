"""The spend-control request hook: budget reservations and their settlement.

- ``admit``: reserve the request's worst-case cost against every budget that applies, before any
  provider is called. When a budget cannot cover it: first drop fallbacks the budget cannot cover
  (the chosen model still serves), else downgrade (``onExceed.downgradeTo``: the decision becomes
  that model's chain, filtered by the router's ``eligible``), else reject (429 budget_exceeded).
- ``settled``: settle the reservation with the real cost (``ex.cost()``), whether the answer
  succeeded, failed or streamed.

Rate limits (``limits: {rpm, tpm}``) are the rate-limit feature's (:mod:`modelroute.ratelimits`).
One instance per sidecar app; its state (local budgets) outlives policy reloads.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from modelroute.policy import CompiledPolicy
from modelroute.routing import Decision, Skip
from modelroute.spend.batch_holds import BatchHolds
from modelroute.spend.config import NANO, ConfigCache, SpendConfig, from_nano, to_nano
from modelroute.spend.errors import BudgetExceeded
from modelroute.spend.estimate import chain_worst_case, worst_case_nano
from modelroute.spend.ledger import Ledger
from modelroute.spend.metrics import SpendMetrics
from modelroute.spend.store import BudgetKey, BudgetStore, LocalStore, Reservation, ReserveResult

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from modelroute.contract.hooks import Admission, RequestRecord

log = logging.getLogger("modelroute.spend")

#: A reservation lapses (in Redis) this long after the request's deadline, if never settled.
RESERVATION_GRACE_SECONDS = 600.0


@dataclass(slots=True)
class _Open:
    """What one request holds: a reservation."""

    keys: tuple[BudgetKey, ...] = ()
    reservation: Reservation | None = None
    store: BudgetStore | None = None


class SpendHook:
    def __init__(self) -> None:
        self.configs = ConfigCache()
        self.ledger = Ledger()
        self.metrics: SpendMetrics | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        #: Batches reserve and settle through this (handed to the batch feature by the composition root).
        self.batches = BatchHolds(self)

    def bind(self, registry: CollectorRegistry) -> SpendMetrics:
        """Count into the sidecar's registry (called when the feature starts)."""
        if self.metrics is None:
            self.metrics = self.ledger.metrics = SpendMetrics(registry)
        return self.metrics

    def _metrics(self) -> SpendMetrics:
        assert self.metrics is not None, "the spend feature was not started"
        return self.metrics

    bound = _metrics

    def phases(self, policy: CompiledPolicy) -> frozenset[str]:
        """Budgets take part in admission and settlement."""
        return frozenset({"admit", "settled"}) if self.configs.get(policy).budgets else frozenset()

    # -- admission ---------------------------------------------------------------------------

    async def admit(self, ex: Admission) -> None:
        cfg = self.configs.get(ex.policy)
        if not cfg.budgets or ex.view is None or ex.decision is None:
            return
        keys = self.ledger.keys(cfg, ex.policy.name, ex.headers)
        if not keys:
            return
        state = ex.slot(self, _Open)
        state.keys = keys
        ttl = float(ex.policy.timeouts.request_seconds) + RESERVATION_GRACE_SECONDS
        decision, tried = ex.decision, {ex.decision.model}
        while True:
            result, decision = await self._reserve(ex, cfg, keys, decision, ttl)
            if result.reservation is not None:
                state.reservation, state.store = result.reservation, result.reservation.store
                downgraded = decision.model != ex.decision.model
                self._count(ex, keys, "downgraded" if downgraded else "reserved", result)
                if downgraded:
                    ex.note("modelroute.budget.downgraded_to", str(decision.model))
                ex.replace_decision(decision)
                return
            assert result.failed is not None
            budget = result.failed.budget
            target = budget.downgrade_to
            if target is not None and target not in tried:
                tried.add(target)
                candidates, skipped = ex.runtime.eligible(ex.view, ex.policy.chain(target))
                if candidates:
                    decision = dataclasses.replace(decision, candidates=candidates, skipped=skipped, reviewer=None,
                                                   reason=f"budget {budget.name} exceeded: downgraded to {target}")
                    continue
            self._count(ex, (result.failed,), "rejected", result)
            raise self._exceeded(result)

    async def _reserve(self, ex: RequestRecord, cfg: SpendConfig, keys: tuple[BudgetKey, ...], decision: Decision,
                       ttl: float) -> tuple[ReserveResult, Decision]:
        """Reserve for ``decision``; when refused, retry once without the fallbacks that do not fit."""
        assert ex.view is not None
        costs = {m: worst_case_nano(ex.view, cfg.prices[m]) for m in decision.candidates}
        deciding = to_nano(decision.cost_usd) if decision.cost_usd else 0
        reviewed = decision.reviewer is not None
        amount = chain_worst_case(costs.values(), reviewed=reviewed) + deciding
        result = await self.ledger.reserve(cfg, keys, amount, ttl)
        if result.reservation is not None or reviewed:
            return result, decision
        fit = tuple(m for m in decision.candidates if costs[m] + deciding <= result.headroom)
        if not fit or fit[0] != decision.candidates[0] or len(fit) == len(decision.candidates):
            return result, decision
        assert result.failed is not None
        dropped = tuple(Skip(m, f"budget {result.failed.budget.name} cannot cover it") for m in decision.candidates if m not in fit)
        trimmed = dataclasses.replace(decision, candidates=fit, skipped=decision.skipped + dropped)
        retry = await self.ledger.reserve(cfg, keys, max(costs[m] for m in fit) + deciding, ttl)
        return (retry, trimmed) if retry.reservation is not None else (result, decision)

    def _exceeded(self, result: ReserveResult) -> BudgetExceeded:
        key = result.failed
        assert key is not None
        left = from_nano(max(0, result.headroom))
        wait = max(1, math.ceil(key.window_end.timestamp() - time.time()))
        return BudgetExceeded(
            key.budget.name,
            f"budget {key.budget.name!r} ({key.window}, limit USD {key.budget.limit_usd}) cannot cover this request: "
            f"USD {left} left, less than its worst-case cost",
            retry_after=wait,
        )

    def _count(self, ex: RequestRecord, keys: tuple[BudgetKey, ...], result: str, reserved: ReserveResult) -> None:
        metrics = self._metrics()
        for key in keys:
            metrics.decision(ex.policy.name, key.budget.name, result)
        if reserved.reservation is not None:
            metrics.levels(ex.policy.name, keys, reserved.levels)

    def skip(self, ex: RequestRecord, model: str) -> str | None:
        return None

    # -- settlement --------------------------------------------------------------------------

    def settled(self, ex: RequestRecord) -> None:
        state = ex.slot(self, _Open)
        keys = state.keys
        if not keys:  # not admitted (an operation without admission): count the spend all the same
            cfg = self.configs.get(ex.policy)
            if not cfg.budgets:
                return
            keys = self.ledger.keys(cfg, ex.policy.name, ex.headers)
            if not keys:
                return
            store = self.ledger.store_for(cfg)
        else:
            store = state.store if state.store is not None else self.ledger.local
        reservation = state.reservation
        actual = to_nano(ex.cost())
        if reservation is None and actual == 0:
            return
        self._settle(ex.policy.name, keys, reservation, actual, store)

    async def release_admission(self, ex: RequestRecord) -> None:
        """Give back what ``ex``'s admission reserved, now (a request deferred to a batch, which
        holds its own worst case at batch prices from here on)."""
        state = ex.slot(self, _Open)
        reservation, state.reservation = state.reservation, None
        if reservation is not None:
            levels = await self.ledger.settle(state.keys, reservation, 0, state.store or self.ledger.local)
            self._metrics().levels(ex.policy.name, state.keys, levels)

    def _settle(self, policy: str, keys: tuple[BudgetKey, ...], reservation: Reservation | None,
                actual: int, store: BudgetStore) -> None:
        metrics = self._metrics()
        if actual:
            for key in keys:
                metrics.spend(policy, key.budget.name, actual / NANO)
        if isinstance(store, LocalStore):  # synchronous: the budget is free again at once
            metrics.levels(policy, keys, store.settle_now(keys, reservation, actual))
            return

        async def run() -> None:
            levels = await self.ledger.settle(keys, reservation, actual, store)
            metrics.levels(policy, keys, levels)

        task = asyncio.get_running_loop().create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("settling a budget reservation failed", exc_info=task.exception())

    async def drain(self) -> None:
        """Wait for settlements in flight (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        await self.drain()
        await self.ledger.close()
