"""Batches through the sidecar: one client batch fans out to one provider batch per routed model.

:class:`Batches` creates a client batch (a budget hold for its worst case first, then the provider
batches, then the record), refreshes it from the providers, and records its cost once every part
has ended: the result lines of each part are read as they stream in, their usage priced at the
registry's prices times ``pricing.batchDiscount``, the budget hold settled with that cost, and the
per-route metrics counted (route ``batch``). Recording happens once per batch whoever gets there
first: the background poller (:mod:`.poller`), a client reading the batch, or another sidecar
sharing the store; reading the output later reads the recorded figure.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from decimal import Decimal

from modelroute.batch.files import Files
from modelroute.batch.metrics import BatchMetrics
from modelroute.batch.records import BatchRecord, Part
from modelroute.batch.store import LocalRecords, RecordStore, RecordStores
from modelroute.batch.upstream import KINDS, UpstreamBatches
from modelroute.contract.errors import ClientError, UpstreamFailure
from modelroute.contract.features import Host
from modelroute.contract.hooks import RequestRecord, RuntimeView as Runtime
from modelroute.contract.spend import BatchSpend, Work
from modelroute.providers import Usage
from modelroute.telemetry.cost import ZERO, cost_usd

log = logging.getLogger("modelroute.batch")

#: The providers' batch window: a batch's budget hold lasts this long (plus spend control's grace).
WINDOW_SECONDS = 86_400.0
#: Starts one model's provider batch: (its batch API, the registry model) -> the provider's batch object.
Starter = Callable[[UpstreamBatches, str], Awaitable[dict[str, object]]]


class Batches:
    def __init__(self, spend: BatchSpend | None = None) -> None:
        self.spend = spend
        self.metrics = BatchMetrics()  # replaced by one on the sidecar's registry at start
        self.files = Files(evicted=lambda: self.metrics.evicted("files"))
        self.stores = RecordStores(LocalRecords(evicted=lambda: self.metrics.evicted("batches")))
        self.host: Host | None = None
        self._finishing: dict[str, asyncio.Task[Decimal]] = {}
        self._watchers: dict[str, list[asyncio.Future[Decimal]]] = {}

    async def recorded(self, runtime: Runtime, ident: str) -> Decimal:
        """Batch ``ident``'s cost, once recorded (by this sidecar, or before): waits for it, so a
        test waits on the event rather than sleeping."""
        future: asyncio.Future[Decimal] = asyncio.get_running_loop().create_future()
        self._watchers.setdefault(ident, []).append(future)
        try:
            record = await self.store(runtime).get(ident)
            if record is not None and record.cost is not None:
                return record.cost
            return await future
        finally:
            waiting = self._watchers.get(ident, [])
            if future in waiting:
                waiting.remove(future)
            if not waiting:
                self._watchers.pop(ident, None)

    def store(self, runtime: Runtime) -> RecordStore:
        return self.stores.for_policy(runtime.policy)

    def api(self, runtime: Runtime, record: BatchRecord, part: Part) -> UpstreamBatches:
        provider = runtime.providers.get(part.provider)
        if provider is None:
            raise UpstreamFailure(f"provider {part.provider} of batch {record.id} is not in the active policy",
                                  code="batch_upstream_error")
        return KINDS[record.kind](provider)

    def ended(self, record: BatchRecord) -> bool:
        return all(KINDS[record.kind].ended(p.upstream) for p in record.parts)

    # -- create -------------------------------------------------------------------------------

    async def create(self, runtime: Runtime, record: BatchRecord, groups: Mapping[str, int], start: Starter,
                     headers: Mapping[str, str], work: Sequence[Work], replacing: RequestRecord | None = None) -> BatchRecord:
        """Hold the budget, start one provider batch per model of ``groups`` (model -> requests),
        and keep the record. Nothing is left behind when any step fails: the parts already started
        are cancelled and the hold is given back."""
        policy = runtime.policy
        record.baseline = policy.models[policy.baseline].pricing if policy.baseline in policy.models else None
        await self.store(runtime).check_room()
        if self.spend is not None:
            record.hold = await self.spend.hold(policy, headers, work, record.id, WINDOW_SECONDS, replacing)
        try:
            for model, count in groups.items():
                spec = policy.models[model]
                api = KINDS[record.kind](runtime.provider_for(model))
                record.parts.append(Part(model, spec.provider, count, spec.pricing, dict(await start(api, model))))
            await self.store(runtime).add(record)
        except BaseException:
            await self._abandon(runtime, record)
            raise
        if not record.parts:  # every request was unbatchable: ended already, at no cost
            await self.finish(runtime, record)
        return record

    async def _abandon(self, runtime: Runtime, record: BatchRecord) -> None:
        for part in record.parts:
            try:
                await self.api(runtime, record, part).cancel(part.upstream_id)
            except ClientError as exc:
                log.warning("batch %s: could not cancel %s batch %s: %s", record.id, part.provider, part.upstream_id, exc.message)
        if self.spend is not None:
            try:
                await self.spend.release(runtime.policy, record.hold)
            except Exception:  # it lapses on its own
                log.warning("batch %s: could not release its budget hold", record.id, exc_info=True)

    # -- follow -------------------------------------------------------------------------------

    async def refresh(self, runtime: Runtime, record: BatchRecord) -> bool:
        """Read the parts not ended yet from their providers; record the cost once all ended.
        True when anything changed."""
        changed = False
        for part in record.parts:
            if not KINDS[record.kind].ended(part.upstream) and part.upstream_id:
                seen = await self.api(runtime, record, part).get(part.upstream_id)
                changed = changed or seen != part.upstream
                part.upstream = seen
        if changed:
            await self.store(runtime).put(record)
        if record.cost is None and self.ended(record):
            await self.finish(runtime, record)
            changed = True
        return changed

    async def finish(self, runtime: Runtime, record: BatchRecord) -> Decimal:
        """Record the cost of an ended batch, once; the recorded cost."""
        if record.cost is not None:
            return record.cost
        task = self._finishing.get(record.id)
        if task is None:
            task = self._finishing[record.id] = asyncio.ensure_future(self._finish(runtime, record))
            task.add_done_callback(lambda _: self._finishing.pop(record.id, None))
        record.cost = await asyncio.shield(task)
        return record.cost

    async def _finish(self, runtime: Runtime, record: BatchRecord) -> Decimal:
        totals: list[tuple[Part, Usage]] = []
        for part in record.parts:
            api = self.api(runtime, record, part)
            sums = [0, 0, 0, 0, 0]
            async for line in api.results(part):
                usage = api.usage(line)
                if usage is not None:
                    for i, n in enumerate((usage.input_tokens, usage.output_tokens, usage.cached_input_tokens,
                                           usage.cache_write_tokens, usage.reasoning_tokens)):
                        sums[i] += n
            totals.append((part, Usage(*sums)))
        cost = sum((cost_usd(usage, part.pricing, batch=True) for part, usage in totals), ZERO)
        if self.spend is not None:  # idempotent: a second sidecar, or this one restarted, counts nothing more
            await self.spend.settle(runtime.policy, record.hold, record.id, cost)
        if await self.store(runtime).mark_recorded(record, cost):
            self._count(record, totals)
        assert record.cost is not None
        for future in self._watchers.pop(record.id, ()):
            if not future.done():
                future.set_result(record.cost)
        return record.cost

    def _count(self, record: BatchRecord, totals: list[tuple[Part, Usage]]) -> None:
        self.metrics.recorded.labels(record.kind).inc()
        if self.host is None:
            return
        for part, usage in totals:
            cost = cost_usd(usage, part.pricing, batch=True)
            baseline = cost_usd(usage, record.baseline, batch=True) if record.baseline is not None else cost
            self.host.record(record.policy, "batch", part.model, usage, cost, baseline)

    async def results(self, runtime: Runtime, record: BatchRecord) -> AsyncIterator[bytes]:
        """The result lines of every part, each ending in a newline."""
        for part in record.parts:
            async for line in self.api(runtime, record, part).results(part):
                yield line + b"\n"

    # -- cancel, delete -----------------------------------------------------------------------

    async def cancel(self, runtime: Runtime, record: BatchRecord) -> None:
        record.cancel_at = record.cancel_at or time.time()
        for part in record.parts:
            if not KINDS[record.kind].ended(part.upstream):
                part.upstream = await self.api(runtime, record, part).cancel(part.upstream_id)
        await self.store(runtime).put(record)

    async def close(self) -> None:
        for task in list(self._finishing.values()):
            task.cancel()
        await self.stores.close()
