"""One key's views on an injected clock: the policy's buckets, the provider's figures run
forward, a sidecar's share of a fleet estimated from them, and reserves."""

from __future__ import annotations

import pytest

from modelroute.ratelimits.headers import Observation, Reading
from modelroute.ratelimits.state import PACE, KeyState


def amounts(tokens: float = 0.0) -> list[float]:
    return [1.0, tokens, tokens, 0.0]


def test_policy_buckets_skip_when_empty_and_refill_over_a_minute() -> None:
    state = KeyState()
    state.configure(rpm=2, tpm=1000, now=100.0)
    for _ in range(2):
        assert state.check_policy(amounts(400), 0.0, 100.0) is None
        state.take(amounts(400))
    skip = state.check_policy(amounts(10), 0.0, 100.0)
    assert skip == "local_rpm_limit" and skip is not None and skip.retry_after == pytest.approx(30.0)  # 1 request per 30 s
    assert state.check_policy(amounts(400), 0.0, 130.0) is None  # a request is back, and 200 + 500 tokens
    state.take(amounts(400))
    assert state.check_policy(amounts(100), 0.0, 130.0) == "local_rpm_limit"
    assert state.check_policy(amounts(5000), 0.0, 190.0) is None  # larger than the bucket: let through when it is full
    state.configure(rpm=100, tpm=1000, now=190.0)  # new limits apply at once
    state.take(amounts(5000))
    assert state.check_policy(amounts(10), 0.0, 190.0) == "local_tpm_limit"


def test_usage_corrects_the_estimate() -> None:
    state = KeyState()
    state.configure(rpm=None, tpm=1000, now=0.0)
    state.take(amounts(900))
    assert state.check_policy(amounts(200), 0.0, 0.0) == "local_tpm_limit"
    state.correct(1, -500, 0.0)  # used 400, not 900
    assert state.check_policy(amounts(200), 0.0, 0.0) is None


def test_an_exhausted_provider_is_skipped_until_it_has_room() -> None:
    state = KeyState()
    marks = state.take(amounts(10))
    state.observe(Observation({"requests": Reading(0, 60, 60.0)}), marks, now=10.0, scaled=False)
    skip = state.check_provider(amounts(10), 0.0, 10.0)
    assert skip == "provider_rpm_limit" and skip is not None and skip.retry_after == pytest.approx(1.0)
    assert state.check_provider(amounts(10), 0.0, 11.01) is None
    state.observe(Observation({}, retry_after=5.0), None, now=12.0, scaled=False)  # a 429's retry-after holds it
    held = state.check_provider(amounts(10), 0.0, 13.0)
    assert held is not None and held.retry_after == pytest.approx(4.0)


def test_units_sent_after_the_observed_request_still_count() -> None:
    state = KeyState()
    first = state.take(amounts())
    for _ in range(3):
        state.take(amounts())  # still on their way to the provider when the first one's answer comes
    state.observe(Observation({"requests": Reading(4, 100, 1.0)}), first, now=0.0, scaled=False)
    assert state.check_provider(amounts(), 0.0, 0.0) is None
    state.take(amounts())
    assert state.check_provider(amounts(), 0.0, 0.0) == "provider_rpm_limit"


def test_a_sidecar_estimates_its_share_of_the_fleet() -> None:
    """Ten sidecars send alike; the provider refills 10 requests a second and is saturated. This
    sidecar sends one in ten: its bucket becomes a tenth of what is left and of the refill."""
    state = KeyState()
    remaining, now, mark = 5.0, 0.0, None
    for step in range(300):
        now = step * 0.1
        mark = state.take(amounts())  # this sidecar: 1 request every 0.1 s ...
        state.observe(Observation({"requests": Reading(remaining, 600, (600 - remaining) / 10)}), mark, now, scaled=True)
        # ... while the fleet uses 10 a second: what the provider refills
    view = state.provider[0]
    assert view is not None and view.bucket is not None
    assert view.share == pytest.approx(1.0, rel=0.05)  # it used all of it: 1 per 0.1 s is 10 a second
    fleet = KeyState()
    for step in range(300):
        now = step * 0.1
        mark = fleet.take(amounts()) if step % 10 == 0 else mark
        fleet.observe(Observation({"requests": Reading(remaining, 600, (600 - remaining) / 10)}), mark, now, scaled=True)
    share = fleet.provider[0]
    assert share is not None and share.bucket is not None
    assert share.share == pytest.approx(0.1, rel=0.15)
    assert share.bucket.rate == pytest.approx(10 * share.share * PACE)
    assert share.bucket.capacity == pytest.approx(600 * share.share)
    skip = fleet.check_provider(amounts(), 0.0, now)  # its tenth of the 5 left is half a request
    assert skip == "provider_rpm_limit" and skip is not None
    assert skip.retry_after == pytest.approx((1 - 5 * share.share) / share.bucket.rate)


def test_a_429_halves_the_share() -> None:
    state = KeyState()
    marks = state.take(amounts())
    state.observe(Observation({"requests": Reading(0, 600, 60)}), marks, 0.0, scaled=True)
    view = state.provider[0]
    assert view is not None
    before = view.share
    state.observe(Observation({"requests": Reading(0, 600, 60)}, retry_after=0.1), marks, 0.05, scaled=True)
    assert view.share == pytest.approx(before / 2)


def test_a_reserve_is_left_to_its_route() -> None:
    state = KeyState()
    state.configure(rpm=10, tpm=None, now=0.0)
    for _ in range(7):
        assert state.check_policy(amounts(), 0.3, 0.0) is None
        state.take(amounts())
    skip = state.check_policy(amounts(), 0.3, 0.0)  # 3 left: the reserve of 30%
    assert skip == "reserved_rpm_limit" and skip is not None and skip.retry_after == pytest.approx(6.0)
    assert state.check_policy(amounts(), 0.0, 0.0) is None  # the route holding it may use it
    for _ in range(3):
        state.take(amounts())
    assert state.check_policy(amounts(), 0.0, 0.0) == "local_rpm_limit"
