"""Quality monitor: heuristic checks on every answer, a sampled judge, regret sampling, and the
measurement hook that feeds them (plus feedback and per-arm metrics) off the hot path."""

from modelroute.quality.heuristics import CHECKS, run_checks

__all__ = ["CHECKS", "run_checks"]
