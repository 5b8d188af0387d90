"""Confidence intervals and significance tests from the sums Prometheus keeps (n, sum, sum of squares).

Means use the normal approximation (Welch's z for two arms), proportions the Wilson interval and
the pooled two-proportion z-test. With fewer than :data:`MIN_N` observations per arm a difference
is never called significant: the approximation does not hold there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Z95 = 1.959963984540054
MIN_N = 30
ALPHA = 0.05


@dataclass(frozen=True, slots=True)
class Estimate:
    """A mean (or proportion) with its 95% interval, from ``n`` observations."""

    n: float
    mean: float
    low: float
    high: float
    variance: float  # of one observation

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2


def mean_estimate(n: float, total: float, squares: float) -> Estimate | None:
    if n <= 0:
        return None
    mean = total / n
    variance = max(0.0, squares / n - mean * mean) * (n / (n - 1) if n > 1 else 1.0)
    half = Z95 * math.sqrt(variance / n) if n > 1 else math.inf
    return Estimate(n, mean, mean - half, mean + half, variance)


def proportion_estimate(successes: float, n: float) -> Estimate | None:
    """Wilson score interval."""
    if n <= 0:
        return None
    p = successes / n
    z2 = Z95 * Z95
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z95 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return Estimate(n, p, max(0.0, centre - half), min(1.0, centre + half), p * (1 - p))


def _two_sided(z: float) -> float:
    return math.erfc(abs(z) / math.sqrt(2))


def welch_p(a: Estimate, b: Estimate) -> float | None:
    """Two-sided p-value of a difference of means (normal approximation); None when undefined."""
    if a.n < 2 or b.n < 2:
        return None
    se = math.sqrt(a.variance / a.n + b.variance / b.n)
    if se == 0:
        return None if a.mean == b.mean else 0.0
    return _two_sided((a.mean - b.mean) / se)


def proportions_p(a: Estimate, b: Estimate) -> float | None:
    """Two-sided p-value of a difference of proportions (pooled z-test)."""
    n = a.n + b.n
    if a.n <= 0 or b.n <= 0:
        return None
    pooled = (a.mean * a.n + b.mean * b.n) / n
    se = math.sqrt(pooled * (1 - pooled) * (1 / a.n + 1 / b.n))
    if se == 0:
        return None if a.mean == b.mean else 0.0
    return _two_sided((a.mean - b.mean) / se)


def significant(p: float | None, a: Estimate | None, b: Estimate | None) -> bool:
    return p is not None and a is not None and b is not None and min(a.n, b.n) >= MIN_N and p < ALPHA
