"""Recorded answers standing in for the providers while labelled lines replay.

A labelled RouterBench line holds every model's answer to its prompt and what that answer cost.
While such a line replays, :class:`RecordedClient` answers a strategy's model call with the
recorded answer when the call asks a model the line's own prompt (a cascade's agreement check
does), and refuses every other call (a judge's prompt, a classifier's, embeddings), counting it by
model: those replies were never recorded, and offline tools make no network calls.

:func:`run_cascade` makes a cascade's attempts the way the sidecar's attempt loop does: each
candidate's recorded answer goes to the cascade's own reviewer (the same checks as in the
sidecar), a rejected answer escalates to the next candidate, the last candidate is accepted as it
is, and every attempt and every check is paid for.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from modelroute.replay.offline import OfflineModelCall
from modelroute.replay.workload import Item, Recorded
from modelroute.routing import Decision, ModelReply, RequestView


class RecordedClient:
    """The ModelClient of a replay: recorded answers of the line replaying now, nothing else."""

    def __init__(self) -> None:
        self.item: Item | None = None  # the line being replayed
        self.refused: Counter[str] = Counter()  # model -> calls with no recorded reply

    async def complete(self, model: str, messages: list[dict[str, Any]], *, max_tokens: int, timeout: float,
                       logprobs: bool = False) -> ModelReply:
        item = self.item
        recorded = item.labels.get(model) if item is not None and item.labels is not None else None
        if recorded is not None and item is not None and list(messages) == list(item.body.get("messages") or ()):
            return ModelReply(text=recorded.answer, model=model, cost_usd=recorded.cost_usd, input_tokens=0, output_tokens=0)
        self.refused[model] += 1
        raise OfflineModelCall(f"no recorded reply of {model!r} to this call; offline tools make no model calls")

    async def embed(self, model: str, texts: list[str], *, timeout: float) -> tuple[list[list[float]], float]:
        self.refused[model] += 1
        raise OfflineModelCall(f"the strategy asked model {model!r} for embeddings; offline tools make no model calls")


@dataclass(frozen=True, slots=True)
class Cascaded:
    """Where a replayed cascade ended: the model served, all it cost, and each escalation's reason."""

    model: str
    cost_usd: float
    escalations: tuple[str, ...]


async def run_cascade(decision: Decision, view: RequestView, labels: Mapping[str, Recorded]) -> Cascaded | None:
    """The cascade's attempts on recorded answers; None when a candidate has no recorded answer."""
    reviewer, candidates = decision.reviewer, decision.candidates
    if reviewer is None or any(model not in labels for model in candidates):
        return None
    cost, reasons = 0.0, list[str]()
    for index, model in enumerate(candidates):
        recorded = labels[model]
        cost += recorded.cost_usd
        if index == len(candidates) - 1:
            break
        review = await reviewer.review(view, model, completion(model, recorded.answer))
        cost += review.cost_usd
        if review.accept:
            return Cascaded(model, cost, tuple(reasons))
        reasons.append(f"{model}: {review.reason}")
    return Cascaded(candidates[-1], cost, tuple(reasons))


def completion(model: str, text: str) -> dict[str, Any]:
    """A recorded answer as the ``chat.completion`` body a provider would have sent."""
    return {"object": "chat.completion", "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]}
