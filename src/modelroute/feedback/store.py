"""Which policy, route, model and arm served a request: the join behind ``POST /v1/feedback``.

Each answered request is indexed by its ``x-modelroute-request-id`` for ``ttl`` seconds (the
policy's ``quality.feedback.ttlSeconds``), in a bounded map that forgets the oldest entries first.
Only labels are kept, never the prompt or the answer. One feedback per request is accepted.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

#: An id is kept until MAX_ENTRIES more have been added, its time to live allowing: the index holds
#: MAX_ENTRIES ids, about 210 bytes each with the id (21 MB).
MAX_ENTRIES = 100_000

#: Who served a request: policy, policy version, route, model, experiment, arm. One tuple is shared
#: by every request of the same route, model and arm.
ServedLabels = tuple[str, str, str, str, str, str]
#: An index entry: the labels, when it expires, and the kind of feedback already recorded (if any).
_Entry = tuple[ServedLabels, float] | tuple[ServedLabels, float, str]


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
    """request id -> :data:`ServedLabels`, for feedback to find.

    Every answered request is added, so adding must be cheap. Two plain dicts take the ids in
    turns: new ids go into the young one; when it holds ``max_entries`` it becomes the old one.
    Each addition forgets the oldest id of the old generation (from a list of its ids taken at the
    turn), so the old one is empty by the next turn, no call frees thousands of entries at once, and
    every id stays until ``max_entries`` more have been added.
    A lookup checks expiry itself; an expired entry is refused, and forgotten with its generation.
    """

    def __init__(self, max_entries: int = MAX_ENTRIES, clock: Callable[[], float] = time.monotonic) -> None:
        self._young: dict[str, _Entry] = {}
        self._old: dict[str, _Entry] = {}
        self._leaving: list[str] = []  # the old generation's ids, oldest first
        self._left = 0  # how many of them are gone
        self._generation = max(1, max_entries)
        self._clock = clock

    def __len__(self) -> int:
        return len(self._young) + len(self._old)

    def add(self, request_id: str, labels: ServedLabels, ttl: float) -> None:
        young = self._young
        young[request_id] = (labels, self._clock() + ttl)
        if self._left < len(self._leaving):
            self._old.pop(self._leaving[self._left], None)
            self._left += 1
        if len(young) >= self._generation:
            self._old, self._young = young, {}
            self._leaving, self._left = list(young), 0

    def claim(self, request_id: str, kind: str) -> Served:
        """The entry of ``request_id``, marked as having feedback; FeedbackError when it cannot take one."""
        generation = self._young if request_id in self._young else self._old
        entry = generation.get(request_id)
        if entry is None or entry[1] <= self._clock():
            generation.pop(request_id, None)
            raise FeedbackError(f"unknown or expired request_id {request_id!r}: feedback is accepted for answers of this "
                                "sidecar for a while after they are served (quality.feedback.ttlSeconds, default 3600)",
                                404, "request_not_found")
        if len(entry) == 3:
            raise FeedbackError(f"feedback for {request_id!r} was already recorded ({entry[2]})", 409, "feedback_exists")
        labels, expires = entry[0], entry[1]
        generation[request_id] = (labels, expires, kind)
        return Served(request_id, *labels, expires=expires, feedback=kind)
