"""One request's way through the sidecar: its runtime, decision, attempts, cost, span and metrics.

An :class:`Exchange` is created at ingress and settled exactly once at egress, whatever the
outcome; settling ends the span and records the metrics.
"""

from __future__ import annotations

import time
import asyncio
import logging
import os
import random
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Callable, Mapping, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from modelroute.providers.base import Usage
from modelroute.providers.translate import metric_label
from modelroute.contract.hooks import HookPlan
from modelroute.proxy.state import Runtime, Services
from modelroute.routing import Decision, RequestView
from modelroute.routing.answers import AnswerBuilder, read_answer
from modelroute.telemetry.cost import ZERO, cost_usd, format_usd
from modelroute.telemetry.tracing import IdOnlyTracer

if TYPE_CHECKING:
    from modelroute.proxy.codecs import ClientCodec, Incoming

T = TypeVar("T")
TRACE_HEADERS = ("traceparent", "tracestate")
log = logging.getLogger("modelroute.proxy")
_ids = random.Random(int.from_bytes(os.urandom(16), "big"))  # request ids: unique, not secrets


@dataclass(slots=True)
class Attempt:
    """One upstream attempt (or a model passed over without one)."""

    model: str
    outcome: str  # ok | error | skipped | rejected
    reason: str = ""
    usage: Usage | None = None
    seconds: float = 0.0
    retry_after: float | None = None
    detail: str = ""  # what the client should read about it (a missing key: where it is expected)


@dataclass
class Exchange:
    services: Services
    runtime: Runtime
    operation: str  # chat | embeddings
    incoming_headers: Mapping[str, str]
    codec: ClientCodec | None = None  # the client's API (None: an endpoint outside the pipeline)
    incoming: Incoming | None = None
    request_id: str = field(default_factory=lambda: f"req_{_ids.getrandbits(96):024x}")
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None  # when the exchange settled (the answer complete, or the error sent)
    view: RequestView | None = None
    decision: Decision | None = None
    attempts: list[Attempt] = field(default_factory=list)
    served: str | None = None
    usage: Usage | None = None
    first_chunk_at: float | None = None
    dropped: tuple[str, ...] = ()
    status: str = "ok"
    extra_cost: Decimal = ZERO  # reviews (judge calls) and other spending beside the attempts
    usage_estimated: bool = False  # usage is the sidecar's estimate (a stream the client left early)
    _answer: Mapping[str, Any] | None = None
    answer_chunks: list[bytes] | None = None  # a streamed answer's chat chunk payloads, until ``answer`` reads them
    answer_from: Callable[[], Mapping[str, Any] | None] | None = None  # makes ``answer`` when first read
    collect_answer: bool = False  # a hook reads answers: streamed ones are reassembled
    error_type: str | None = None
    hooks: HookPlan = field(init=False)  # the hooks with work for this request's policy
    span: trace.Span = field(init=False)
    _parent: otel_context.Context = field(init=False)
    _settled: bool = False
    _cost: Decimal | None = None
    _slots: dict[int, Any] | None = None  # the hooks' per-request state

    # -- the request record hooks see (modelroute.contract.hooks.RequestRecord, Admission) --

    @property
    def headers(self) -> Mapping[str, str]:
        return self.incoming_headers

    def slot(self, owner: object, make: Callable[[], T]) -> T:
        slots = self._slots
        if slots is None:
            slots = self._slots = {}
        found = slots.get(id(owner))
        if found is None:
            found = slots[id(owner)] = make()
        return found

    def note(self, key: str, value: str | int | float | bool) -> None:
        if self.span.is_recording():
            self.span.set_attribute(key, value)

    def replace_decision(self, decision: Decision) -> None:
        self.decision = decision

    def serve_as(self, model: str) -> None:
        self.served = model

    @property
    def answer(self) -> Mapping[str, Any] | None:
        """The ``chat.completion`` body served (a stream's when collected), reassembled from the
        streamed chunks when first read: after the client has it all, and only if a hook reads it."""
        if self._answer is None and self.answer_chunks is not None:
            self._answer, self.answer_chunks = AnswerBuilder.from_chunks(self.answer_chunks), None
        elif self._answer is None and self.answer_from is not None:
            make, self.answer_from = self.answer_from, None
            self._answer = make()
        return self._answer

    @answer.setter
    def answer(self, value: Mapping[str, Any] | None) -> None:
        self._answer = value

    def __post_init__(self) -> None:
        self.hooks = self.services.hooks.plan(self.runtime.policy)
        self.collect_answer = self.hooks.collect_answer or self.runtime.policy.telemetry.record_prompts
        has_context = "traceparent" in self.incoming_headers or "baggage" in self.incoming_headers
        self._parent = propagate.extract(self.incoming_headers) if has_context else otel_context.Context()
        self.span = self.services.tracer.start_span(f"{self.operation} route", context=self._parent, kind=SpanKind.SERVER)
        if self.span.is_recording():  # attributes cost time even on a span that records nothing
            self.span.set_attributes({"gen_ai.operation.name": self.operation, "modelroute.request_id": self.request_id})

    @property
    def policy(self) -> Any:
        return self.runtime.policy

    @property
    def route(self) -> str:
        return self.decision.route if self.decision else "none"

    @property
    def seconds(self) -> float:
        """How long the exchange took, from ingress to settling (so far, while unsettled)."""
        return (self.ended if self.ended is not None else time.monotonic()) - self.started

    @property
    def deadline(self) -> float:
        return self.started + float(self.policy.timeouts.request_seconds)

    def upstream_headers(self, span: trace.Span) -> dict[str, str]:
        """Trace context for an upstream call: the attempt span's, the request span's when nothing
        is recorded, else the client's own."""
        headers: dict[str, str] = {}
        recording = span.is_recording()
        ctx = (span if recording else self.span).get_span_context()
        if ctx.is_valid and not recording:  # the W3C header by hand: what the propagator writes
            headers["traceparent"] = f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"
            if ctx.trace_state:
                headers["tracestate"] = ctx.trace_state.to_header()
            if "baggage" in self.incoming_headers:
                headers["baggage"] = self.incoming_headers["baggage"]
        elif ctx.is_valid:
            propagate.inject(headers, context=trace.set_span_in_context(span, self._parent))
        else:
            for name in TRACE_HEADERS:
                if name in self.incoming_headers:
                    headers[name] = self.incoming_headers[name]
        return headers

    def start_attempt_span(self, model: str) -> trace.Span:
        if isinstance(self.services.tracer, IdOnlyTracer):  # nothing recorded: the request span's id goes upstream
            return trace.INVALID_SPAN
        spec = self.policy.models[model]
        span = self.services.tracer.start_span(
            f"{self.operation} {spec.upstream_model}", context=trace.set_span_in_context(self.span), kind=SpanKind.CLIENT
        )
        if span.is_recording():
            span.set_attributes({
                "gen_ai.operation.name": self.operation,
                "gen_ai.provider.name": self.policy.providers[spec.provider].type,
                "gen_ai.request.model": spec.upstream_model,
                "modelroute.model": model,
                "modelroute.provider": spec.provider,
            })
        return span

    # -- money -------------------------------------------------------------------------------

    def cost(self) -> Decimal:
        """USD paid: every attempt that produced usage (escalated answers too) plus deciding."""
        if self._settled and self._cost is not None:
            return self._cost
        total = ZERO
        for attempt in self.attempts:
            if attempt.usage is not None:
                total += cost_usd(attempt.usage, self.policy.models[attempt.model].pricing)
        if self.decision is not None and self.decision.cost_usd:
            total += Decimal(str(self.decision.cost_usd))
        total += self.extra_cost
        if self._settled:
            self._cost = total
        return total

    def baseline_cost(self) -> Decimal:
        """The served answer's tokens at the baseline model's prices."""
        return cost_usd(self.usage, self.policy.models[self.policy.baseline].pricing)

    def response_headers(self, *, with_cost: bool) -> dict[str, str]:
        headers = {
            "x-modelroute-request-id": self.request_id,
            "x-modelroute-route": self.route,
            "x-modelroute-policy-version": self.policy.version,
        }
        if self.served:
            headers["x-modelroute-model"] = self.served
        if self.decision is not None and "arm" in self.decision.annotations:
            headers["x-modelroute-arm"] = str(self.decision.annotations["arm"])
        if with_cost:
            headers["x-modelroute-cost-usd"] = format_usd(self.cost())
        if self.codec is not None:
            headers.update(self.codec.headers(self))
        return headers

    # -- egress ------------------------------------------------------------------------------

    def failed_mid_stream(self) -> tuple[str, str]:
        """An error of the sidecar's own after a stream's headers went out: logged with its traceback
        and counted; the caller ends the stream with its API's error event (a second response
        written into the stream would corrupt it). Returns the settle status and error type."""
        log.exception("unexpected error while streaming request %s", self.request_id)
        self.services.metrics.errors.labels("internal").inc()
        return "error", "internal"

    def settle(self, status: str = "ok", error_type: str | None = None) -> None:
        """Close the exchange once (later calls do nothing); the span, metrics and hooks are
        recorded on the next turn of the event loop, after the answer has gone out."""
        if self._settled:
            return
        self._settled = True
        self.ended = time.monotonic()
        self.status, self.error_type = status, error_type
        try:
            asyncio.get_running_loop().call_soon(self._record)
        except RuntimeError:  # no loop (a synchronous caller): record now
            self._record()

    def _record(self) -> None:
        try:
            cost, baseline = self.cost(), self.baseline_cost() if self.usage else ZERO
            if self.span.is_recording():
                self._record_span(cost, baseline, self.error_type)
            else:
                self.span.end()
            self._record_metrics(cost, baseline, self.error_type)
        except Exception:
            log.exception("recording request %s failed", self.request_id)
        if self.hooks.settled:
            self.hooks.run_settled(self)

    def _record_span(self, cost: Decimal, baseline: Decimal, error_type: str | None) -> None:
        span, policy, view = self.span, self.policy, self.view
        attrs: dict[str, Any] = {
            "modelroute.policy": policy.name,
            "modelroute.policy_version": policy.version,
            "modelroute.route": self.route,
            "modelroute.cost_usd": float(cost),
            "modelroute.baseline_cost_usd": float(baseline),
            "modelroute.attempts": sum(1 for a in self.attempts if a.outcome != "skipped"),
            "modelroute.fallback_chain": [f"{a.model}:{a.outcome}{'(' + a.reason + ')' if a.reason else ''}" for a in self.attempts],
        }
        if view is not None:
            attrs["gen_ai.request.model"] = view.requested_model
            attrs["gen_ai.request.stream"] = view.stream
            if view.max_tokens is not None:
                attrs["gen_ai.request.max_tokens"] = view.max_tokens
        if self.decision is not None:
            attrs["modelroute.strategy"] = self.decision.strategy
            attrs["modelroute.escalations"] = sum(1 for a in self.attempts if a.outcome == "rejected")
            if "arm" in self.decision.annotations:  # an A/B experiment split this request
                attrs["modelroute.experiment"] = str(self.decision.annotations.get("experiment", ""))
                attrs["modelroute.arm"] = str(self.decision.annotations["arm"])
        if self.served:
            attrs["gen_ai.response.model"] = policy.models[self.served].upstream_model
            attrs["modelroute.model"] = self.served
            attrs["gen_ai.provider.name"] = policy.providers[policy.models[self.served].provider].type
        if self.usage is not None:
            attrs["gen_ai.usage.input_tokens"] = self.usage.input_tokens
            attrs["gen_ai.usage.output_tokens"] = self.usage.output_tokens
            if self.usage_estimated:
                attrs["modelroute.usage.estimated"] = True
        if self.codec is not None:
            attrs["modelroute.client_api"] = self.codec.api
        if self.first_chunk_at is not None:
            attrs["modelroute.time_to_first_chunk_ms"] = round((self.first_chunk_at - self.started) * 1000, 3)
        if self.dropped:
            attrs["modelroute.translation.dropped"] = list(self.dropped)
        if policy.telemetry.record_prompts:  # the policy opted in: the prompt and the answer, capped
            attrs.update(self._recorded(policy.telemetry.max_recorded_chars))
        if error_type:
            attrs["error.type"] = error_type
            span.set_status(Status(StatusCode.ERROR, error_type))
        span.update_name(f"{self.operation} {attrs.get('gen_ai.response.model') or (view.requested_model if view else '')}".strip())
        span.set_attributes(attrs)
        span.end()

    def _recorded(self, cap: int) -> dict[str, str]:
        out: dict[str, str] = {}
        if self.view is not None:
            out["gen_ai.prompt"] = self.view.prompt_text()[:cap]
        answer = self.answer
        if answer is not None:
            out["gen_ai.completion"] = read_answer(answer).text[:cap]
        return out

    def _record_metrics(self, cost: Decimal, baseline: Decimal, error_type: str | None) -> None:
        m, policy = self.services.metrics, self.policy.name
        series = m.route(policy, self.route, self.served or "none")
        series.count(self.status)
        if error_type and error_type != "internal":  # internal errors are counted where they are caught
            m.child(m.errors, error_type).inc()
        self._record_attempts(policy)
        if self.usage is not None:
            series.input_tokens += self.usage.input_tokens
            series.output_tokens += self.usage.output_tokens
            series.cached_tokens += self.usage.cached_input_tokens
        if self.dropped:
            provider = self.policy.models[self.served].provider if self.served else "none"
            for name in self.dropped:
                m.dropped.labels(provider, metric_label(name)).inc()
        series.cost += float(cost)
        series.baseline_cost += float(baseline)
        series.duration.observe(self.seconds)
        if self.first_chunk_at is not None:
            series.ttft.observe(self.first_chunk_at - self.started)

    def _record_attempts(self, policy: str) -> None:
        """Attempts by result, fallbacks and escalations."""
        m = self.services.metrics
        for attempt in self.attempts:
            if attempt.outcome in ("error", "skipped") and self.served:
                m.child(m.fallbacks, policy, self.route, attempt.model, attempt.reason or attempt.outcome).inc()
            if attempt.outcome == "rejected":
                m.child(m.escalations, policy, self.route, attempt.model).inc()
            if attempt.outcome != "skipped":
                m.child(m.attempts, policy, attempt.model, attempt.outcome if attempt.outcome != "error" else attempt.reason).inc()
