"""Which policy, route, model and arm served a request: the join behind ``POST /v1/feedback``.

Each answered request is indexed by its ``x-modelroute-request-id`` for ``ttl`` seconds (the
policy's ``quality.feedback.ttlSeconds``), in a bounded map that forgets the oldest entries first.
Only labels are kept, never the prompt or the answer. One feedback per request is accepted.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

#: Entries kept at most (about 300 bytes each).
MAX_ENTRIES = 100_000
#: Expired entries are swept every this many additions.
EXPIRY_SWEEP = 256


@dataclass(slots=True)
class Served:
    request_id: str
    policy: str
    policy_version: str
    route: str
    model: str
    experiment: str
    arm: str
    expires: float
    feedback: str | None = None  # the kind already recorded

    def labels(self) -> tuple[str, str, str, str, str]:
        return (self.policy, self.route, self.model, self.experiment, self.arm)

    def to_dict(self) -> dict[str, Any]:
        return {"request_id": self.request_id, "policy": self.policy, "policy_version": self.policy_version,
                "route": self.route, "model": self.model, "experiment": self.experiment or None, "arm": self.arm or None}


class FeedbackError(LookupError):
    """Feedback that cannot be joined: ``status`` 404 (unknown or expired) or 409 (already given)."""

    def __init__(self, message: str, status: int, code: str) -> None:
        super().__init__(message)
        self.status, self.code = status, code


@dataclass(frozen=True, slots=True)
class Feedback:
    kind: str  # score | up | down
    score: float


def parse_feedback(body: Mapping[str, Any]) -> tuple[str, Feedback]:
    """(request_id, feedback) of a ``POST /v1/feedback`` body; ValueError naming what is wrong."""
    request_id = body.get("request_id")
    if not isinstance(request_id, str) or not request_id:
        raise ValueError("request_id is required (the x-modelroute-request-id of the answer)")
    has_score, has_thumbs = "score" in body, "thumbs" in body
    if has_score == has_thumbs:
        raise ValueError("give exactly one of score (0..1) or thumbs (up or down)")
    if has_thumbs:
        if body["thumbs"] not in ("up", "down"):
            raise ValueError("thumbs must be 'up' or 'down'")
        return request_id, Feedback(str(body["thumbs"]), 1.0 if body["thumbs"] == "up" else 0.0)
    value = body["score"]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError("score must be a number from 0 to 1")
    return request_id, Feedback("score", float(value))


class RequestIndex:
    def __init__(self, max_entries: int = MAX_ENTRIES, clock: Callable[[], float] = time.monotonic) -> None:
        self._items: OrderedDict[str, Served] = OrderedDict()
        self._max = max_entries
        self._clock = clock
        self._added = 0

    def __len__(self) -> int:
        return len(self._items)

    def add(self, entry: Served) -> None:
        items = self._items
        items[entry.request_id] = entry
        if len(items) > self._max:
            items.popitem(last=False)
        self._added += 1
        if self._added % EXPIRY_SWEEP == 0:  # claim() checks expiry itself: sweeping only frees memory
            self._sweep()

    def _sweep(self) -> None:
        """Forget expired entries: added in time order, they sit at the front."""
        items, now = self._items, self._clock()
        while items:
            first = next(iter(items.values()))
            if first.expires > now:
                break
            items.popitem(last=False)

    def expires_at(self, ttl: float) -> float:
        return self._clock() + ttl

    def claim(self, request_id: str, kind: str) -> Served:
        """The entry of ``request_id``, marked as having feedback; FeedbackError when it cannot take one."""
        entry = self._items.get(request_id)
        if entry is None or entry.expires <= self._clock():
            self._items.pop(request_id, None)
            raise FeedbackError(f"unknown or expired request_id {request_id!r}: feedback is accepted for answers of this "
                                "sidecar for a while after they are served (quality.feedback.ttlSeconds, default 3600)",
                                404, "request_not_found")
        if entry.feedback is not None:
            raise FeedbackError(f"feedback for {request_id!r} was already recorded ({entry.feedback})", 409, "feedback_exists")
        entry.feedback = kind
        return entry
