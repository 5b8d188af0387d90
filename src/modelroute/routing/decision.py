"""Decision: what routing concluded for one request."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelroute.routing.strategy import Reviewer


@dataclass(frozen=True, slots=True)
class Skip:
    """A model of the chain left out before any attempt, and why."""

    model: str
    reason: str  # e.g. "no tools capability", "context window 8000 < 9100 tokens"


@dataclass(frozen=True, slots=True)
class Decision:
    route: str
    strategy: str  # "rules", "pinned", "default", or a strategy's type
    candidates: tuple[str, ...]  # the chosen model, then its fallbacks, each eligible for the request
    reason: str
    skipped: tuple[Skip, ...] = ()
    annotations: dict[str, Any] = field(default_factory=dict)  # strategy outputs (labels, scores, costs)
    reviewer: Reviewer | None = None  # set by a cascade: answers are reviewed before the client sees them
    cost_usd: float = 0.0  # what deciding cost (classifier or embedding calls), added to the request's cost

    @property
    def model(self) -> str | None:
        return self.candidates[0] if self.candidates else None
