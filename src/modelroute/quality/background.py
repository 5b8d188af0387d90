"""A bounded background queue for slow monitoring work (judge calls, regret re-runs).

Nothing waits on it: :meth:`BackgroundQueue.submit` returns at once, and when the queue is full the
job is dropped and counted. Workers are tasks started on demand (up to ``workers``) that exit when
the queue is empty, so an idle sidecar holds no monitoring tasks. :class:`RateLimiter` is a token
bucket for the regret re-runs, which cost as much as a baseline request each.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

log = logging.getLogger("modelroute.quality")

Job = Callable[[], Awaitable[None]]


@dataclass(slots=True)
class Queued:
    kind: str  # judge | regret
    policy: str
    run: Job


class BackgroundQueue:
    def __init__(self, on_result: Callable[[str, str, str], None]) -> None:
        self._pending: deque[Queued] = deque()
        self._tasks: set[asyncio.Task[None]] = set()
        self._on_result = on_result  # (policy, kind, result)

    def __len__(self) -> int:
        return len(self._pending)

    def submit(self, job: Queued, capacity: int, workers: int) -> bool:
        """Queue ``job``; False (and counted as dropped) when ``capacity`` jobs already wait."""
        if len(self._pending) >= capacity:
            self._on_result(job.policy, job.kind, "dropped_queue_full")
            return False
        self._pending.append(job)
        if sum(1 for t in self._tasks if not t.done()) < workers:
            self._start()
        return True

    def _start(self) -> None:
        task = asyncio.get_running_loop().create_task(self._work())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _work(self) -> None:
        while self._pending:
            job = self._pending.popleft()
            try:
                await job.run()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a failing judge must not stop the worker
                log.warning("%s job failed: %s", job.kind, exc)
                self._on_result(job.policy, job.kind, "error")
            else:
                self._on_result(job.policy, job.kind, "ok")

    async def drain(self, timeout: float = 30.0) -> None:
        """Wait until every queued job has run (tests, shutdown)."""
        async with asyncio.timeout(timeout):
            while self._tasks or self._pending:
                if self._pending and not any(not t.done() for t in self._tasks):
                    self._start()
                await asyncio.wait(list(self._tasks))

    async def aclose(self) -> None:
        self._pending.clear()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


class RateLimiter:
    """A token bucket: ``per_minute`` tokens, refilled continuously."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._tokens: float | None = None
        self._at = clock()

    def allow(self, per_minute: int) -> bool:
        now = self._clock()
        tokens = float(per_minute) if self._tokens is None else self._tokens
        tokens = min(float(per_minute), tokens + (now - self._at) * per_minute / 60.0)
        self._at = now
        if tokens >= 1.0:
            self._tokens = tokens - 1.0
            return True
        self._tokens = tokens
        return False
