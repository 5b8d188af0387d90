"""Telemetry: cost accounting, Prometheus metrics and OpenTelemetry spans of the sidecar."""

from __future__ import annotations

from modelroute.telemetry.cost import cost_usd, format_usd
from modelroute.telemetry.metrics import Metrics
from modelroute.telemetry.tracing import get_tracer, tracer_provider_from_env

__all__ = ["Metrics", "cost_usd", "format_usd", "get_tracer", "tracer_provider_from_env"]
