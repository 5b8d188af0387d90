"""One provider key's limits on one model, as this sidecar sees them.

Two views, each a token bucket per kind (requests, tokens, input and output tokens):

- the **policy's** ``limits: {rpm, tpm}``: capacity ``rpm`` refilled over a minute, taken from by
  this sidecar's requests (shared across the fleet, it lives in Redis instead: :mod:`.shared`);
- the **provider's**, learned from every answer's headers (:mod:`.headers`): on each answer the
  level becomes what the provider says remains, less this sidecar's units sent since the observed
  request (the provider had not seen them yet), and it refills at the provider's own rate.

Every sidecar of a fleet hears the same ``remaining``, so acting on all of it would spend it N
times over. Without a shared store, each sidecar therefore estimates its **share** of the key's
traffic: the units it took, over the units the provider's figures say were used meanwhile
(``remaining`` before, minus ``remaining`` now, plus the refill between), both decayed with a
half-life of :data:`HALF_LIFE` seconds. Once the provider reports less than half its limit left,
the sidecar's bucket is its share of ``remaining`` and of the refill (paced at :data:`PACE`); a 429
halves its share at once. Above half, every sidecar may burst into what is left.
"""

from __future__ import annotations

from modelroute.ratelimits.buckets import LIMIT_NAMES, Bucket, RateLimitSkip
from modelroute.ratelimits.headers import KINDS, Observation, Reading

HALF_LIFE = 10.0
MIN_SHARE = 0.02
PACE = 0.95
SCALE_BELOW = 0.5
NAMES = tuple(LIMIT_NAMES[k] for k in KINDS)


class ProviderView:
    """One limit as the provider reported it, run forward between its answers."""

    __slots__ = ("bucket", "taken", "own", "fleet", "share", "last_remaining", "last_at", "reading")

    def __init__(self) -> None:
        self.bucket: Bucket | None = None
        self.reading: Reading | None = None
        self.taken = 0.0  # units this sidecar ever took (marks are read against it)
        self.own = 0.0  # decayed units this sidecar took
        self.fleet = 0.0  # decayed units the provider's figures say were used
        self.share = 1.0
        self.last_remaining: float | None = None
        self.last_at = 0.0

    def take(self, amount: float) -> None:
        self.taken += amount
        self.own += amount
        if self.bucket is not None:
            self.bucket.level -= amount

    def observe(self, reading: Reading, mark: float, now: float, scaled: bool) -> None:
        """The provider's figures of an answer to a request after whose units ``taken`` was
        ``mark``: what this sidecar took since is still on its way to the provider."""
        self.reading = reading
        rate = reading.rate()
        if scaled and rate is not None:
            self._estimate(reading.remaining, rate, now)
        limit = reading.limit
        low = limit is not None and reading.remaining < SCALE_BELOW * limit
        share = self.share if scaled and low else 1.0
        capacity = (limit if limit is not None else max(reading.remaining, 1.0)) * share
        refill = (rate if rate is not None else capacity / 60.0) * share * (PACE if share < 1.0 else 1.0)
        level = min(capacity, reading.remaining * share) - max(0.0, self.taken - mark)
        if self.bucket is None:
            self.bucket = Bucket(capacity, refill, now, level)
        else:
            bucket = self.bucket
            bucket.capacity, bucket.rate, bucket.level, bucket.stamp = capacity, refill, level, now

    def _estimate(self, remaining: float, rate: float, now: float) -> None:
        if self.last_remaining is not None and now > self.last_at:
            decay = 0.5 ** ((now - self.last_at) / HALF_LIFE)
            self.own *= decay
            self.fleet = max(0.0, self.fleet * decay + self.last_remaining - remaining + rate * (now - self.last_at))
            if self.fleet > 0:
                self.share = min(1.0, max(MIN_SHARE, self.own / self.fleet))
        self.last_remaining, self.last_at = remaining, now

    def backoff(self) -> None:
        """A 429: this sidecar took more than its share."""
        self.own *= 0.5
        self.share = max(MIN_SHARE, self.share * 0.5)


class KeyState:
    """The buckets of one (provider key, upstream model)."""

    __slots__ = ("policy", "provider", "blocked_until")

    def __init__(self) -> None:
        self.policy: list[Bucket | None] = [None] * len(KINDS)
        self.provider: list[ProviderView | None] = [None] * len(KINDS)
        self.blocked_until = 0.0

    def configure(self, rpm: int | None, tpm: int | None, now: float) -> None:
        """Follow the policy's limits (changed limits apply at once)."""
        for i, limit in ((0, rpm), (1, tpm)):
            bucket = self.policy[i]
            if limit is None:
                self.policy[i] = None
            elif bucket is None:
                self.policy[i] = Bucket(float(limit), limit / 60.0, now)
            else:
                bucket.refill(now)
                bucket.resize(float(limit), limit / 60.0)

    def check_provider(self, amounts: list[float], floor: float, now: float) -> RateLimitSkip | None:
        """The reason the provider's figures leave no room for ``amounts``, or None."""
        if now < self.blocked_until:
            return RateLimitSkip("provider", "rpm", self.blocked_until - now)
        for i, view in enumerate(self.provider):
            if view is None or view.bucket is None or not amounts[i]:
                continue
            reason = _check(view.bucket, amounts[i], floor, now, "provider", NAMES[i])
            if reason is not None:
                return reason
        return None

    def check_policy(self, amounts: list[float], floor: float, now: float) -> RateLimitSkip | None:
        for i in (0, 1):
            bucket = self.policy[i]
            if bucket is not None and amounts[i]:
                reason = _check(bucket, amounts[i], floor, now, "local", NAMES[i])
                if reason is not None:
                    return reason
        return None

    def take(self, amounts: list[float]) -> tuple[float, ...]:
        """Take ``amounts`` from every view; the marks to read the answer's figures against."""
        marks = []
        for i, amount in enumerate(amounts):
            bucket = self.policy[i]
            if bucket is not None:
                bucket.level -= amount
            view = self.provider[i]
            if view is None:
                view = self.provider[i] = ProviderView()
            view.take(amount)
            marks.append(view.taken)  # after: the answer's figures count this request's own units
        return tuple(marks)

    def correct(self, kind: int, delta: float, now: float) -> None:
        """``delta`` more units used than taken (negative: give back), once the usage is known. The
        provider's view is left alone: providers charge ``max_tokens`` up front, and their next
        figures say what they counted."""
        bucket = self.policy[kind]
        if bucket is not None:
            bucket.refill(now)
            bucket.level = min(bucket.capacity, bucket.level - delta)

    def observe(self, obs: Observation, marks: tuple[float, ...] | None, now: float, scaled: bool) -> None:
        for i, kind in enumerate(KINDS):
            reading = obs.readings.get(kind)
            if reading is None:
                continue
            view = self.provider[i]
            if view is None:
                view = self.provider[i] = ProviderView()
            view.observe(reading, marks[i] if marks is not None else view.taken, now, scaled)
        if obs.retry_after is not None:
            self.blocked_until = max(self.blocked_until, now + obs.retry_after)
            for view in self.provider:
                if view is not None and scaled:
                    view.backoff()

    def reading(self, kind: int) -> Reading | None:
        view = self.provider[kind]
        return view.reading if view is not None else None


def _check(bucket: Bucket, amount: float, floor: float, now: float, source: str, name: str) -> RateLimitSkip | None:
    bucket.refill(now)
    short = bucket.short(amount, floor * bucket.capacity)
    if short <= 0:
        return None
    if floor and bucket.short(amount) <= 0:
        source = "reserved"
    return RateLimitSkip(source, name, bucket.wait(short))
