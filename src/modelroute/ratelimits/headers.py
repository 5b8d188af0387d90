"""What a provider says of its own rate limits, read from an answer's headers.

OpenAI (and OpenAI-compatible servers that copy it) sends ``x-ratelimit-limit-requests``,
``x-ratelimit-remaining-requests``, ``x-ratelimit-reset-requests`` and the same three for
``-tokens``; a reset is a duration in Go's format (``6m0s``, ``1s``, ``59ms``, ``1h2m3.5s``): the time
until the limit is whole again. Anthropic sends ``anthropic-ratelimit-{requests,tokens,input-tokens,
output-tokens}-{limit,remaining,reset}``, a reset being an RFC 3339 time (when the bucket is full
again; its ``tokens`` figures are whichever of the input and output limits is tighter, so they
are read only when the two are not sent). Either may send ``retry-after`` (seconds, or ``retry-after-ms``) on a 429.

Both describe a token bucket replenished continuously: ``remaining`` units now, and ``limit -
remaining`` more by the reset, so the refill rate is ``(limit - remaining) / reset`` (``limit / 60``
when the reset says nothing). :func:`observe` turns the headers into an :class:`Observation` of
plain numbers; it reads a handful of dictionary keys when there is nothing to find.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from modelroute.providers.http import retry_after

#: What a limit counts. Requests and tokens are every provider's; input and output tokens are
#: Anthropic's separate ITPM and OTPM limits.
REQUESTS, TOKENS, INPUT_TOKENS, OUTPUT_TOKENS = "requests", "tokens", "input_tokens", "output_tokens"
KINDS = (REQUESTS, TOKENS, INPUT_TOKENS, OUTPUT_TOKENS)

_OPENAI = {REQUESTS: "requests", TOKENS: "tokens"}
_ANTHROPIC = {REQUESTS: "requests", TOKENS: "tokens", INPUT_TOKENS: "input-tokens", OUTPUT_TOKENS: "output-tokens"}
_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|us|µs|ns|h|m|s)")


@dataclass(frozen=True, slots=True)
class Reading:
    """One limit as the provider reported it: units left, the limit, seconds until it is whole."""

    remaining: float
    limit: float | None = None
    reset: float | None = None

    def rate(self) -> float | None:
        """Units replenished per second, or None when the reading cannot tell."""
        if self.limit is None or self.limit <= 0:
            return None
        if self.reset is not None and self.reset > 0 and self.remaining < self.limit:
            return (self.limit - self.remaining) / self.reset
        return self.limit / 60.0

    def wait(self, amount: float) -> float:
        """Seconds until ``amount`` units are there, by the provider's own arithmetic."""
        short = min(amount, self.limit if self.limit is not None else amount) - self.remaining
        if short <= 0:
            return 0.0
        rate = self.rate()
        if rate is None or rate <= 0:
            return self.reset if self.reset is not None else 1.0
        return short / rate


@dataclass(frozen=True, slots=True)
class Observation:
    """Every limit one answer reported (kind -> reading), and its retry-after."""

    readings: Mapping[str, Reading]
    retry_after: float | None = None


def parse_duration(value: str) -> float | None:
    """Seconds in a Go duration (``6m0s``, ``59ms``, ``1h2m3.5s``) or a plain number of seconds."""
    value = value.strip()
    if value[-1:].isdigit():  # a plain number (no exception raised on the common path)
        try:
            return max(0.0, float(value))
        except ValueError:
            return None
    parts = _DURATION.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value:
        return None
    return sum(float(n) * _UNITS[u] for n, u in parts)


def parse_time(value: str, now: float) -> float | None:
    """Seconds from ``now`` (Unix time) until an RFC 3339 time; never negative."""
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now)


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if number >= 0 else None


def observe(headers: Mapping[str, str], now: float) -> Observation | None:
    """The limits ``headers`` report (``now``: Unix time the answer came, for Anthropic's resets),
    or None when they report none."""
    readings: dict[str, Reading] = {}
    if "x-ratelimit-remaining-requests" in headers or "x-ratelimit-remaining-tokens" in headers:
        for kind, name in _OPENAI.items():
            remaining = _number(headers.get(f"x-ratelimit-remaining-{name}"))
            if remaining is not None:
                reset = headers.get(f"x-ratelimit-reset-{name}")
                readings[kind] = Reading(remaining, _number(headers.get(f"x-ratelimit-limit-{name}")),
                                         parse_duration(reset) if reset else None)
    elif "anthropic-ratelimit-requests-remaining" in headers or "anthropic-ratelimit-tokens-remaining" in headers \
            or "anthropic-ratelimit-input-tokens-remaining" in headers:
        for kind, name in _ANTHROPIC.items():
            remaining = _number(headers.get(f"anthropic-ratelimit-{name}-remaining"))
            if remaining is not None:
                reset = headers.get(f"anthropic-ratelimit-{name}-reset")
                readings[kind] = Reading(remaining, _number(headers.get(f"anthropic-ratelimit-{name}-limit")),
                                         parse_time(reset, now) if reset else None)
        if INPUT_TOKENS in readings or OUTPUT_TOKENS in readings:  # ``tokens`` is then the tighter of the two, not a sum
            readings.pop(TOKENS, None)
    wait = retry_after(headers) if "retry-after" in headers or "retry-after-ms" in headers else None
    if not readings and wait is None:
        return None
    return Observation(readings, wait)
