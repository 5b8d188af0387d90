"""Prometheus metrics on /metrics: requests, tokens, cost and baseline cost, latency, fallbacks."""

from __future__ import annotations

import aiohttp
import openai
from prometheus_client.parser import text_string_to_metric_families

from modelroute.testing.fake_openai import FakeOpenAI
from tests.support import Sidecar

HELLO = [{"role": "user", "content": "hello"}]


async def scrape(sidecar: Sidecar) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    async with aiohttp.ClientSession() as http, http.get(sidecar.url + "/metrics") as resp:
        assert resp.status == 200
        text = await resp.text()
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(samples: dict, name: str, **labels: str) -> float:
    return sum(v for (n, ls), v in samples.items() if n == name and all((k, x) in ls for k, x in labels.items()))


async def test_metrics_count_what_was_served(client: openai.AsyncOpenAI, sidecar: Sidecar, fake_openai: FakeOpenAI) -> None:
    total_cost = 0.0
    for headers in ({}, {}, {"x-user-tier": "premium"}):
        raw = await client.chat.completions.with_raw_response.create(model="auto", messages=HELLO, extra_headers=headers)
        total_cost += float(raw.headers["x-modelroute-cost-usd"])
    stream = await client.chat.completions.create(model="auto", messages=HELLO, stream=True)
    [c async for c in stream]
    fake_openai.fail("gpt-4o-mini", status=500, times=1)
    await client.chat.completions.create(model="auto", messages=HELLO)

    m = await scrape(sidecar)
    assert value(m, "modelroute_requests_total", route="default", model="gpt-4o-mini", status="ok") == 3
    assert value(m, "modelroute_requests_total", route="premium", model="gpt-4o") == 1
    assert value(m, "modelroute_requests_total", route="default", model="gpt-4o") == 1
    assert value(m, "modelroute_fallbacks_total", route="default", model="gpt-4o-mini", reason="server") == 1
    assert value(m, "modelroute_tokens_total", direction="output") > 0
    assert value(m, "modelroute_cost_usd_total", route="premium") > 0
    assert value(m, "modelroute_baseline_cost_usd_total", route="default") > value(m, "modelroute_cost_usd_total", route="default", model="gpt-4o-mini")
    assert value(m, "modelroute_request_duration_seconds_count") == 5
    assert value(m, "modelroute_time_to_first_token_seconds_count") == 1
    assert value(m, "modelroute_policy_info", policy="quickstart", version=sidecar.holder.current.policy.version) == 1
