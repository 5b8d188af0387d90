"""An organisation's rate limits, enforced by the fake providers as the real ones do.

Every caller of a fake shares one set of token buckets per model (the organisation's key): a
requests bucket (capacity ``rpm``, refilled at ``rpm / 60`` per second) and token buckets
(``tpm``; Anthropic's ``itpm`` / ``otpm`` for input and output). A request is charged one request
and its tokens when it arrives: input tokens as the fake counts them, output tokens as the
request's ``max_tokens`` when it sets one (both providers count it up front). Beyond a limit
the fake answers 429 with ``retry-after`` (seconds until the request would fit) and charges
nothing. Every answer, a 429 too, reports the buckets in the provider's documented headers:

- OpenAI: ``x-ratelimit-{limit,remaining,reset}-{requests,tokens}``, resets as Go durations
  (``6m0s``, ``1s``, ``59ms``): the time until the bucket is full again;
- Anthropic: ``anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,remaining,reset}``,
  resets as RFC 3339 times; ``tokens`` is whichever of input and output is most restrictive.

``start`` is the share of each bucket full when the fake starts (0: the organisation already used
its minute, so a short test sees the steady state, not a minute's burst). The clock is injectable.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

#: The request key under which a fake keeps the headers its answer must carry.
HEADERS = web.RequestKey("org_limit_headers", dict)


@dataclass(frozen=True)
class OrgLimits:
    rpm: int | None = None
    tpm: int | None = None
    itpm: int | None = None  # Anthropic's input-tokens limit
    otpm: int | None = None  # Anthropic's output-tokens limit
    start: float = 1.0


class _Bucket:
    __slots__ = ("capacity", "rate", "level", "stamp")

    def __init__(self, capacity: int, start: float, now: float) -> None:
        self.capacity, self.rate = float(capacity), capacity / 60.0
        self.level, self.stamp = capacity * start, now

    def refill(self, now: float) -> None:
        if now > self.stamp:
            self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
            self.stamp = now

    def wait(self, amount: float) -> float:
        need = min(amount, self.capacity)
        return max(0.0, (need - self.level) / self.rate)

    def reset(self) -> float:
        return max(0.0, (self.capacity - self.level) / self.rate)


@dataclass
class Verdict:
    ok: bool
    retry_after: float
    buckets: dict[str, _Bucket]  # kind -> bucket, after the charge


@dataclass
class OrgLimiter:
    """The organisation's buckets per upstream model (``limits`` by model, ``"*"`` for any other)."""

    limits: dict[str, OrgLimits]
    clock: Callable[[], float] = time.monotonic
    admitted: dict[str, int] = field(default_factory=dict)
    refused: dict[str, int] = field(default_factory=dict)
    _buckets: dict[str, dict[str, _Bucket]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        now = self.clock()  # the named models' buckets run from now, whether called or not
        for model in self.limits:
            if model != "*":
                self._for(model, now)

    def _for(self, model: str, now: float) -> dict[str, _Bucket] | None:
        found = self._buckets.get(model)
        if found is None:
            spec = self.limits.get(model) or self.limits.get("*")
            if spec is None:
                return None
            found = self._buckets[model] = {
                kind: _Bucket(limit, spec.start, now)
                for kind, limit in (("requests", spec.rpm), ("tokens", spec.tpm), ("input-tokens", spec.itpm),
                                    ("output-tokens", spec.otpm))
                if limit is not None
            }
        return found

    def charge(self, model: str, input_tokens: int, output_tokens: int) -> Verdict | None:
        """Charge one request to ``model``'s buckets, or refuse it (None: the model is not limited)."""
        now = self.clock()
        buckets = self._for(model, now)
        if buckets is None:
            return None
        amounts = {"requests": 1.0, "tokens": float(input_tokens + output_tokens), "input-tokens": float(input_tokens),
                   "output-tokens": float(output_tokens)}
        wait = 0.0
        for kind, bucket in buckets.items():
            bucket.refill(now)
            wait = max(wait, bucket.wait(amounts[kind]))
        if wait > 0:
            self.refused[model] = self.refused.get(model, 0) + 1
            return Verdict(False, wait, buckets)
        for kind, bucket in buckets.items():
            bucket.level -= amounts[kind]
        self.admitted[model] = self.admitted.get(model, 0) + 1
        return Verdict(True, 0.0, buckets)


def go_duration(seconds: float) -> str:
    """Seconds as OpenAI writes a reset: ``59ms``, ``1s``, ``6m0s``, ``1h2m3.5s``."""
    if seconds < 1:
        return f"{max(0, math.ceil(seconds * 1000))}ms"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{secs:.3f}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{int(hours)}h{int(minutes)}m{text}"
    return f"{int(minutes)}m{text}" if minutes else text


def openai_headers(verdict: Verdict) -> dict[str, str]:
    out: dict[str, str] = {}
    for kind in ("requests", "tokens"):
        bucket = verdict.buckets.get(kind)
        if bucket is not None:
            out[f"x-ratelimit-limit-{kind}"] = str(int(bucket.capacity))
            out[f"x-ratelimit-remaining-{kind}"] = str(max(0, math.floor(bucket.level)))
            out[f"x-ratelimit-reset-{kind}"] = go_duration(bucket.reset())
    if not verdict.ok:
        out["retry-after"] = str(max(1, math.ceil(verdict.retry_after)))
        out["retry-after-ms"] = str(math.ceil(verdict.retry_after * 1000))
    return out


def anthropic_headers(verdict: Verdict, wall: Callable[[], float] = time.time) -> dict[str, str]:
    out: dict[str, str] = {}
    now = wall()
    tight: tuple[float, str] | None = None
    for kind, bucket in verdict.buckets.items():
        _write(out, kind, bucket, now)
        if kind in ("input-tokens", "output-tokens"):
            left = bucket.level / bucket.capacity
            if tight is None or left < tight[0]:
                tight = (left, kind)
    if "tokens" not in verdict.buckets and tight is not None:
        _write(out, "tokens", verdict.buckets[tight[1]], now)
    if not verdict.ok:
        out["retry-after"] = str(max(1, math.ceil(verdict.retry_after)))
    return out


def _write(out: dict[str, str], kind: str, bucket: _Bucket, now: float) -> None:
    reset = datetime.fromtimestamp(now + bucket.reset(), UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    out[f"anthropic-ratelimit-{kind}-limit"] = str(int(bucket.capacity))
    out[f"anthropic-ratelimit-{kind}-remaining"] = str(max(0, math.floor(bucket.level)))
    out[f"anthropic-ratelimit-{kind}-reset"] = reset


async def add_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: the organisation's figures on every answer of a charged request."""
    extra = request.get(HEADERS)
    if extra:
        for name, value in extra.items():
            response.headers.setdefault(name, value)


def requested_output(body: dict[str, Any]) -> int:
    """The output tokens a request asks for up front (``max_tokens`` and its other names), else 0."""
    for name in ("max_tokens", "max_completion_tokens", "max_output_tokens"):
        value = body.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return 0
