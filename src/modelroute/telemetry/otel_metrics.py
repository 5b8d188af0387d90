"""The sidecar's metrics over OpenTelemetry (OTLP) as well as Prometheus.

The Prometheus registry stays the one source: a bridge mirrors each of its families into an
observable OpenTelemetry instrument (counters as cumulative counters, gauges as gauges, histograms
as their ``_sum`` and ``_count``), read when the SDK exports. Families registered later (by the
quality monitor or spend control, on first use) are picked up on the next sync. The exporter comes
from the standard variables, as for traces: ``OTEL_METRICS_EXPORTER`` (otlp, console, none), or
OTLP when an endpoint is set; ``OTEL_METRIC_EXPORT_INTERVAL`` in milliseconds.
"""

from __future__ import annotations

import asyncio
import os
from typing import Callable, Iterable, Mapping

from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import ConsoleMetricExporter, MetricExporter, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from prometheus_client import CollectorRegistry

from modelroute.telemetry.tracing import exporter_names

SYNC_SECONDS = 5.0


def _exporters(env: Mapping[str, str]) -> list[MetricExporter]:
    out: list[MetricExporter] = []
    for name in exporter_names(env, "METRICS"):
        if name == "otlp":
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

            out.append(OTLPMetricExporter())
        elif name == "console":
            out.append(ConsoleMetricExporter())
    return out


def meter_provider_from_env(env: Mapping[str, str] | None = None) -> MeterProvider | None:
    """A MeterProvider exporting as the environment says, or None when nothing is to be exported."""
    env = os.environ if env is None else env
    if env.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return None
    exporters = _exporters(env)
    if not exporters:
        return None
    interval = float(env.get("OTEL_METRIC_EXPORT_INTERVAL", "60000"))
    readers = [PeriodicExportingMetricReader(e, export_interval_millis=interval) for e in exporters]
    resource = Resource.create({"service.name": env.get("OTEL_SERVICE_NAME", "modelroute-sidecar")})
    return MeterProvider(metric_readers=readers, resource=resource)


class PrometheusBridge:
    """Mirrors a Prometheus registry into a MeterProvider's observable instruments."""

    def __init__(self, registry: CollectorRegistry, provider: MeterProvider) -> None:
        self.registry = registry
        self.meter = provider.get_meter("modelroute")
        self.mirrored: set[str] = set()

    def sync(self) -> None:
        """Create instruments for families not mirrored yet."""
        for family in self.registry.collect():
            if family.name in self.mirrored:
                continue
            self.mirrored.add(family.name)
            doc = family.documentation
            if family.type == "counter":
                self.meter.create_observable_counter(family.name, [self._reader(family.name + "_total")], description=doc)
            elif family.type == "gauge":
                self.meter.create_observable_gauge(family.name, [self._reader(family.name)], description=doc)
            elif family.type == "histogram":
                for part in ("_sum", "_count"):
                    self.meter.create_observable_counter(family.name + part, [self._reader(family.name + part)], description=doc)

    def _reader(self, sample_name: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(options: CallbackOptions) -> Iterable[Observation]:
            return [Observation(s.value, dict(s.labels)) for f in self.registry.collect() for s in f.samples if s.name == sample_name]

        return observe

    async def run(self) -> None:
        while True:
            self.sync()
            await asyncio.sleep(SYNC_SECONDS)

