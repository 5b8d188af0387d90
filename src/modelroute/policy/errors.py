"""Policy errors: every problem carries the field path it was found at."""

from __future__ import annotations

from typing import Iterable, NamedTuple


class Problem(NamedTuple):
    path: str  # e.g. "spec.routes[1].model"
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class PolicyError(ValueError):
    """A policy that cannot be used. ``problems`` lists every problem found, each with its path."""

    def __init__(self, problems: Iterable[tuple[str, str]]) -> None:
        self.problems = [Problem(*p) for p in problems]
        super().__init__("; ".join(str(p) for p in self.problems) or "invalid policy")
