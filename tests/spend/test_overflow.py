"""Rate-limit-aware overflow: a model whose rpm/tpm bucket is empty is skipped without being called,
the span says why, usage corrects the token estimate, and only when no model has room does the
client get 429 with retry-after."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import openai
import pytest

from modelroute.testing.fake_openai import FakeOpenAI
from tests.spend.helpers import chat
from tests.support import APP_KEY, SidecarFactory, quickstart


def limited(base_url: str, mini: dict[str, int], big: dict[str, int] | None = None) -> dict[str, Any]:
    doc = quickstart(base_url)
    doc["spec"]["models"][0]["limits"] = mini
    if big is not None:
        doc["spec"]["models"][1]["limits"] = big
    return doc


async def test_saturated_model_overflows_to_the_next(make_sidecar: SidecarFactory, fake_openai: FakeOpenAI) -> None:
    sidecar = await make_sidecar(limited(fake_openai.base_url, {"rpm": 2}))
    async with aiohttp.ClientSession() as http:
        served = [(await chat(http, sidecar))[1]["x-modelroute-model"] for _ in range(3)]
        async with http.get(sidecar.url + "/metrics") as resp:
            metrics = await resp.text()
    assert served == ["gpt-4o-mini", "gpt-4o-mini", "gpt-4o"]
    assert [c.body["model"] for c in fake_openai.calls()] == ["gpt-4o-mini", "gpt-4o-mini", "gpt-4o"]
    chain = sidecar.request_spans()[-1].attributes["modelroute.fallback_chain"]
    assert list(chain) == ["gpt-4o-mini:skipped(local_rpm_limit)", "gpt-4o:ok"]
    assert 'modelroute_rate_limit_skips_total{limit="rpm",model="gpt-4o-mini",source="local"} 1.0' in metrics
    assert 'modelroute_rate_limit_429s_total{model="gpt-4o-mini",outcome="avoided"} 1.0' in metrics
    assert 'reason="local_rpm_limit"' in metrics  # modelroute_fallbacks_total


async def test_no_room_anywhere_is_429_with_retry_after(make_sidecar: SidecarFactory, fake_openai: FakeOpenAI) -> None:
    sidecar = await make_sidecar(limited(fake_openai.base_url, {"rpm": 1}, {"rpm": 2}))
    async with openai.AsyncOpenAI(base_url=sidecar.base_url, api_key=APP_KEY, max_retries=0) as client:
        for _ in range(3):
            await client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "hi"}])
        with pytest.raises(openai.RateLimitError) as info:
            await client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "hi"}])
    assert len(fake_openai.calls()) == 3
    body = info.value.body
    assert isinstance(body, dict) and body["code"] == "rate_limit_exceeded"
    assert "gpt-4o-mini (local_rpm_limit)" in body["message"] and "gpt-4o (local_rpm_limit)" in body["message"]
    assert 25 <= int(info.value.response.headers["retry-after"]) <= 30  # gpt-4o gets a request back every 30 s


async def test_usage_gives_back_overestimated_tokens(make_sidecar: SidecarFactory, fake_openai: FakeOpenAI) -> None:
    """Each request is estimated at 5 input + 60 max_tokens; it really uses about 8, so the bucket of
    100 tokens per minute has room again once the first answer's usage is known."""
    sidecar = await make_sidecar(limited(fake_openai.base_url, {"tpm": 100}))
    async with aiohttp.ClientSession() as http:
        first = await chat(http, sidecar, max_tokens=60)
        second = await chat(http, sidecar, max_tokens=60)
        fake_openai.fail("gpt-4o-mini", delay=1.0, times=1)  # hold the next one in flight: its estimate is not corrected yet
        both = await asyncio.gather(chat(http, sidecar, max_tokens=60), chat(http, sidecar, max_tokens=60))
    assert [r[1]["x-modelroute-model"] for r in (first, second)] == ["gpt-4o-mini"] * 2
    assert sorted(r[1]["x-modelroute-model"] for r in both) == ["gpt-4o", "gpt-4o-mini"]
    overflowed = [s for s in sidecar.request_spans() if s.attributes.get("modelroute.model") == "gpt-4o"]
    assert [list(s.attributes["modelroute.fallback_chain"]) for s in overflowed] == [["gpt-4o-mini:skipped(local_tpm_limit)", "gpt-4o:ok"]]
