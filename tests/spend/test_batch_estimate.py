"""A batch's worst case, request by request at batch prices: the figure a batch holds at submission."""

from __future__ import annotations

import pytest

from modelroute.contract.spend import Work
from modelroute.spend.config import Prices
from modelroute.spend.estimate import batch_worst_case_nano

#: USD 1 / 5 per 1M tokens (1,000,000 / 5,000,000 pico-USD per token), half price in batch.
HAIKU = Prices(input=1_000_000, output=5_000_000, max_output=1024, context_window=200_000, batch_discount=0.5)


@pytest.mark.parametrize("work, nano", [
    # 100 input tokens with the 25% margin (125) + max_tokens 200, halved: (125 * 1 + 200 * 5) / 2 micro-USD
    (Work("m", 100, 200), 562_500),
    # no max_tokens: the model's output cap (1024)
    (Work("m", 100, None), (125_000 + 1024 * 5_000) // 2),
    # max_tokens above the cap: the cap
    (Work("m", 100, 5000), (125_000 + 1024 * 5_000) // 2),
    # embeddings: no output billed
    (Work("m", 100, 0), 62_500),
])
def test_worst_case_at_batch_prices(work: Work, nano: int) -> None:
    assert batch_worst_case_nano(work, HAIKU) == nano


def test_rounded_up_never_down() -> None:
    """1 token with its margin is 2 tokens: 6 pico-USD at 3 pico a token, halved 3 pico: 1 nano-USD."""
    tiny = Prices(input=3, output=0, max_output=1, context_window=None, batch_discount=0.5)
    assert batch_worst_case_nano(Work("m", 1, 0), tiny) == 1


def test_without_a_batch_discount_the_full_price() -> None:
    full = Prices(input=1_000_000, output=5_000_000, max_output=1024, context_window=None)
    assert batch_worst_case_nano(Work("m", 100, 200), full) == 1_125_000
