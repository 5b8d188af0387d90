"""The judge: score one answer 0..1, or compare a routed answer with the baseline's (regret).

Both calls go through the narrow :class:`~modelroute.routing.ModelClient` (no routing, no
fallbacks). Position bias in comparisons is cancelled by showing the two answers in a random order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from modelroute.quality.config import COMPARE_PROMPT, JudgeConfig
from modelroute.routing import ModelClient

_NUMBER = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?|\.\d+)")
_VERDICT = re.compile(r"\b(A|B|TIE)\b", re.IGNORECASE)
#: Longest question or answer text sent to the judge, in characters (the judge's cost stays bounded).
MAX_TEXT = 8000


class JudgeError(ValueError):
    """The judge's reply could not be read."""


@dataclass(frozen=True, slots=True)
class Verdict:
    value: float | str  # a score 0..1, or "routed_ok" / "baseline_better"
    cost_usd: float
    model: str


def parse_score(text: str) -> float:
    """The first number of a judge reply, as a score in 0..1 (10 or 100-point scales are scaled)."""
    match = _NUMBER.search(text)
    if match is None:
        raise JudgeError(f"no score in the judge's reply {text[:60]!r}")
    value = float(match.group(1))
    if value > 1:
        value = value / 10 if value <= 10 else value / 100
    if not 0 <= value <= 1:
        raise JudgeError(f"score {match.group(1)} is out of range")
    return value


def parse_choice(text: str) -> str:
    """``A``, ``B`` or ``TIE`` from a comparison reply."""
    match = _VERDICT.search(text)
    if match is None:
        raise JudgeError(f"no verdict in the judge's reply {text[:60]!r}")
    return match.group(1).upper()


def _clip(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + " [...]"


async def score(client: ModelClient, cfg: JudgeConfig, question: str, answer: str) -> Verdict:
    prompt = cfg.prompt.replace("{question}", _clip(question)).replace("{answer}", _clip(answer))
    reply = await client.complete(cfg.model, [{"role": "user", "content": prompt}], max_tokens=cfg.max_tokens,
                                  timeout=cfg.timeout_seconds)
    return Verdict(parse_score(reply.text), reply.cost_usd, cfg.model)


async def compare(client: ModelClient, cfg: JudgeConfig, question: str, routed: str, baseline: str, swap: bool) -> Verdict:
    """Whether the baseline's answer is better than the routed one (a tie is no regret).

    ``swap`` shows the baseline's answer first (the caller picks it at random).
    """
    a, b = (baseline, routed) if swap else (routed, baseline)
    prompt = COMPARE_PROMPT.format(question=_clip(question), a=_clip(a), b=_clip(b))
    reply = await client.complete(cfg.model, [{"role": "user", "content": prompt}], max_tokens=cfg.max_tokens,
                                  timeout=cfg.timeout_seconds)
    choice = parse_choice(reply.text)
    baseline_label = "A" if swap else "B"
    return Verdict("baseline_better" if choice == baseline_label else "routed_ok", reply.cost_usd, cfg.model)
