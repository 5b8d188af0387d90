"""Where batch records live: this sidecar's memory, or the budget store's Redis when the policy has one.

With ``budgetStore.redis`` every replica of an app, and a restarted sidecar, sees the same
records: a batch made through one sidecar can be read, cancelled or polled through another, and
its cost is recorded once (:meth:`RecordStore.mark_recorded` is atomic). Without it records live
in memory, bounded by :data:`MAX_BATCHES`: finished batches are evicted oldest first (counted);
when every record is of a batch still running, a new batch is refused (429 ``too_many_batches``)
rather than a running batch forgotten with its spend.

Redis layout (one hash tag per policy, like the budget keys)::

    <prefix>:{<policy>}:batch:<id>          hash  doc (the record's JSON), recorded (its cost, once)
    <prefix>:{<policy>}:batch:<id>:poll     string  which sidecar polls it now (a lease)
    <prefix>:{<policy>}:batches:open        set   ids of batches not yet recorded
    <prefix>:{<policy>}:batches:<kind>      zset  ids by creation time (the newest MAX_INDEXED), for listing

Records expire :data:`RECORD_TTL_SECONDS` after their last change. ``redis`` is imported only here.
"""

from __future__ import annotations

import abc
import asyncio
import hashlib
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from modelroute.batch.records import ANTHROPIC, OPENAI, BatchRecord
from modelroute.contract.errors import ClientError
from modelroute.policy import CompiledPolicy

#: Records kept in a sidecar's memory; the open ones of a shared store.
MAX_BATCHES = 1000
MAX_OPEN_SHARED = 10_000
MAX_INDEXED = 10_000
RECORD_TTL_SECONDS = 30 * 86_400


class TooManyBatches(ClientError):
    status = 429
    type = "rate_limit_error"

    def __init__(self, limit: int) -> None:
        super().__init__(f"{limit} batches are still running in this sidecar's store, its limit; retry once some have ended",
                         code="too_many_batches", headers={"retry-after": "60"})


class BatchStoreDown(ClientError):
    status = 503
    type = "server_error"

    def __init__(self) -> None:
        super().__init__("the batch store (the budget store's Redis) is unreachable", code="batch_store_unavailable",
                         headers={"retry-after": "1"})


class RecordStore(abc.ABC):
    @abc.abstractmethod
    async def check_room(self) -> None:
        """TooManyBatches when a new record could not be kept (checked before a batch is started)."""

    @abc.abstractmethod
    async def add(self, record: BatchRecord) -> None:
        """Keep a new record; TooManyBatches when full of running batches."""

    @abc.abstractmethod
    async def put(self, record: BatchRecord) -> None:
        """Save a record's changes (its parts as last seen, a cancel)."""

    @abc.abstractmethod
    async def get(self, ident: str) -> BatchRecord | None: ...

    @abc.abstractmethod
    async def open_ids(self) -> list[str]:
        """Ids of the batches whose cost is not recorded yet."""

    @abc.abstractmethod
    async def claim(self, ident: str, owner: str, seconds: float) -> bool:
        """Whether ``owner`` may poll ``ident`` now (no other sidecar is polling it)."""

    @abc.abstractmethod
    async def unclaim(self, ident: str, owner: str) -> None: ...

    @abc.abstractmethod
    async def mark_recorded(self, record: BatchRecord, cost: Decimal) -> bool:
        """Record ``cost`` unless a cost was recorded before; True the first time. ``record.cost``
        is the recorded cost after."""

    @abc.abstractmethod
    async def remove(self, ident: str) -> None: ...

    @abc.abstractmethod
    async def listed(self, kind: str) -> list[str]:
        """Ids of the records of ``kind``, newest first."""

    async def get_many(self, idents: list[str]) -> list[BatchRecord]:
        found = [await self.get(i) for i in idents]
        return [r for r in found if r is not None]

    async def close(self) -> None:
        return None


class LocalRecords(RecordStore):
    def __init__(self, limit: int = MAX_BATCHES, evicted: Callable[[], None] = lambda: None) -> None:
        self.records: dict[str, BatchRecord] = {}
        self.limit = limit
        self.evicted = evicted  # counts an eviction (metrics)
        self._claims: set[str] = set()

    def _evictable(self) -> str | None:
        return next((i for i, r in self.records.items() if r.cost is not None), None)

    async def check_room(self) -> None:
        if len(self.records) >= self.limit and self._evictable() is None:
            raise TooManyBatches(self.limit)

    async def add(self, record: BatchRecord) -> None:
        while len(self.records) >= self.limit:
            oldest = self._evictable()
            if oldest is None:
                raise TooManyBatches(self.limit)
            del self.records[oldest]
            self.evicted()
        self.records[record.id] = record

    async def put(self, record: BatchRecord) -> None:
        if record.id in self.records:
            self.records[record.id] = record

    async def get(self, ident: str) -> BatchRecord | None:
        return self.records.get(ident)

    async def open_ids(self) -> list[str]:
        return [i for i, r in self.records.items() if r.cost is None]

    async def claim(self, ident: str, owner: str, seconds: float) -> bool:
        if ident in self._claims:
            return False
        self._claims.add(ident)
        return True

    async def unclaim(self, ident: str, owner: str) -> None:
        self._claims.discard(ident)

    async def mark_recorded(self, record: BatchRecord, cost: Decimal) -> bool:
        kept = self.records.get(record.id, record)
        first = kept.cost is None
        if first:
            kept.cost = cost
        record.cost = kept.cost
        return first

    async def remove(self, ident: str) -> None:
        self.records.pop(ident, None)

    async def listed(self, kind: str) -> list[str]:
        return [i for i, r in reversed(self.records.items()) if r.kind == kind]


def _safe(part: str) -> str:
    """A key part without separators or braces."""
    if part.isascii() and all(c.isalnum() or c in "-_." for c in part):
        return part
    return "h" + hashlib.sha256(part.encode()).hexdigest()[:24]


_UNCLAIM = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"


class RedisRecords(RecordStore):
    def __init__(self, url: str, prefix: str, policy: str, timeout_seconds: float = 0.25) -> None:
        import redis.asyncio as aioredis
        from redis.exceptions import RedisError

        self._errors: tuple[type[BaseException], ...] = (RedisError, OSError, asyncio.TimeoutError)
        self._client = aioredis.Redis.from_url(url, socket_timeout=timeout_seconds, socket_connect_timeout=timeout_seconds,
                                               retry_on_timeout=False)
        self._unclaim = self._client.register_script(_UNCLAIM)
        self._base = f"{prefix}:{{{_safe(policy)}}}"
        self._timeout = max(1.0, timeout_seconds * 4)

    def _key(self, ident: str) -> str:
        return f"{self._base}:batch:{ident}"

    @property
    def _open(self) -> str:
        return f"{self._base}:batches:open"

    def _index(self, kind: str) -> str:
        return f"{self._base}:batches:{kind}"

    async def _do(self, work: Callable[[Any], Any]) -> Any:
        try:
            async with asyncio.timeout(self._timeout):
                return await work(self._client)
        except self._errors:
            raise BatchStoreDown() from None

    async def check_room(self) -> None:
        if int(await self._do(lambda c: c.scard(self._open))) >= MAX_OPEN_SHARED:
            raise TooManyBatches(MAX_OPEN_SHARED)

    async def add(self, record: BatchRecord) -> None:
        async def run(c: Any) -> None:
            async with c.pipeline(transaction=True) as pipe:
                key = self._key(record.id)
                pipe.hset(key, "doc", record.to_json())
                pipe.expire(key, RECORD_TTL_SECONDS)
                pipe.sadd(self._open, record.id)
                pipe.zadd(self._index(record.kind), {record.id: record.created_at})
                pipe.zremrangebyrank(self._index(record.kind), 0, -MAX_INDEXED - 1)
                await pipe.execute()

        await self._do(run)

    async def put(self, record: BatchRecord) -> None:
        async def run(c: Any) -> None:
            async with c.pipeline(transaction=True) as pipe:
                pipe.hset(self._key(record.id), "doc", record.to_json())
                pipe.expire(self._key(record.id), RECORD_TTL_SECONDS)
                await pipe.execute()

        await self._do(run)

    async def get(self, ident: str) -> BatchRecord | None:
        doc, recorded = await self._do(lambda c: c.hmget(self._key(ident), "doc", "recorded"))
        return self._load(doc, recorded)

    @staticmethod
    def _load(doc: bytes | None, recorded: bytes | None) -> BatchRecord | None:
        if doc is None:
            return None
        record = BatchRecord.from_json(doc)
        record.cost = Decimal(recorded.decode()) if recorded is not None else None
        return record

    async def open_ids(self) -> list[str]:
        return sorted(m.decode() for m in await self._do(lambda c: c.smembers(self._open)))

    async def claim(self, ident: str, owner: str, seconds: float) -> bool:
        return bool(await self._do(lambda c: c.set(self._key(ident) + ":poll", owner, nx=True, px=int(seconds * 1000))))

    async def unclaim(self, ident: str, owner: str) -> None:
        await self._do(lambda c: self._unclaim(keys=[self._key(ident) + ":poll"], args=[owner]))

    async def mark_recorded(self, record: BatchRecord, cost: Decimal) -> bool:
        async def run(c: Any) -> tuple[int, bytes]:
            async with c.pipeline(transaction=True) as pipe:
                pipe.hsetnx(self._key(record.id), "recorded", str(cost))
                pipe.expire(self._key(record.id), RECORD_TTL_SECONDS)
                pipe.srem(self._open, record.id)
                pipe.hget(self._key(record.id), "recorded")
                first, _, _, recorded = await pipe.execute()
            return int(first), recorded

        first, recorded = await self._do(run)
        record.cost = Decimal(recorded.decode()) if recorded is not None else cost
        return bool(first)

    async def remove(self, ident: str) -> None:
        async def run(c: Any) -> None:
            async with c.pipeline(transaction=True) as pipe:
                pipe.delete(self._key(ident))
                pipe.srem(self._open, ident)
                for kind in (OPENAI, ANTHROPIC):
                    pipe.zrem(self._index(kind), ident)
                await pipe.execute()

        await self._do(run)

    async def listed(self, kind: str) -> list[str]:
        return [m.decode() for m in await self._do(lambda c: c.zrevrange(self._index(kind), 0, MAX_INDEXED - 1))]

    async def get_many(self, idents: list[str]) -> list[BatchRecord]:
        async def run(c: Any) -> list[Any]:
            async with c.pipeline(transaction=False) as pipe:
                for ident in idents:
                    pipe.hmget(self._key(ident), "doc", "recorded")
                return list(await pipe.execute())

        rows = await self._do(run)
        return [r for r in (self._load(doc, recorded) for doc, recorded in rows) if r is not None]

    async def close(self) -> None:
        await self._client.aclose()


class RecordStores:
    """The record store of each policy: its budget store's Redis, else this sidecar's memory."""

    def __init__(self, local: LocalRecords | None = None) -> None:
        self.local = local or LocalRecords()
        self._shared: dict[tuple[str, str, str], RedisRecords] = {}

    def for_policy(self, policy: CompiledPolicy) -> RecordStore:
        store: Mapping[str, Any] = policy.extensions.get("budgetStore") or {}
        redis: Mapping[str, Any] = store.get("redis") or {}
        url = redis.get("url")
        if not url:
            return self.local
        ident = (str(url), str(redis.get("keyPrefix", "modelroute")), policy.name)
        shared = self._shared.get(ident)
        if shared is None:
            shared = self._shared[ident] = RedisRecords(*ident, timeout_seconds=float(redis.get("timeoutMs", 250)) / 1000)
        return shared

    async def close(self) -> None:
        for store in self._shared.values():
            await store.close()
        self._shared.clear()
