"""Spans leave the sidecar process over OTLP/HTTP, configured only by the standard OTEL_* variables."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import openai
import yaml
from aiohttp import web
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from modelroute.testing.fake_openai import FakeOpenAI
from tests.cli.test_cli import free_port, wait_ready
from tests.support import APP_KEY, PROVIDER_KEY, quickstart

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"


async def test_spans_are_exported_to_an_otlp_collector(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    received: list[ExportTraceServiceRequest] = []
    metrics: list[ExportMetricsServiceRequest] = []

    async def collect(request: web.Request) -> web.Response:
        message = ExportTraceServiceRequest()
        message.ParseFromString(await request.read())
        received.append(message)
        return web.Response(status=200)

    async def collect_metrics(request: web.Request) -> web.Response:
        message = ExportMetricsServiceRequest()
        message.ParseFromString(await request.read())
        metrics.append(message)
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/v1/traces", collect)
    app.router.add_post("/v1/metrics", collect_metrics)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    collector = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]

    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(quickstart(fake_openai.base_url)))
    port = free_port()
    env = {**os.environ, "TEST_PROVIDER_KEY": PROVIDER_KEY, "OTEL_EXPORTER_OTLP_ENDPOINT": collector,
           "OTEL_BSP_SCHEDULE_DELAY": "50", "OTEL_METRIC_EXPORT_INTERVAL": "200", "OTEL_SERVICE_NAME": "sidecar-under-test"}
    proc = subprocess.Popen([sys.executable, "-m", "modelroute", "serve", "--policy", str(path), "--port", str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        await wait_ready(f"http://127.0.0.1:{port}", proc)
        async with openai.AsyncOpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=APP_KEY, max_retries=0) as client:
            await client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "hi"}],
                                                 extra_headers={"traceparent": f"00-{TRACE_ID}-b7ad6b7169203331-01"})
        for _ in range(100):
            if received and _requests_total(metrics):
                break
            await asyncio.sleep(0.05)
    finally:
        proc.terminate()
        await asyncio.to_thread(proc.wait, 10)  # its last export reaches the collector on this loop
        await runner.cleanup()
    spans = [(rs, span) for m in received for rs in m.resource_spans for ss in rs.scope_spans for span in ss.spans]
    assert {span.name for _, span in spans} == {"chat gpt-4o-mini"}  # request span and attempt span
    assert all(span.trace_id.hex() == TRACE_ID for _, span in spans)
    resource = {a.key: a.value.string_value for a in spans[0][0].resource.attributes}
    assert resource["service.name"] == "sidecar-under-test"
    server = next(span for _, span in spans if span.kind == span.SPAN_KIND_SERVER)
    attributes = {a.key for a in server.attributes}
    assert {"modelroute.route", "modelroute.cost_usd", "gen_ai.usage.output_tokens"} <= attributes
    # the Prometheus metrics are exported over OTLP too, with their labels as attributes
    assert _requests_total(metrics) == {("default", "gpt-4o-mini", "ok"): 1.0}


def _requests_total(batches: list[ExportMetricsServiceRequest]) -> dict[tuple[str, str, str], float]:
    """The latest modelroute_requests points: (route, model, status) -> value."""
    points: dict[tuple[str, str, str], float] = {}
    for batch in batches:
        for rm in batch.resource_metrics:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    if metric.name != "modelroute_requests":
                        continue
                    for point in metric.sum.data_points:
                        attrs = {a.key: a.value.string_value for a in point.attributes}
                        points[(attrs["route"], attrs["model"], attrs["status"])] = point.as_double
    return points
