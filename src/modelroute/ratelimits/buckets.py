"""The token bucket every view of a limit is made of, and the skip reason that carries a wait.

A bucket holds ``level`` units of ``capacity``, refilled at ``rate`` per second. A request takes
its units before its attempt, or is told how long until they are there; a floor (a share of the
capacity reserved for other routes) must stay untouched. A request larger than the whole bucket
is let through when the bucket is full (it could never fit otherwise; the provider decides).
"""

from __future__ import annotations

#: The skip reason of each limit (kind -> the name used in reasons and metrics).
LIMIT_NAMES = {"requests": "rpm", "tokens": "tpm", "input_tokens": "itpm", "output_tokens": "otpm"}


class RateLimitSkip(str):
    """A skip reason (the string shown in ``modelroute.fallback_chain``, e.g. ``local_rpm_limit``)
    with the wait until there is room, and its parts for the metrics."""

    retry_after: float
    source: str
    limit: str

    def __new__(cls, source: str, limit: str, retry_after: float) -> RateLimitSkip:  # noqa: PYI034
        obj = super().__new__(cls, f"{source}_{limit}_limit")
        obj.retry_after, obj.source, obj.limit = retry_after, source, limit
        return obj


class Bucket:
    __slots__ = ("capacity", "level", "rate", "stamp")

    def __init__(self, capacity: float, rate: float, now: float, level: float | None = None) -> None:
        self.capacity = capacity
        self.rate = rate
        self.level = capacity if level is None else level
        self.stamp = now

    def refill(self, now: float) -> float:
        if now > self.stamp:
            if self.level < self.capacity:
                self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
            self.stamp = now
        return self.level

    def resize(self, capacity: float, rate: float) -> None:
        """New limits: a larger bucket gains the difference at once, a smaller one is cut."""
        if capacity != self.capacity:
            self.level = min(self.level, capacity) if capacity < self.capacity else self.level + capacity - self.capacity
            self.capacity = capacity
        self.rate = rate

    def short(self, amount: float, floor: float = 0.0) -> float:
        """Units missing for ``amount`` above ``floor`` (0: it fits). Call after :meth:`refill`."""
        if amount >= self.capacity:  # larger than the bucket: only when it is full (and nothing is reserved)
            return max(0.0, self.capacity - self.level)
        return max(0.0, amount + floor - self.level)

    def wait(self, short: float) -> float:
        """Seconds until ``short`` more units are there."""
        return short / self.rate if self.rate > 0 else 60.0
