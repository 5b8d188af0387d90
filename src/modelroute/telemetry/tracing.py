"""OpenTelemetry set-up for the sidecar, from the standard ``OTEL_*`` environment variables.

Spans follow the GenAI semantic conventions (``gen_ai.*``) plus ``modelroute.*`` attributes. The
exporter is chosen by ``OTEL_TRACES_EXPORTER`` (otlp, console, none); when it is not set, OTLP is
used only if an OTLP endpoint is configured, so a sidecar without a collector exports nothing.
"""

from __future__ import annotations

import os
from typing import Mapping

import random
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

INSTRUMENTATION = "modelroute"


def exporter_names(env: Mapping[str, str], signal: str) -> list[str]:
    """The exporters ``OTEL_<SIGNAL>_EXPORTER`` names (signal: TRACES or METRICS); when it is not
    set, ``otlp`` if an OTLP endpoint is configured, else none. OTLP is spoken over HTTP/protobuf."""
    names = env.get(f"OTEL_{signal}_EXPORTER")
    if names is None:
        has_endpoint = env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get(f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT")
        names = "otlp" if has_endpoint else "none"
    return [n.strip() for n in names.split(",") if n.strip() not in ("", "none")]


def _exporters(env: Mapping[str, str]) -> list[SpanExporter]:
    out: list[SpanExporter] = []
    for name in exporter_names(env, "TRACES"):
        if name == "otlp":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            out.append(OTLPSpanExporter())
        elif name == "console":
            out.append(ConsoleSpanExporter())
    return out


def tracer_provider_from_env(env: Mapping[str, str] | None = None) -> TracerProvider | None:
    """A TracerProvider exporting as the environment says, or None when tracing is disabled."""
    env = os.environ if env is None else env
    if env.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return None
    resource = Resource.create({"service.name": env.get("OTEL_SERVICE_NAME", "modelroute-sidecar")})
    exporters = _exporters(env)
    # With nowhere to send spans, record none: spans still get valid ids, so W3C trace context
    # still flows from the app to the provider, at a fraction of the cost.
    sampler = None if exporters else ALWAYS_OFF
    provider = TracerProvider(resource=resource, sampler=sampler)
    for exporter in exporters:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def get_tracer(provider: trace.TracerProvider | None) -> trace.Tracer:
    if provider is None:
        return trace.NoOpTracer()
    tracer = provider.get_tracer(INSTRUMENTATION)
    if isinstance(provider, TracerProvider) and provider.sampler is ALWAYS_OFF:
        return IdOnlyTracer(tracer)
    return tracer


class IdOnlyTracer(trace.Tracer):
    """A tracer for a provider that records nothing: spans carry ids and nothing else.

    It skips the SDK's sampling and attribute machinery (about 5 µs a span), keeps the parent's
    trace id, sampled flag and trace state, so trace context flows through the sidecar exactly as
    through a proxy that does not take part in tracing. The sidecar starts no attempt spans with it:
    the request span's id is the parent the provider sees.
    """

    def __init__(self, tracer: trace.Tracer) -> None:
        self._tracer = tracer
        self._random = random.Random()

    def start_span(self, name: str, context: Context | None = None, kind: trace.SpanKind = trace.SpanKind.INTERNAL,
                   *args: Any, **kwargs: Any) -> trace.Span:
        parent = trace.get_current_span(context).get_span_context()
        rng = self._random
        if parent.is_valid:
            ctx = SpanContext(parent.trace_id, rng.getrandbits(64), is_remote=False, trace_flags=parent.trace_flags,
                              trace_state=parent.trace_state)
        else:
            ctx = SpanContext(rng.getrandbits(128), rng.getrandbits(64), is_remote=False, trace_flags=TraceFlags(TraceFlags.DEFAULT))
        return NonRecordingSpan(ctx)

    def start_as_current_span(self, *args: Any, **kwargs: Any) -> Any:
        return self._tracer.start_as_current_span(*args, **kwargs)
