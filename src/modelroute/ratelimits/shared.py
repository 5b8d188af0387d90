"""Buckets shared by every sidecar of a fleet, in Redis, leased out in small slices.

One hash per (provider key, upstream model, kind) holds ``{level, stamp}``; one Lua script
(:data:`LEASE`) refills it by the time passed (capacity and rate come with each call: the policy's
limits, else the limit the provider reported), applies the provider's latest ``remaining`` as a
ceiling (the fleet cannot have more than the provider says is left), takes back units a sidecar
leased and did not use, and grants a lease: the units a request needs plus a small slice
(:func:`slice_of`), or nothing and the wait until there would be room above the floor that other
routes' reserves hold. Every kind of one key is one call, and concurrent requests of a sidecar
share one call in flight, so a request waits for Redis only when its sidecar's lease has run dry;
a lease is topped up in the background before it does. Units left in a lease for more than
:data:`LEASE_SECONDS` go back with the next call.

When Redis cannot be reached the store is marked down for :data:`RETRY_SECONDS` and requests
are decided by the sidecar's own view (its policy buckets and the provider's figures), counted.
``redis`` is imported here only.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import time
from collections.abc import Callable

from modelroute.ratelimits.buckets import RateLimitSkip
from modelroute.ratelimits.config import SharedStore
from modelroute.ratelimits.state import NAMES

log = logging.getLogger("modelroute.ratelimits")

LEASE_SECONDS = 1.0
RETRY_SECONDS = 1.0
#: A slice: at most this share of the capacity, and this many seconds of the key's refill and of
#: this sidecar's own use (measured with a half-life of USE_HALF_LIFE seconds).
SLICE_SHARE, SLICE_SECONDS, USE_HALF_LIFE = 0.01, 0.25, 2.0

#: KEYS: one hash per kind. ARGV[1]: now (ms); per key 7 values: capacity, rate (units per ms),
#: units given back, units wanted, units needed, ceiling (-1: none), floor. Returns per key:
#: granted, wait (ms), level after, as strings.
LEASE = """
local now = tonumber(ARGV[1])
local out = {}
for i, key in ipairs(KEYS) do
  local b = 1 + (i - 1) * 7
  local cap, rate = tonumber(ARGV[b + 1]), tonumber(ARGV[b + 2])
  local give, want, need = tonumber(ARGV[b + 3]), tonumber(ARGV[b + 4]), tonumber(ARGV[b + 5])
  local ceiling, floor = tonumber(ARGV[b + 6]), tonumber(ARGV[b + 7])
  local state = redis.call('HMGET', key, 'level', 'stamp')
  local level, stamp = tonumber(state[1]), tonumber(state[2])
  if level == nil or stamp == nil then level, stamp = cap, now end
  if now > stamp then
    if level < cap then level = math.min(cap, level + (now - stamp) * rate) end
    stamp = now
  end
  if level > cap then level = cap end
  level = math.min(cap, level + give)
  if ceiling >= 0 and ceiling < level then level = ceiling end
  local grant, wait = 0, 0
  if need > 0 then
    if need >= cap then
      if level >= cap then grant = need else wait = (cap - level) / rate end
    elseif level - need >= floor then
      grant = need + math.max(0, math.min(want - need, level - need - floor))
    else
      wait = (need + floor - level) / rate
    end
  elseif want > 0 and level - floor > 0 then
    grant = math.min(want, level - floor)
  end
  level = level - grant
  redis.call('HSET', key, 'level', tostring(level), 'stamp', tostring(stamp))
  redis.call('PEXPIRE', key, math.floor(cap / rate * 2) + 60000)
  out[#out + 1] = tostring(grant)
  out[#out + 1] = tostring(wait)
  out[#out + 1] = tostring(level)
end
return out
"""


def slice_of(capacity: float, rate: float, own_rate: float) -> float:
    """Whole units leased beyond a request's need: what this sidecar uses in
    :data:`SLICE_SECONDS`, within a small share of the limit. None for small limits or a quiet
    sidecar, where units held by one sidecar would be requests refused to another."""
    return float(math.floor(max(0.0, min(capacity * SLICE_SHARE, rate * SLICE_SECONDS, own_rate * SLICE_SECONDS))))


def _safe(part: str) -> str:
    if part.isascii() and all(c.isalnum() or c in "-_." for c in part):
        return part
    return "h" + hashlib.sha256(part.encode()).hexdigest()[:24]


class SharedKey:
    """This sidecar's leases on one key's shared buckets."""

    __slots__ = ("names", "caps", "rates", "units", "expires", "empty_until", "empty_floor", "ceilings", "level", "filling",
                 "used", "used_at")

    def __init__(self, prefix: str, ident: str, upstream: str) -> None:
        base = f"{prefix}:rl:{{{ident}:{_safe(upstream)}}}"
        self.names = tuple(f"{base}:{name}" for name in NAMES)
        n = len(NAMES)
        self.caps: list[float | None] = [None] * n  # None: no shared bucket of that kind
        self.rates = [0.0] * n
        self.units = [0.0] * n
        self.expires = [0.0] * n
        self.empty_until = [0.0] * n
        self.empty_floor = [0.0] * n  # the floor Redis had no room above (a route with a reserve may still)
        self.ceilings: list[float | None] = [None] * n
        self.level: list[float | None] = [None] * n  # as last seen in Redis
        self.filling: asyncio.Future[None] | None = None
        self.used = [0.0] * n  # units this sidecar took, decayed
        self.used_at = 0.0

    def limit(self, kind: int, capacity: float | None) -> None:
        self.caps[kind] = capacity
        self.rates[kind] = capacity / 60.0 if capacity else 0.0

    def covers(self, amounts: list[float], now: float) -> bool:
        return all(cap is None or not amounts[i] or (self.units[i] >= amounts[i] and now < self.expires[i])
                   for i, cap in enumerate(self.caps))

    def empty(self, amounts: list[float], now: float, floor: float) -> RateLimitSkip | None:
        """Why the fleet has no room, when Redis said so lately (above no lower floor than
        ``floor``) and the lease cannot cover it."""
        for i, cap in enumerate(self.caps):
            if cap is not None and amounts[i] and now < self.empty_until[i] and self.units[i] < amounts[i] \
                    and floor >= self.empty_floor[i]:
                return RateLimitSkip("shared", NAMES[i], self.empty_until[i] - now)
        return None

    def take(self, amounts: list[float], now: float) -> None:
        decay = 0.5 ** ((now - self.used_at) / USE_HALF_LIFE) if now > self.used_at else 1.0
        self.used_at = max(now, self.used_at)
        for i, cap in enumerate(self.caps):
            self.used[i] = self.used[i] * decay + amounts[i]
            if cap is not None:
                self.units[i] -= amounts[i]

    def slice(self, kind: int) -> float:
        cap = self.caps[kind]
        own_rate = self.used[kind] * math.log(2) / USE_HALF_LIFE
        return slice_of(cap, self.rates[kind], own_rate) if cap is not None else 0.0

    def low(self, now: float) -> bool:
        """A lease worth topping up before a request has to wait for it."""
        for i, cap in enumerate(self.caps):
            size = self.slice(i)
            if cap is not None and size > 0 and now >= self.empty_until[i] and (self.units[i] < size / 2 or now >= self.expires[i]):
                return True
        return False


class SharedBuckets:
    """The fleet's buckets in one Redis, and this sidecar's leases on them."""

    def __init__(self, store: SharedStore, clock: Callable[[], float], on_error: Callable[[bool], None]) -> None:
        import redis.asyncio as aioredis
        from redis.exceptions import RedisError

        self.store = store
        self._errors: tuple[type[BaseException], ...] = (RedisError, OSError, asyncio.TimeoutError)
        self._client = aioredis.Redis.from_url(store.redis_url, socket_timeout=store.timeout_seconds,
                                               socket_connect_timeout=store.timeout_seconds, retry_on_timeout=False)
        self._script = self._client.register_script(LEASE)
        self._clock = clock
        self._on_error = on_error
        self._down_until = 0.0
        self.keys: dict[tuple[str, str], SharedKey] = {}
        self.round_trips = 0
        self._tasks: set[asyncio.Task[None]] = set()

    def key(self, ident: str, upstream: str) -> SharedKey:
        found = self.keys.get((ident, upstream))
        if found is None:
            found = self.keys[(ident, upstream)] = SharedKey(self.store.key_prefix, ident, upstream)
        return found

    @property
    def up(self) -> bool:
        return not self._down_until or time.monotonic() >= self._down_until

    async def fill(self, key: SharedKey, amounts: list[float], floor: float) -> None:
        """Lease what ``amounts`` lack (and a slice more) in one call; joins a call in flight."""
        while key.filling is not None:
            await asyncio.shield(key.filling)
            if key.covers(amounts, self._clock()):
                return
        if not self.up:
            return
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        key.filling = done
        try:
            await self._call(key, amounts, floor)
        finally:
            key.filling = None
            done.set_result(None)

    def top_up(self, key: SharedKey, floor: float) -> None:
        """Fill a low lease in the background (no request waits on it)."""
        if key.filling is not None or not self.up:
            return
        task = asyncio.get_running_loop().create_task(self.fill(key, [0.0] * len(key.caps), floor))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def correct(self, key: SharedKey, kind: int, remaining: float, in_flight: float = 0.0) -> None:
        """The provider says ``remaining`` units are left: the fleet's bucket holds no more, less
        what this sidecar holds and sent since (leased, not yet seen by the provider); sent with
        the next call, or in the background."""
        remaining -= max(0.0, key.units[kind]) + in_flight
        ceiling = key.ceilings[kind]
        key.ceilings[kind] = remaining if ceiling is None else min(ceiling, remaining)
        self.top_up(key, 0.0)

    async def _call(self, key: SharedKey, amounts: list[float], floor: float) -> None:
        now = self._clock()
        names: list[str] = []
        args: list[float] = [int(now * 1000)]
        sent: list[int] = []
        for i, cap in enumerate(key.caps):
            if cap is None:
                continue
            rate = key.rates[i]
            give = 0.0
            if now >= key.expires[i] and key.units[i] > 0:  # an old lease goes back
                give, key.units[i] = key.units[i], 0.0
            need = max(0.0, amounts[i] - key.units[i]) if amounts[i] else 0.0
            want = need + key.slice(i)
            ceiling = key.ceilings[i]
            key.ceilings[i] = None
            names.append(key.names[i])
            args += [cap, rate / 1000, give, want, need, -1 if ceiling is None else max(0.0, ceiling), floor * cap]
            sent.append(i)
        if not sent:
            return
        try:
            async with asyncio.timeout(self.store.timeout_seconds * 2):
                out = await self._script(keys=names, args=args)
        except self._errors as exc:
            self._down_until = time.monotonic() + RETRY_SECONDS
            log.warning("rate-limit store unreachable (%s); deciding on this sidecar's own view", type(exc).__name__)
            self._on_error(False)
            return
        self.round_trips += 1
        if self._down_until:
            self._down_until = 0.0
            self._on_error(True)
        now = self._clock()
        for j, i in enumerate(sent):
            grant, wait, level = float(out[3 * j]), float(out[3 * j + 1]), float(out[3 * j + 2])
            key.level[i] = level
            if grant > 0:
                key.units[i] += grant
                key.expires[i] = now + LEASE_SECONDS
                key.empty_until[i] = 0.0
            elif wait > 0:
                key.empty_until[i] = now + wait / 1000
                key.empty_floor[i] = floor

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._client.aclose()


def key_ident(base_url: str, key: str | None) -> str:
    """Which provider key a bucket belongs to: a digest of the endpoint and the key (the key
    itself is never stored or shown)."""
    return hashlib.sha256(f"{base_url}\0{key or ''}".encode()).hexdigest()[:16]


__all__ = ["LEASE", "SharedBuckets", "SharedKey", "key_ident", "slice_of"]
