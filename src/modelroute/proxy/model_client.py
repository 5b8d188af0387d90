"""The narrow client strategies use to call a registry model (a classifier, a judge, an embedder).

It calls the model's provider directly, without routing or fallbacks, and reports the cost.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from modelroute.policy import CompiledPolicy
from modelroute.providers import Provider
from modelroute.routing import ModelReply
from modelroute.telemetry.cost import cost_usd


class ProxyModelClient:
    """Each call is a child span of the current span (the request's, while routing decides), and
    carries its trace context upstream. Without a tracer (the quality monitor's judge, whose
    calls run in the background, outside any request) calls are neither traced nor propagated."""

    def __init__(self, policy: CompiledPolicy, providers: Mapping[str, Provider], tracer: trace.Tracer | None = None) -> None:
        self._policy = policy
        self._providers = providers
        self._tracer = tracer

    def _span(self, operation: str, model: str) -> Any:
        spec = self._policy.models[model]
        assert self._tracer is not None
        return self._tracer.start_as_current_span(
            f"{operation} {spec.upstream_model}", kind=SpanKind.CLIENT, record_exception=False, set_status_on_exception=False,
            attributes={"gen_ai.operation.name": operation, "gen_ai.request.model": spec.upstream_model,
                        "gen_ai.provider.name": self._policy.providers[spec.provider].type,
                        "modelroute.model": model, "modelroute.purpose": "routing"},
        )

    def _target(self, model: str) -> tuple[Provider, Any]:
        spec = self._policy.models[model]
        return self._providers[spec.provider], spec

    async def complete(self, model: str, messages: list[dict[str, Any]], *, max_tokens: int, timeout: float,
                       logprobs: bool = False) -> ModelReply:
        provider, spec = self._target(model)
        body: dict[str, Any] = {"model": model, "messages": messages, "max_tokens": max_tokens, "temperature": 0}
        if logprobs:
            body["logprobs"] = True
        if self._tracer is None:
            result = await provider.chat(body, spec, timeout=timeout, headers={})
            cost = float(cost_usd(result.usage, spec.pricing))
        else:
            with self._span("chat", model) as span:
                try:
                    result = await provider.chat(body, spec, timeout=timeout, headers=_trace_headers())
                except Exception as exc:
                    span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                    raise
                cost = float(cost_usd(result.usage, spec.pricing))
                if span.is_recording() and result.usage is not None:
                    span.set_attributes({"gen_ai.usage.input_tokens": result.usage.input_tokens,
                                         "gen_ai.usage.output_tokens": result.usage.output_tokens, "modelroute.cost_usd": cost})
        choice = (result.body.get("choices") or [{}])[0]
        message = choice.get("message") or {}
        usage = result.usage
        return ModelReply(
            text=str(message.get("content") or ""),
            model=model,
            cost_usd=cost,
            input_tokens=usage.input_tokens if usage else 0,
            output_tokens=usage.output_tokens if usage else 0,
            finish_reason=choice.get("finish_reason"),
            logprobs=_logprobs(choice),
        )

    async def embed(self, model: str, texts: list[str], *, timeout: float) -> tuple[list[list[float]], float]:
        provider, spec = self._target(model)
        if self._tracer is None:
            result = await provider.embeddings({"model": model, "input": texts}, spec, timeout=timeout, headers={})
        else:
            with self._span("embeddings", model):
                result = await provider.embeddings({"model": model, "input": texts}, spec, timeout=timeout, headers=_trace_headers())
        rows = sorted(result.body.get("data") or [], key=lambda d: d.get("index", 0))
        return [list(map(float, row["embedding"])) for row in rows], float(cost_usd(result.usage, spec.pricing))


def _logprobs(choice: Mapping[str, Any]) -> tuple[float, ...] | None:
    content = (choice.get("logprobs") or {}).get("content")
    if not isinstance(content, list):
        return None
    return tuple(float(t.get("logprob", 0.0)) for t in content if isinstance(t, Mapping))


def _trace_headers() -> dict[str, str]:
    headers: dict[str, str] = {}
    propagate.inject(headers)
    return headers
