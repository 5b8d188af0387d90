"""Routing without a sidecar: the real router on a policy file, as ``test``, ``explain`` and ``replay`` use it.

:func:`decide_offline` gives the sidecar's own decision for a request body and headers, or the
error code the sidecar would answer with (``model_not_found``, ``no_eligible_model``,
``context_length_exceeded``). Strategies that must call a model (a classifier, a remote embedder)
get a client that refuses: offline tools never touch the network.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from modelroute.policy import CompiledPolicy
from modelroute.providers.base import Usage
from modelroute.routing import Decision, ModelReply, RequestView, Router, UnknownModel, build_view
from modelroute.telemetry.cost import cost_usd

#: Output tokens assumed for the expected cost when the request sets no max_tokens.
DEFAULT_OUTPUT_TOKENS = 256


class OfflineModelCall(RuntimeError):
    """A strategy tried to call a model while routing offline."""


class NoModelClient:
    """The ModelClient offline tools hand to strategies: every call is refused, by name."""

    async def complete(self, model: str, messages: list[dict[str, Any]], *, max_tokens: int, timeout: float,
                       logprobs: bool = False) -> ModelReply:
        raise OfflineModelCall(f"the strategy asked model {model!r} for a completion; offline tools make no model calls")

    async def embed(self, model: str, texts: list[str], *, timeout: float) -> tuple[list[list[float]], float]:
        raise OfflineModelCall(f"the strategy asked model {model!r} for embeddings; offline tools make no model calls")


@dataclass(frozen=True, slots=True)
class Outcome:
    view: RequestView
    decision: Decision | None
    error: str | None = None  # the sidecar's error code when there is no model to try
    message: str = ""

    @property
    def model(self) -> str | None:
        return self.decision.model if self.decision else None

    @property
    def route(self) -> str | None:
        return self.decision.route if self.decision else None


def lower(headers: Mapping[str, Any] | None) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in (headers or {}).items()}


async def decide_offline(router: Router, body: Mapping[str, Any], headers: Mapping[str, Any] | None = None) -> Outcome:
    view = build_view(body, lower(headers))
    try:
        decision = await router.decide(view)
    except UnknownModel as exc:
        return Outcome(view, None, "model_not_found", f"the model {exc.args[0]!r} does not exist")
    if not decision.candidates:
        reasons = "; ".join(f"{s.model}: {s.reason}" for s in decision.skipped)
        code = "context_length_exceeded" if all("context window" in s.reason for s in decision.skipped) else "no_eligible_model"
        return Outcome(view, decision, code, f"no model of route {decision.route!r} can serve this request ({reasons})")
    return Outcome(view, decision)


def expected_usage(view: RequestView, output_tokens: int | None = None) -> Usage:
    """Estimated input tokens, and max_tokens (or ``output_tokens``, or the default) out."""
    out = view.max_tokens or output_tokens or DEFAULT_OUTPUT_TOKENS
    return Usage(input_tokens=view.input_tokens, output_tokens=out)


def expected_cost(policy: CompiledPolicy, model: str, usage: Usage) -> Decimal:
    return cost_usd(usage, policy.models[model].pricing)
