"""Calendar windows (UTC) and budget keys, on injected clocks (rate-limit buckets: tests/ratelimits)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from modelroute.spend import windows
from modelroute.spend.config import Budget, SpendConfig, to_nano
from modelroute.spend.ledger import Ledger


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize("kind, now, start, end, label", [
    ("hour", utc(2026, 11, 1, 13, 59, 59), utc(2026, 11, 1, 13), utc(2026, 11, 1, 14), "hour:2026-11-01T13"),
    ("day", utc(2026, 12, 31, 23, 59), utc(2026, 12, 31), utc(2027, 1, 1), "day:2026-12-31"),
    ("week", utc(2026, 11, 1, 8), utc(2026, 10, 26), utc(2026, 11, 2), "week:2026-10-26"),  # a Sunday: week began Monday
    ("month", utc(2026, 12, 15), utc(2026, 12, 1), utc(2027, 1, 1), "month:2026-12"),
    ("month", utc(2028, 2, 29, 23), utc(2028, 2, 1), utc(2028, 3, 1), "month:2028-02"),
])
def test_windows_follow_the_utc_calendar(kind: str, now: datetime, start: datetime, end: datetime, label: str) -> None:
    assert windows.bounds(kind, now) == (start, end)
    assert windows.label(kind, start) == label


async def test_budget_rolls_over_at_utc_midnight() -> None:
    now = [utc(2026, 11, 1, 23, 59, 59).timestamp()]
    ledger = Ledger(clock=lambda: now[0])
    cfg = SpendConfig("v1", (Budget("daily", "day", to_nano(1)),))
    keys = ledger.keys(cfg, "p", {})
    assert (await ledger.reserve(cfg, keys, to_nano(0.9), 60)).reservation is not None
    assert (await ledger.reserve(cfg, keys, to_nano(0.2), 60)).reservation is None  # 0.1 left today
    now[0] = utc(2026, 11, 2, 0, 0, 1).timestamp()
    tomorrow = ledger.keys(cfg, "p", {})
    assert tomorrow[0].window == "day:2026-11-02" and tomorrow[0].storage_key != keys[0].storage_key
    assert (await ledger.reserve(cfg, tomorrow, to_nano(0.9), 60)).reservation is not None


def test_header_scoped_budgets_are_one_per_value() -> None:
    ledger = Ledger(clock=lambda: utc(2026, 11, 1).timestamp())
    cfg = SpendConfig("v1", (Budget("team", "day", to_nano(1), header="x-team"), Budget("all", "month", to_nano(9))))
    a = ledger.keys(cfg, "p", {"x-team": "search"})
    b = ledger.keys(cfg, "p", {"x-team": "ads:{evil}"})
    assert [k.budget.name for k in a] == ["team", "all"] and a[1] == b[1]
    assert a[0].storage_key != b[0].storage_key and "{evil}" not in b[0].storage_key  # the Redis hash tag is the policy's
    assert [k.budget.name for k in ledger.keys(cfg, "p", {})] == ["all"]
