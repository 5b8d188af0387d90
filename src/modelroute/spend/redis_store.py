"""Budgets shared by every replica: reservations made atomically in Redis by Lua scripts.

Per budget key a hash ``{spent, reserved}`` (integer nano-USD) and a sorted set of the
reservations held (member ``<id>:<amount>``, score = when it lapses). The reserve script first
returns lapsed reservations (a sidecar that died mid-request cannot hold budget for ever), then
checks every key and reserves on all of them or none, in one step: two sidecars together never
take more than the limit. Keys of one policy share a hash tag, so the scripts work on a cluster.
Keys expire a day after their window ends.

``redis`` is imported here only: a policy without ``budgetStore`` never loads it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from modelroute.spend.errors import StoreUnavailable
from modelroute.spend.store import BudgetKey, BudgetStore, Level, Reservation, ReserveResult

#: KEYS: budget hashes. ARGV: amount, member, lapse-after ms, then per key: limit, expire-at ms.
RESERVE = """
local amount = tonumber(ARGV[1])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {0, 0, 0}
local failed = 0
local headroom = nil
for i, key in ipairs(KEYS) do
  local held = key .. ':r'
  for _, m in ipairs(redis.call('ZRANGEBYSCORE', held, '-inf', now)) do
    redis.call('HINCRBY', key, 'reserved', -tonumber(string.match(m, ':(%d+)$')))
    redis.call('ZREM', held, m)
  end
  local spent = tonumber(redis.call('HGET', key, 'spent') or '0')
  local reserved = tonumber(redis.call('HGET', key, 'reserved') or '0')
  local room = tonumber(ARGV[2 + 2 * i]) - spent - reserved
  if headroom == nil or room < headroom then headroom = room end
  if failed == 0 and amount > room then failed = i end
  out[#out + 1] = spent
  out[#out + 1] = reserved
end
out[2], out[3] = failed, headroom or 0
if failed > 0 then return out end
out[1], out[3] = 1, (headroom or 0) - amount
for i, key in ipairs(KEYS) do
  local expire = tonumber(ARGV[3 + 2 * i])
  redis.call('HINCRBY', key, 'reserved', amount)
  redis.call('ZADD', key .. ':r', now + tonumber(ARGV[3]), ARGV[2])
  redis.call('PEXPIREAT', key, expire)
  redis.call('PEXPIREAT', key .. ':r', expire)
  out[3 + 2 * i] = out[3 + 2 * i] + amount
end
return out
"""

#: KEYS: budget hashes. ARGV: member ('' for none), amount held, actual cost, then per key: expire-at ms.
SETTLE = """
local out = {}
for i, key in ipairs(KEYS) do
  if ARGV[1] ~= '' and redis.call('ZREM', key .. ':r', ARGV[1]) == 1 then
    redis.call('HINCRBY', key, 'reserved', -tonumber(ARGV[2]))
  end
  local spent = redis.call('HINCRBY', key, 'spent', tonumber(ARGV[3]))
  redis.call('PEXPIREAT', key, tonumber(ARGV[3 + i]))
  out[#out + 1] = spent
  out[#out + 1] = tonumber(redis.call('HGET', key, 'reserved') or '0')
end
return out
"""

#: KEYS: the settlement's marker, then budget hashes. ARGV: member ('' for none), amount held,
#: actual cost, marker lifetime ms, then per budget key: expire-at ms. {0} when the marker was
#: already set (settled before, by this sidecar or another): nothing changes.
SETTLE_ONCE = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'PX', tonumber(ARGV[4])) then
  return {0}
end
local out = {1}
for i = 2, #KEYS do
  local key = KEYS[i]
  if ARGV[1] ~= '' and redis.call('ZREM', key .. ':r', ARGV[1]) == 1 then
    redis.call('HINCRBY', key, 'reserved', -tonumber(ARGV[2]))
  end
  local spent = redis.call('HINCRBY', key, 'spent', tonumber(ARGV[3]))
  redis.call('PEXPIREAT', key, tonumber(ARGV[3 + i]))
  out[#out + 1] = spent
  out[#out + 1] = tonumber(redis.call('HGET', key, 'reserved') or '0')
end
return out
"""

_EXPIRE_AFTER_MS = 86_400_000
#: How long a settlement marker is kept: longer than any batch record lives.
MARKER_TTL_MS = 40 * 86_400_000


def _expire_at(key: BudgetKey) -> int:
    return int(key.window_end.timestamp() * 1000) + _EXPIRE_AFTER_MS


def _levels(flat: list[Any]) -> list[Level]:
    return [Level(int(flat[i]), int(flat[i + 1])) for i in range(0, len(flat), 2)]


class RedisStore(BudgetStore):
    name = "redis"

    def __init__(self, url: str, timeout_seconds: float = 0.25) -> None:
        import redis.asyncio as aioredis
        from redis.exceptions import RedisError

        self._errors: tuple[type[BaseException], ...] = (RedisError, OSError, asyncio.TimeoutError)
        self._client = aioredis.Redis.from_url(url, socket_timeout=timeout_seconds, socket_connect_timeout=timeout_seconds,
                                               retry_on_timeout=False)
        self._reserve = self._client.register_script(RESERVE)
        self._settle = self._client.register_script(SETTLE)
        self._settle_once = self._client.register_script(SETTLE_ONCE)
        self._timeout = timeout_seconds

    async def _run(self, script: Any, keys: list[str], args: list[Any]) -> list[Any]:
        try:
            async with asyncio.timeout(self._timeout * 2):
                result = await script(keys=keys, args=args)
        except self._errors as exc:
            raise StoreUnavailable(type(exc).__name__) from None
        return list(result)

    async def reserve(self, keys: tuple[BudgetKey, ...], amount: int, ttl_seconds: float) -> ReserveResult:
        reservation = Reservation(keys, amount, self)
        args: list[Any] = [amount, f"{reservation.id}:{amount}", int(ttl_seconds * 1000)]
        for key in keys:
            args += [key.limit, _expire_at(key)]
        out = await self._run(self._reserve, [k.storage_key for k in keys], args)
        ok, failed, headroom = int(out[0]), int(out[1]), int(out[2])
        levels = _levels(out[3:])
        if not ok:
            return ReserveResult(None, keys[failed - 1], headroom, levels)
        return ReserveResult(reservation, None, headroom, levels)

    async def settle(self, keys: tuple[BudgetKey, ...], reservation: Reservation | None, actual: int) -> list[Level]:
        member = f"{reservation.id}:{reservation.amount}" if reservation is not None else ""
        held = reservation.amount if reservation is not None else 0
        args: list[Any] = [member, held, actual, *(_expire_at(k) for k in keys)]
        return _levels(await self._run(self._settle, [k.storage_key for k in keys], args))

    async def settle_once(self, keys: tuple[BudgetKey, ...], reservation: Reservation | None, actual: int,
                          marker: str) -> list[Level] | None:
        member = f"{reservation.id}:{reservation.amount}" if reservation is not None else ""
        held = reservation.amount if reservation is not None else 0
        args: list[Any] = [member, held, actual, MARKER_TTL_MS, *(_expire_at(k) for k in keys)]
        out = await self._run(self._settle_once, [marker, *(k.storage_key for k in keys)], args)
        return _levels(out[1:]) if int(out[0]) else None

    async def read(self, keys: tuple[BudgetKey, ...]) -> list[Level]:
        try:
            async with asyncio.timeout(self._timeout * 2):
                async with self._client.pipeline(transaction=False) as pipe:
                    for key in keys:
                        pipe.hmget(key.storage_key, "spent", "reserved")
                    rows = await pipe.execute()
        except self._errors as exc:
            raise StoreUnavailable(type(exc).__name__) from None
        return [Level(int(r[0] or 0), int(r[1] or 0)) for r in rows]

    async def close(self) -> None:
        await self._client.aclose()
