"""Batches under budgets: the worst case held from submission until the provider finishes, then settled once.

A batch is admitted when it is submitted (``POST /v1/batches``, ``POST /v1/messages/batches``, a
deferred request): the worst case of each of its requests at batch prices
(:func:`~modelroute.spend.estimate.batch_worst_case_nano`) is reserved, all together, against every
budget its creating request's headers put it under, or the batch is refused (429
``budget_exceeded``). The reservation is held for the batch's window plus
:data:`HOLD_GRACE_SECONDS` (in Redis it lapses after that even if no sidecar ever settles it).

The :class:`Hold` travels as a token in the batch's record, so whichever sidecar sees the batch
finish, this one or another sharing the store, or this one restarted, settles it: the cost is
added to the budgets of the window the batch was admitted in (the one that made room for it, so no
window goes over its limit) and the hold is freed, in one step guarded by a marker per batch
(:meth:`~modelroute.spend.store.BudgetStore.settle_once`): a batch's cost counts once.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from modelroute.contract.spend import Work
from modelroute.spend.config import Budget, SpendConfig, from_nano, to_nano
from modelroute.spend.errors import BudgetExceeded
from modelroute.spend.estimate import batch_worst_case_nano
from modelroute.spend.store import BudgetKey, BudgetStore, Level, LocalStore, Reservation, ReserveResult

if TYPE_CHECKING:
    from decimal import Decimal

    from modelroute.contract.hooks import RequestRecord
    from modelroute.policy import CompiledPolicy
    from modelroute.spend.hook import SpendHook

#: How long after its window a batch's hold may still be settled before it lapses (polling delays).
HOLD_GRACE_SECONDS = 6 * 3600.0


@dataclass(frozen=True, slots=True)
class HeldKey:
    budget: str
    scope: str
    window: str
    window_end: float  # epoch seconds
    storage_key: str


@dataclass(frozen=True, slots=True)
class Hold:
    """What a batch holds, as a token its record keeps."""

    shared: bool  # in the policy's shared store (else this sidecar's memory)
    reservation: str  # the reservation's id
    amount: int  # nano-USD
    keys: tuple[HeldKey, ...]

    def token(self) -> str:
        return json.dumps({"v": 1, "shared": self.shared, "id": self.reservation, "amount": self.amount,
                           "keys": [[k.budget, k.scope, k.window, k.window_end, k.storage_key] for k in self.keys]})

    @classmethod
    def parse(cls, token: str) -> Hold:
        raw = json.loads(token)
        keys = tuple(HeldKey(str(b), str(s), str(w), float(e), str(k)) for b, s, w, e, k in raw["keys"])
        return cls(bool(raw["shared"]), str(raw["id"]), int(raw["amount"]), keys)

    def marker(self, ident: str) -> str:
        """The settlement marker of batch ``ident``, in the hash slot of the budget keys."""
        first = self.keys[0].storage_key
        return first[: first.index("}") + 1] + ":batch-settled:" + ident

    def budget_keys(self, cfg: SpendConfig) -> tuple[BudgetKey, ...]:
        """The held keys, with the current policy's budget where it still has one by that name."""
        budgets = {b.name: b for b in cfg.budgets}
        out = []
        for k in self.keys:
            budget = budgets.get(k.budget) or Budget(k.budget, k.window.split(":", 1)[0], 0)
            out.append(BudgetKey(budget, k.scope, k.window, datetime.fromtimestamp(k.window_end, UTC), k.storage_key))
        return tuple(out)


class BatchHolds:
    """Spend control's side of :class:`~modelroute.contract.spend.BatchSpend`."""

    def __init__(self, hook: SpendHook) -> None:
        self.hook = hook

    async def hold(self, policy: CompiledPolicy, headers: Mapping[str, str], work: Sequence[Work], ident: str,
                   seconds: float, replacing: RequestRecord | None = None) -> str | None:
        hook = self.hook
        if replacing is not None:
            await hook.release_admission(replacing)
        cfg = hook.configs.get(policy)
        keys = hook.ledger.keys(cfg, policy.name, headers) if cfg.budgets else ()
        if not keys:
            return None
        amount = sum(batch_worst_case_nano(w, cfg.prices[w.model]) for w in work)
        result = await hook.ledger.reserve(cfg, keys, amount, seconds + HOLD_GRACE_SECONDS)
        metrics = hook.bound()
        if result.reservation is None:
            assert result.failed is not None
            metrics.decision(policy.name, result.failed.budget.name, "rejected")
            raise _exceeded(result, amount)
        for key in keys:
            metrics.decision(policy.name, key.budget.name, "reserved")
        metrics.levels(policy.name, keys, result.levels)
        held = tuple(HeldKey(k.budget.name, k.scope, k.window, k.window_end.timestamp(), k.storage_key) for k in keys)
        shared = not isinstance(result.reservation.store, LocalStore)
        return Hold(shared, result.reservation.id, amount, held).token()

    def _open(self, policy: CompiledPolicy, token: str) -> tuple[Hold, tuple[BudgetKey, ...], Reservation, BudgetStore]:
        hold = Hold.parse(token)
        cfg = self.hook.configs.get(policy)
        store = self.hook.ledger.store_for(cfg) if hold.shared else self.hook.ledger.local
        keys = hold.budget_keys(cfg)
        return hold, keys, Reservation(keys, hold.amount, store, id=hold.reservation), store

    async def release(self, policy: CompiledPolicy, token: str | None) -> None:
        if token is None:
            return
        _, keys, reservation, store = self._open(policy, token)
        levels = await self.hook.ledger.settle(keys, reservation, 0, store)
        self._levels(policy, keys, levels)

    async def settle(self, policy: CompiledPolicy, token: str | None, ident: str, usd: Decimal) -> bool:
        if token is None:
            return True
        hold, keys, reservation, store = self._open(policy, token)
        actual = to_nano(usd)
        levels = await self.hook.ledger.settle_once(keys, reservation, actual, store, hold.marker(ident))
        if levels is None:
            return False
        metrics = self.hook.bound()
        for key in keys:
            metrics.spend(policy.name, key.budget.name, actual / 10**9)
        self._levels(policy, keys, levels)
        return True

    def _levels(self, policy: CompiledPolicy, keys: tuple[BudgetKey, ...], levels: list[Level]) -> None:
        """Gauges for the keys whose budget the current policy still has."""
        known = {b.name for b in self.hook.configs.get(policy).budgets}
        rows = [(k, lv) for k, lv in zip(keys, levels) if k.budget.name in known]
        if rows:
            self.hook.bound().levels(policy.name, tuple(k for k, _ in rows), [lv for _, lv in rows])


def _exceeded(result: ReserveResult, amount: int) -> BudgetExceeded:
    key = result.failed
    assert key is not None
    left = from_nano(max(0, result.headroom))
    wait = max(1, math.ceil(key.window_end.timestamp() - time.time()))
    return BudgetExceeded(
        key.budget.name,
        f"budget {key.budget.name!r} ({key.window}, limit USD {key.budget.limit_usd}) cannot cover this batch: "
        f"USD {left} left, less than its worst-case cost of USD {from_nano(amount)} at batch prices",
        retry_after=wait,
    )


__all__ = ["BatchHolds", "HOLD_GRACE_SECONDS", "Hold"]
