"""Circuit breakers: a model that keeps failing is cooled down and skipped for a while.

State is per registry model and outlives policy reloads. ``failure_threshold`` consecutive
unhealthy failures open the breaker for ``cooldown_seconds``; after that one request may try
again (half-open): success closes it, another failure opens it again. A 429 with ``retry-after``
cools the model down for exactly that long.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from modelroute.policy.model import CircuitBreaker


@dataclass(slots=True)
class _State:
    failures: int = 0
    open_until: float = 0.0
    reason: str = ""


class Breakers:
    def __init__(self) -> None:
        self._states: dict[str, _State] = {}
        self._clock = time.monotonic

    def cooling(self, model: str) -> float:
        """Seconds left in ``model``'s cooldown (0 when it may be tried)."""
        state = self._states.get(model)
        if state is None:
            return 0.0
        return max(0.0, state.open_until - self._clock())

    def reason(self, model: str) -> str:
        state = self._states.get(model)
        return state.reason if state else ""

    def success(self, model: str) -> None:
        state = self._states.get(model)
        if state is not None and (state.failures or state.open_until):
            state.failures, state.open_until, state.reason = 0, 0.0, ""

    def failure(self, model: str, config: CircuitBreaker, reason: str) -> bool:
        """Count an unhealthy failure; returns True when it opened the breaker."""
        state = self._states.setdefault(model, _State())
        state.failures += 1
        if state.failures >= config.failure_threshold and config.cooldown_seconds > 0:
            state.open_until = self._clock() + config.cooldown_seconds
            state.reason = f"{state.failures} consecutive failures ({reason})"
            return True
        return False

    def cool_down(self, model: str, seconds: float, reason: str) -> None:
        """Skip ``model`` for ``seconds`` (a rate limit with retry-after)."""
        state = self._states.setdefault(model, _State())
        until = self._clock() + seconds
        if until > state.open_until:
            state.open_until, state.reason = until, reason

    def open_models(self) -> list[str]:
        now = self._clock()
        return [m for m, s in self._states.items() if s.open_until > now]
