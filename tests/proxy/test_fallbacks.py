"""Fallbacks, the circuit breaker, deadlines, and the errors when every option fails."""

from __future__ import annotations

import time

import aiohttp
import openai
import pytest

from modelroute.testing.fake_openai import FakeOpenAI
from tests.support import APP_KEY, Sidecar, SidecarFactory, quickstart

HELLO = [{"role": "user", "content": "hello"}]


@pytest.mark.parametrize(
    ("knobs", "reason"),
    [({"status": 500}, "server"), ({"status": 503}, "server"), ({"status": 429, "retry_after": 1}, "rate_limited"),
     ({"reset": True}, "connect"), ({"status": 400, "code": "context_length_exceeded"}, "context_length")],
)
async def test_retryable_failures_fall_back_to_the_next_model(
    client: openai.AsyncOpenAI, fake_openai: FakeOpenAI, sidecar: Sidecar, knobs: dict[str, object], reason: str
) -> None:
    fake_openai.fail("gpt-4o-mini", times=1, **knobs)
    raw = await client.chat.completions.with_raw_response.create(model="auto", messages=HELLO)
    assert raw.headers["x-modelroute-model"] == "gpt-4o"
    span = sidecar.request_spans()[-1]
    assert span.attributes["modelroute.fallback_chain"] == (f"gpt-4o-mini:error({reason})", "gpt-4o:ok")
    assert span.attributes["modelroute.attempts"] == 2


async def test_timeout_falls_back(make_sidecar: SidecarFactory, fake_openai: FakeOpenAI) -> None:
    doc = quickstart(fake_openai.base_url)
    doc["spec"]["models"][0]["timeoutSeconds"] = 0.2
    sidecar = await make_sidecar(doc)
    fake_openai.fail("gpt-4o-mini", delay=2, times=1)
    async with openai.AsyncOpenAI(base_url=sidecar.base_url, api_key=APP_KEY, max_retries=0) as client:
        started = time.monotonic()
        raw = await client.chat.completions.with_raw_response.create(model="auto", messages=HELLO)
    assert raw.headers["x-modelroute-model"] == "gpt-4o"
    assert time.monotonic() - started < 1.5


async def test_bad_request_is_not_retried(client: openai.AsyncOpenAI, fake_openai: FakeOpenAI) -> None:
    fake_openai.fail("gpt-4o-mini", status=400, code="invalid_value", times=1)
    with pytest.raises(openai.BadRequestError) as info:
        await client.chat.completions.create(model="auto", messages=HELLO)
    assert info.value.body["code"] == "invalid_value"
    assert [c.body["model"] for c in fake_openai.calls()] == ["gpt-4o-mini"]


async def test_every_model_failing_gives_502_naming_them(client: openai.AsyncOpenAI, fake_openai: FakeOpenAI) -> None:
    fake_openai.fail("*", status=500)
    with pytest.raises(openai.APIStatusError) as info:
        await client.chat.completions.create(model="auto", messages=HELLO)
    assert info.value.status_code == 502
    message = info.value.body["message"]
    assert "gpt-4o-mini (server)" in message and "gpt-4o (server)" in message


async def test_every_model_rate_limited_gives_429_with_retry_after(client: openai.AsyncOpenAI, fake_openai: FakeOpenAI) -> None:
    fake_openai.fail("*", status=429, retry_after=7)
    with pytest.raises(openai.RateLimitError) as info:
        await client.chat.completions.create(model="auto", messages=HELLO)
    assert info.value.response.headers["retry-after"] == "7"


async def test_rate_limited_model_is_cooled_down_for_retry_after(client: openai.AsyncOpenAI, fake_openai: FakeOpenAI, sidecar: Sidecar) -> None:
    fake_openai.fail("gpt-4o-mini", status=429, retry_after=30, times=1)
    await client.chat.completions.create(model="auto", messages=HELLO)
    fake_openai.requests.clear()
    raw = await client.chat.completions.with_raw_response.create(model="auto", messages=HELLO)
    assert raw.headers["x-modelroute-model"] == "gpt-4o"
    assert [c.body["model"] for c in fake_openai.calls()] == ["gpt-4o"], "a cooled-down model was called"
    assert sidecar.request_spans()[-1].attributes["modelroute.fallback_chain"][0] == "gpt-4o-mini:skipped(cooling_down)"


async def test_circuit_breaker_opens_after_repeated_failures(make_sidecar: SidecarFactory, fake_openai: FakeOpenAI) -> None:
    sidecar = await make_sidecar(quickstart(fake_openai.base_url, circuitBreaker={"failureThreshold": 2, "cooldownSeconds": 60}))
    fake_openai.fail("gpt-4o-mini", status=500)
    async with openai.AsyncOpenAI(base_url=sidecar.base_url, api_key=APP_KEY, max_retries=0) as client:
        for _ in range(4):
            await client.chat.completions.create(model="auto", messages=HELLO)
    assert len(fake_openai.calls("gpt-4o-mini")) == 2
    assert len(fake_openai.calls("gpt-4o")) == 4
    async with aiohttp.ClientSession() as http, http.get(sidecar.url + "/metrics") as resp:
        assert 'modelroute_circuit_open{model="gpt-4o-mini"} 1.0' in await resp.text()


async def test_all_models_cooling_down_gives_503(make_sidecar: SidecarFactory, fake_openai: FakeOpenAI) -> None:
    sidecar = await make_sidecar(quickstart(fake_openai.base_url, circuitBreaker={"failureThreshold": 1, "cooldownSeconds": 60}))
    fake_openai.fail("*", status=500)
    async with openai.AsyncOpenAI(base_url=sidecar.base_url, api_key=APP_KEY, max_retries=0) as client:
        with pytest.raises(openai.APIStatusError) as first:
            await client.chat.completions.create(model="auto", messages=HELLO)
        with pytest.raises(openai.APIStatusError) as second:
            await client.chat.completions.create(model="auto", messages=HELLO)
    assert first.value.status_code == 502
    assert second.value.status_code == 503
    assert "cooling down" in second.value.body["message"]


async def test_overall_deadline_gives_504(make_sidecar: SidecarFactory, fake_openai: FakeOpenAI) -> None:
    sidecar = await make_sidecar(quickstart(fake_openai.base_url, timeouts={"requestSeconds": 0.3}))
    fake_openai.fail("*", delay=5)
    async with openai.AsyncOpenAI(base_url=sidecar.base_url, api_key=APP_KEY, max_retries=0) as client:
        started = time.monotonic()
        with pytest.raises(openai.APIStatusError) as info:
            await client.chat.completions.create(model="auto", messages=HELLO)
    assert info.value.status_code == 504
    assert time.monotonic() - started < 2


async def test_unreachable_provider_falls_back_across_providers(make_sidecar: SidecarFactory, fake_openai: FakeOpenAI) -> None:
    doc = quickstart(fake_openai.base_url)
    doc["spec"]["providers"].append({"name": "dead", "type": "openai", "baseURL": "http://127.0.0.1:9/v1"})
    doc["spec"]["models"][0]["provider"] = "dead"
    sidecar = await make_sidecar(doc)
    async with openai.AsyncOpenAI(base_url=sidecar.base_url, api_key=APP_KEY, max_retries=0) as client:
        raw = await client.chat.completions.with_raw_response.create(model="auto", messages=HELLO)
    assert raw.headers["x-modelroute-model"] == "gpt-4o"
