"""Reading what providers say of their limits: OpenAI's durations, Anthropic's RFC 3339 resets,
retry-after, and what the fakes write (the same documented headers)."""

from __future__ import annotations

import time

import pytest

from modelroute.ratelimits.headers import Reading, observe, parse_duration, parse_time
from modelroute.testing.org_limits import OrgLimiter, OrgLimits, anthropic_headers, go_duration, openai_headers


@pytest.mark.parametrize("text, seconds", [
    ("6m0s", 360.0), ("1s", 1.0), ("59ms", 0.059), ("1h2m3.5s", 3723.5), ("7.66s", 7.66), ("0s", 0.0), ("12", 12.0),
    ("250us", 0.00025),
])
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "6 m", "1d", "-1s", "s", "1s2"])
def test_unreadable_durations(text: str) -> None:
    assert parse_duration(text) is None


def test_openai_headers() -> None:
    obs = observe({"x-ratelimit-limit-requests": "60", "x-ratelimit-remaining-requests": "59", "x-ratelimit-reset-requests": "1s",
                   "x-ratelimit-limit-tokens": "150000", "x-ratelimit-remaining-tokens": "149984",
                   "x-ratelimit-reset-tokens": "6ms", "content-type": "application/json"}, time.time())
    assert obs is not None and obs.retry_after is None
    assert obs.readings["requests"] == Reading(59, 60, 1.0)
    assert obs.readings["tokens"] == Reading(149984, 150000, pytest.approx(0.006))
    assert obs.readings["requests"].rate() == 1.0  # one request back per second
    assert obs.readings["requests"].wait(1) == 0.0


def test_anthropic_headers_and_their_times() -> None:
    now = 1_767_225_600.0  # 2026-01-01T00:00:00Z
    obs = observe({"anthropic-ratelimit-requests-limit": "50", "anthropic-ratelimit-requests-remaining": "0",
                   "anthropic-ratelimit-requests-reset": "2026-01-01T00:00:30Z",
                   "anthropic-ratelimit-input-tokens-limit": "30000", "anthropic-ratelimit-input-tokens-remaining": "29000",
                   "anthropic-ratelimit-input-tokens-reset": "2026-01-01T00:00:02.000Z",
                   "anthropic-ratelimit-output-tokens-remaining": "8000", "retry-after": "2"}, now)
    assert obs is not None and obs.retry_after == 2.0
    requests = obs.readings["requests"]
    assert requests == Reading(0, 50, 30.0)
    assert requests.wait(1) == pytest.approx(0.6)  # 50 requests back in 30 s: one in 0.6 s
    assert obs.readings["input_tokens"].reset == pytest.approx(2.0)
    assert obs.readings["output_tokens"] == Reading(8000, None, None)
    assert parse_time("2025-12-31T23:59:00Z", now) == 0.0  # a reset in the past: now
    assert parse_time("not a time", now) is None and parse_time("2026-01-01T00:00:30", now) is None  # no zone


def test_no_figures_and_a_bare_retry_after() -> None:
    assert observe({"content-type": "application/json"}, time.time()) is None
    assert observe({"x-ratelimit-remaining-requests": "many"}, time.time()) is None
    obs = observe({"retry-after-ms": "250", "retry-after": "1"}, time.time())
    assert obs is not None and obs.readings == {} and obs.retry_after == 0.25


def test_the_fakes_write_what_the_sidecar_reads() -> None:
    now = [0.0]
    org = OrgLimiter({"m": OrgLimits(rpm=60, tpm=6000, itpm=3000, otpm=600)}, clock=lambda: now[0])
    verdict = org.charge("m", 100, 50)
    assert verdict is not None and verdict.ok
    obs = observe(openai_headers(verdict), time.time())
    assert obs is not None
    assert obs.readings["requests"] == Reading(59, 60, 1.0) and obs.readings["tokens"] == Reading(5850, 6000, 1.5)
    wall = time.time()
    anth = observe(anthropic_headers(verdict, wall=lambda: wall), wall)
    assert anth is not None
    assert anth.readings["input_tokens"].remaining == 2900 and anth.readings["output_tokens"].remaining == 550
    assert anth.readings["output_tokens"].reset == pytest.approx(5.0, abs=0.01)
    for _ in range(59):
        assert org.charge("m", 1, 0).ok  # type: ignore[union-attr]
    refused = org.charge("m", 1, 0)
    assert refused is not None and not refused.ok and refused.retry_after == pytest.approx(1.0)
    headers = openai_headers(refused)
    assert headers["retry-after"] == "1" and headers["retry-after-ms"] == "1000" and headers["x-ratelimit-remaining-requests"] == "0"
    assert org.admitted == {"m": 60} and org.refused == {"m": 1}
    assert [go_duration(s) for s in (0.059, 1, 360, 3723.5)] == ["59ms", "1s", "6m0s", "1h2m3.5s"]
