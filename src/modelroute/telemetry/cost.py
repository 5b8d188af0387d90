"""Cost in USD of a request's tokens at a registry model's prices, exact to the last digit.

``cost`` is what was paid (the serving model's prices); ``baseline cost`` is the same tokens at
the baseline model's prices. Decimal arithmetic keeps header values such as ``0.0000045`` exact.
"""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache

from modelroute.policy import Pricing
from modelroute.providers.base import Usage

_MILLION = Decimal(1_000_000)
ZERO = Decimal(0)


@lru_cache(maxsize=1024)
def _d(value: float) -> Decimal:
    return Decimal(str(value))


def cost_usd(usage: Usage | None, pricing: Pricing, *, batch: bool = False) -> Decimal:
    """USD for ``usage`` at ``pricing``.

    Cached input tokens are priced at ``cachedInput`` and cache writes at ``cacheWrite`` when the
    registry gives those prices, otherwise as ordinary input.
    """
    if usage is None:
        return ZERO
    cached = usage.cached_input_tokens if pricing.cached_input is not None else 0
    written = usage.cache_write_tokens if pricing.cache_write is not None else 0
    plain = max(0, usage.input_tokens - cached - written)
    total = plain * _d(pricing.input) + usage.output_tokens * _d(pricing.output)
    if cached:
        total += cached * _d(pricing.cached_input or 0.0)
    if written:
        total += written * _d(pricing.cache_write or 0.0)
    total /= _MILLION
    if batch and pricing.batch_discount is not None:
        total *= _d(pricing.batch_discount)
    return total


def format_usd(value: Decimal) -> str:
    """A plain decimal at full precision: ``0.0000045``, never ``4.5E-6``."""
    if value == 0:
        return "0"
    text = format(value.normalize(), "f")
    return text
