"""Calendar budget windows in UTC: an hour, a day, an ISO week (from Monday) or a month.

A window is named by its kind and start (``day:2026-11-01``); every store keys spend by that name,
so spend rolls over exactly at the calendar boundary, and two replicas agree on the window without
talking to each other.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

WINDOWS = ("hour", "day", "week", "month")


def bounds(window: str, now: datetime) -> tuple[datetime, datetime]:
    """(start, end) of the ``window`` containing ``now`` (an aware datetime), in UTC."""
    now = now.astimezone(UTC)
    if window == "hour":
        start = now.replace(minute=0, second=0, microsecond=0)
        return start, start + timedelta(hours=1)
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if window == "day":
        return day, day + timedelta(days=1)
    if window == "week":
        start = day - timedelta(days=day.weekday())
        return start, start + timedelta(days=7)
    if window == "month":
        start = day.replace(day=1)
        end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
        return start, end
    raise ValueError(f"unknown budget window {window!r}")


def label(window: str, start: datetime) -> str:
    """The window's name, e.g. ``hour:2026-11-01T13``, ``day:2026-11-01``, ``month:2026-11``."""
    if window == "hour":
        return f"hour:{start:%Y-%m-%dT%H}"
    if window == "month":
        return f"month:{start:%Y-%m}"
    return f"{window}:{start:%Y-%m-%d}"
