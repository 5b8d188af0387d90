"""Token buckets for the registry's per-model rate limits (``limits: {rpm, tpm}``), per sidecar.

Each limited model has a requests bucket (capacity ``rpm``, refilled at ``rpm``/60 per second)
and a tokens bucket (capacity ``tpm``, refilled at ``tpm``/60 per second). A request takes one
request and its estimated tokens before its attempt; when either bucket lacks them the model is
skipped (the request overflows to the next model of its chain) with a :class:`RateLimitSkip`
reason that carries how long until there would be room. After the answer the token estimate is
corrected from the provider's usage (a bucket may go below zero: that debt delays later requests).

State is per registry model and outlives policy reloads; changed limits apply at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from modelroute.policy.model import Limits

RPM_REASON = "local_rpm_limit"
TPM_REASON = "local_tpm_limit"
REASONS = (RPM_REASON, TPM_REASON)


class RateLimitSkip(str):
    """A skip reason (the string shown in ``modelroute.fallback_chain``) with the wait until room."""

    retry_after: float

    def __new__(cls, reason: str, retry_after: float) -> RateLimitSkip:  # noqa: PYI034
        obj = super().__new__(cls, reason)
        obj.retry_after = retry_after
        return obj


class Bucket:
    __slots__ = ("capacity", "level", "rate", "stamp")

    def __init__(self, capacity: float, now: float) -> None:
        self.capacity = capacity
        self.rate = capacity / 60.0
        self.level = capacity
        self.stamp = now

    def refill(self, now: float) -> float:
        if now > self.stamp:
            self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
            self.stamp = now
        return self.level

    def resize(self, capacity: float) -> None:
        if capacity != self.capacity:
            self.level = min(self.level, capacity) if capacity < self.capacity else self.level + capacity - self.capacity
            self.capacity, self.rate = capacity, capacity / 60.0

    def wait(self, amount: float) -> float:
        """Seconds until ``amount`` fits (after refill)."""
        return max(0.0, (min(amount, self.capacity) - self.level) / self.rate)


class RateLimiter:
    """Buckets per model; ``take`` either takes a request and its tokens, or says why not."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._requests: dict[str, Bucket] = {}
        self._tokens: dict[str, Bucket] = {}

    def _bucket(self, table: dict[str, Bucket], model: str, capacity: int | None, now: float) -> Bucket | None:
        if capacity is None:
            table.pop(model, None)
            return None
        bucket = table.get(model)
        if bucket is None:
            bucket = table[model] = Bucket(float(capacity), now)
        else:
            bucket.resize(float(capacity))
            bucket.refill(now)
        return bucket

    def take(self, model: str, limits: Limits, tokens: int) -> RateLimitSkip | None:
        """Take one request and ``tokens`` from ``model``'s buckets, or the reason it has no room.

        A request larger than the whole tokens bucket is let through when the bucket is full (it
        could never fit otherwise; the provider decides).
        """
        now = self._clock()
        requests = self._bucket(self._requests, model, limits.rpm, now)
        bucket = self._bucket(self._tokens, model, limits.tpm, now)
        if requests is not None and requests.level < 1:
            return RateLimitSkip(RPM_REASON, requests.wait(1))
        if bucket is not None and bucket.level < min(tokens, bucket.capacity):
            return RateLimitSkip(TPM_REASON, bucket.wait(tokens))
        if requests is not None:
            requests.level -= 1
        if bucket is not None:
            bucket.level -= tokens
        return None

    def correct(self, model: str, delta: int) -> None:
        """Add ``delta`` more used tokens (negative: give back) once the real usage is known."""
        bucket = self._tokens.get(model)
        if bucket is not None and delta:
            bucket.refill(self._clock())
            bucket.level = min(bucket.capacity, bucket.level - delta)

    def levels(self, model: str) -> tuple[float | None, float | None]:
        """(requests, tokens) available now, None where the model has no such limit."""
        now = self._clock()
        r, t = self._requests.get(model), self._tokens.get(model)
        return (r.refill(now) if r else None, t.refill(now) if t else None)
