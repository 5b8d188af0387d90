"""Budget stores: where spend and reservations per budget window live.

A store keeps, per budget key (policy, budget, calendar window, scope value), two integers in
nano-USD: ``spent`` (settled) and ``reserved`` (held by requests in flight). ``reserve`` is
all-or-nothing over every key a request is subject to: it succeeds only when ``spent + reserved +
amount <= limit`` holds for each. ``settle`` releases the reservation and adds the real cost.

:class:`LocalStore` is this process's memory (a reservation is one synchronous step on the event
loop, so concurrent requests cannot both take the last dollar). :class:`~modelroute.spend.redis_store.RedisStore`
does the same atomically in Redis, shared by every replica.
"""

from __future__ import annotations

import abc
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from modelroute.spend.config import Budget

#: Settlement markers a local store remembers (each a few dozen bytes).
MAX_MARKERS = 10_000


@dataclass(frozen=True, slots=True)
class BudgetKey:
    budget: Budget
    scope: str  # '' for a policy-wide budget, else the header value
    window: str  # e.g. day:2026-11-01
    window_end: datetime
    storage_key: str

    @property
    def limit(self) -> int:
        return self.budget.limit_nano


@dataclass(frozen=True, slots=True)
class Level:
    spent: int = 0
    reserved: int = 0


@dataclass(slots=True)
class Reservation:
    keys: tuple[BudgetKey, ...]
    amount: int
    store: BudgetStore
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])


@dataclass(slots=True)
class ReserveResult:
    reservation: Reservation | None  # None: refused
    failed: BudgetKey | None  # the first budget that could not cover the amount
    headroom: int  # the smallest room left over the keys (before this request, when refused)
    levels: list[Level]


class BudgetStore(abc.ABC):
    name = "store"

    @abc.abstractmethod
    async def reserve(self, keys: tuple[BudgetKey, ...], amount: int, ttl_seconds: float) -> ReserveResult: ...

    @abc.abstractmethod
    async def settle(self, keys: tuple[BudgetKey, ...], reservation: Reservation | None, actual: int) -> list[Level]:
        """Release ``reservation`` (if any) and add ``actual`` to every key."""

    @abc.abstractmethod
    async def settle_once(self, keys: tuple[BudgetKey, ...], reservation: Reservation | None, actual: int,
                          marker: str) -> list[Level] | None:
        """:meth:`settle`, unless a settlement marked ``marker`` already happened (then None):
        a batch is settled once whichever sidecar, restarted or not, sees it finish."""

    @abc.abstractmethod
    async def read(self, keys: tuple[BudgetKey, ...]) -> list[Level]: ...

    async def close(self) -> None:
        return None


class LocalStore(BudgetStore):
    """Spend in this process's memory; windows that ended are dropped."""

    name = "local"

    def __init__(self) -> None:
        self._levels: dict[str, list[int]] = {}
        self._ends: dict[str, float] = {}
        self._held: dict[str, int] = {}  # reservation id -> amount still held
        self._settled: dict[str, None] = {}  # markers of settle_once, the newest MAX_MARKERS

    def reserve_now(self, keys: tuple[BudgetKey, ...], amount: int) -> ReserveResult:
        """The synchronous reservation (atomic on the event loop)."""
        self._expire()
        rows = [self._row(k) for k in keys]
        rooms = [k.limit - row[0] - row[1] for k, row in zip(keys, rows)]
        headroom = min(rooms) if rooms else 0
        for key, room in zip(keys, rooms):
            if amount > room:
                return ReserveResult(None, key, headroom, [Level(r[0], r[1]) for r in rows])
        for row in rows:
            row[1] += amount
        reservation = Reservation(keys, amount, self)
        self._held[reservation.id] = amount
        return ReserveResult(reservation, None, headroom - amount, [Level(r[0], r[1]) for r in rows])

    def settle_now(self, keys: tuple[BudgetKey, ...], reservation: Reservation | None, actual: int) -> list[Level]:
        held = self._held.pop(reservation.id, 0) if reservation is not None else 0
        out = []
        for key in keys:
            row = self._row(key)
            row[1] = max(0, row[1] - held)
            row[0] += actual
            out.append(Level(row[0], row[1]))
        return out

    def settle_once_now(self, keys: tuple[BudgetKey, ...], reservation: Reservation | None, actual: int,
                        marker: str) -> list[Level] | None:
        if marker in self._settled:
            return None
        self._settled[marker] = None
        if len(self._settled) > MAX_MARKERS:  # a marker outlives its batch's record, which is capped lower
            del self._settled[next(iter(self._settled))]
        return self.settle_now(keys, reservation, actual)

    async def settle_once(self, keys: tuple[BudgetKey, ...], reservation: Reservation | None, actual: int,
                          marker: str) -> list[Level] | None:
        return self.settle_once_now(keys, reservation, actual, marker)

    async def reserve(self, keys: tuple[BudgetKey, ...], amount: int, ttl_seconds: float) -> ReserveResult:
        return self.reserve_now(keys, amount)

    async def settle(self, keys: tuple[BudgetKey, ...], reservation: Reservation | None, actual: int) -> list[Level]:
        return self.settle_now(keys, reservation, actual)

    async def read(self, keys: tuple[BudgetKey, ...]) -> list[Level]:
        out = []
        for key in keys:
            row = self._levels.get(key.storage_key)
            out.append(Level(row[0], row[1]) if row else Level())
        return out

    def _row(self, key: BudgetKey) -> list[int]:
        row = self._levels.get(key.storage_key)
        if row is None:
            row = self._levels[key.storage_key] = [0, 0]
            self._ends[key.storage_key] = key.window_end.timestamp()
        return row

    def _expire(self) -> None:
        if len(self._levels) < 1024:
            return
        now = time.time()
        for name in [n for n, end in self._ends.items() if end < now]:
            self._levels.pop(name, None)
            self._ends.pop(name, None)
