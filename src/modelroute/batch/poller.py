"""The background poller: every running batch is followed until its provider finishes it, and its
cost recorded then, whether or not anyone reads its output.

Each round reads the ids of the batches whose cost is not recorded yet from the active policy's
record store (so a restarted sidecar, or another one sharing the store, takes over what a stopped
one left), and polls those that are due, at most :attr:`PollSettings.concurrency` at once. A batch
is due :attr:`PollSettings.interval` seconds after its last poll, doubling with each poll that saw
no change or failed, up to :attr:`PollSettings.max_interval`. While one sidecar polls a batch it
holds a short lease on it, so two sidecars do not poll the same batch at the same moment; the cost
is recorded once either way (see :meth:`~modelroute.batch.service.Batches.finish`).

Tests run a round with :meth:`Poller.run_once` (exact, no waiting) and may give a clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from modelroute.batch.service import Batches
from modelroute.batch.store import MAX_OPEN_SHARED, RecordStore
from modelroute.contract.features import Host
from modelroute.contract.hooks import RuntimeView as Runtime

log = logging.getLogger("modelroute.batch")
#: Batches the schedule remembers (as many as a shared store keeps running).
MAX_SCHEDULED = MAX_OPEN_SHARED


@dataclass(frozen=True)
class PollSettings:
    interval: float = 30.0  # seconds between polls of a batch, at first
    max_interval: float = 600.0  # the longest wait between polls of a batch
    concurrency: int = 4  # batches polled at once
    lease: float = 120.0  # how long a sidecar's claim on polling a batch holds if it dies mid-poll
    clock: Callable[[], float] = field(default=time.monotonic)


class Poller:
    def __init__(self, batches: Batches, settings: PollSettings) -> None:
        self.batches = batches
        self.settings = settings
        self.owner = uuid.uuid4().hex  # this sidecar, in poll leases
        self._due: dict[str, tuple[float, int]] = {}  # batch id -> (due at, polls in a row without change)
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    def start(self, host: Host) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(host))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def track(self, ident: str) -> None:
        """A batch was just created here: first poll it one interval from now (a provider batch
        is never done at once). The schedule holds no more entries than a store holds running
        batches; an entry dropped only means that batch is due at once."""
        if len(self._due) >= MAX_SCHEDULED:
            del self._due[next(iter(self._due))]
        self._due[ident] = (self.settings.clock() + self.settings.interval, 0)

    def wake(self) -> None:
        """Run a round now."""
        self._wake.set()

    async def _run(self, host: Host) -> None:
        """A round every interval (or when woken), the first one interval after start."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.interval)
            self._wake.clear()
            try:
                if host.ready:
                    await self.run_once(host.runtime())
            except Exception:  # a store that is down: the next round tries again
                log.warning("a batch poll round failed", exc_info=True)

    async def run_once(self, runtime: Runtime, *, force: bool = False) -> int:
        """One round: poll every due batch of ``runtime``'s store (``force``: every running batch,
        due or not). Returns how many were polled."""
        store = self.batches.store(runtime)
        ids = await store.open_ids()
        for gone in self._due.keys() - set(ids):
            del self._due[gone]
        now = self.settings.clock()
        due = [i for i in ids if force or self._due.get(i, (0.0, 0))[0] <= now]
        limit = asyncio.Semaphore(self.settings.concurrency)
        await asyncio.gather(*(self._poll(runtime, store, ident, limit) for ident in due))
        return len(due)

    async def _poll(self, runtime: Runtime, store: RecordStore, ident: str, limit: asyncio.Semaphore) -> None:
        quiet = self._due.get(ident, (0.0, 0))[1]
        async with limit:
            try:
                if not await store.claim(ident, self.owner, self.settings.lease):
                    result = "busy"  # another sidecar is polling it right now
                else:
                    try:
                        record = await store.get(ident)
                        changed = record is not None and await self.batches.refresh(runtime, record)
                    finally:
                        await store.unclaim(ident, self.owner)
                    result = "changed" if changed else "unchanged"
            except Exception as exc:
                log.warning("polling batch %s failed: %s", ident, getattr(exc, "message", type(exc).__name__))
                result = "error"
        self.batches.metrics.polls.labels(result).inc()
        quiet = 0 if result == "changed" else quiet + 1
        wait = min(self.settings.max_interval, self.settings.interval * 2 ** max(0, quiet - 1))
        self._due[ident] = (self.settings.clock() + wait, quiet)
