"""Worst-case cost of a request before it is sent, and token estimates for rate limits.

Worst case on one model = estimated input tokens (with a margin for tokenizer differences) at the
input price, plus the output cap at the output price. The output cap is the request's
``max_tokens`` (or ``max_completion_tokens``) when given, else the model's ``maxOutputTokens``,
else what is left of its ``contextWindow``. Validation refuses budgets over a model with neither,
so every estimate is bounded.

A batch's requests are each estimated the same way at batch prices (:func:`batch_worst_case_nano`)
and reserved together at submission.

Over a chain of candidates the reservation must cover whichever model ends up serving: the
largest worst case, or, when a cascade reviews answers (every candidate may be paid for), the sum.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_CEILING, Decimal

from modelroute.contract.spend import Work
from modelroute.routing import RequestView
from modelroute.spend.config import Prices

#: Estimated input tokens are characters / 4; real tokenizers may count more (code, other scripts).
INPUT_MARGIN_NUM, INPUT_MARGIN_DEN = 5, 4  # x 1.25
#: Output assumed for rate limits when the request sets no max_tokens (corrected from usage after).
DEFAULT_OUTPUT_TOKENS = 0


def reserve_input_tokens(view: RequestView) -> int:
    return _with_margin(view.input_tokens)


def _with_margin(tokens: int) -> int:
    return -(-tokens * INPUT_MARGIN_NUM // INPUT_MARGIN_DEN)


def output_cap(view: RequestView, prices: Prices) -> int:
    """Most output tokens the request can be billed for on a model."""
    return _output_cap(view.input_tokens, view.max_tokens, prices)


def _output_cap(input_tokens: int, max_tokens: int | None, prices: Prices) -> int:
    caps = []
    if max_tokens is not None and max_tokens > 0:
        caps.append(max_tokens)
    if prices.max_output is not None:
        caps.append(prices.max_output)
    if prices.context_window is not None:
        caps.append(max(1, prices.context_window - input_tokens))
    return min(caps) if caps else 0  # unbounded: validation refuses budgets over such a model


def worst_case_nano(view: RequestView, prices: Prices) -> int:
    """Worst-case USD of ``view`` on one model, in nano-USD (rounded up)."""
    pico = reserve_input_tokens(view) * prices.input + output_cap(view, prices) * prices.output
    return -(-pico // 1000)


def batch_worst_case_nano(work: Work, prices: Prices) -> int:
    """Worst-case USD of one batched request on its model at batch prices (``batchDiscount``), in
    nano-USD rounded up. ``output_tokens`` 0 (embeddings) bills no output."""
    output = 0 if work.output_tokens == 0 else _output_cap(work.input_tokens, work.output_tokens, prices)
    pico = Decimal(_with_margin(work.input_tokens) * prices.input + output * prices.output)
    if prices.batch_discount is not None:
        pico *= Decimal(str(prices.batch_discount))
    return int((pico / 1000).to_integral_value(rounding=ROUND_CEILING))


def chain_worst_case(costs: Iterable[int], *, reviewed: bool) -> int:
    values = list(costs)
    if not values:
        return 0
    return sum(values) if reviewed else max(values)


def rate_tokens(view: RequestView) -> int:
    """Tokens a request is expected to use, for tokens-per-minute buckets."""
    out = view.max_tokens if view.max_tokens is not None and view.max_tokens > 0 else DEFAULT_OUTPUT_TOKENS
    return view.input_tokens + out
