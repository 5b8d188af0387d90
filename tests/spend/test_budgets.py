"""Budgets in one sidecar: reserved before dispatch, downgraded or rejected before any provider is
called, settled with the real cost (whole, streamed, failed), never overshot by concurrent requests."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import aiohttp
import openai
import pytest

from modelroute.testing.fake_openai import FakeOpenAI
from tests.spend.helpers import PREMIUM, TWELVE_WORDS, budget_policy, budgets, chat
from tests.support import APP_KEY, SidecarFactory


async def test_over_budget_is_rejected_before_any_provider_call(make_sidecar: SidecarFactory, fake_openai: FakeOpenAI) -> None:
    policy = budget_policy(fake_openai.base_url, [{"name": "tiny", "scope": "policy", "window": "day", "limitUSD": 0.0005}])
    sidecar = await make_sidecar(policy)
    async with openai.AsyncOpenAI(base_url=sidecar.base_url, api_key=APP_KEY, max_retries=0) as client:
        with pytest.raises(openai.RateLimitError) as info:  # premium -> gpt-4o: worst case USD 0.0010175 > 0.0005
            await client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "hi"}], extra_headers=PREMIUM)
    error = info.value.body
    assert isinstance(error, dict)
    assert error["type"] == "budget_exceeded" and error["code"] == "budget_exceeded" and error["param"] == "tiny"
    assert "'tiny'" in error["message"]
    assert int(info.value.response.headers["retry-after"]) >= 1
    assert fake_openai.calls() == []
    [row] = await budgets(sidecar)
    assert row["spent_usd"] == 0 and row["reserved_usd"] == 0 and row["limit_usd"] == 0.0005


async def test_fallbacks_the_budget_cannot_cover_are_dropped(make_sidecar: SidecarFactory, fake_openai: FakeOpenAI) -> None:
    """Default route: gpt-4o-mini then gpt-4o. Only mini's worst case fits, so gpt-4o is never tried."""
    policy = budget_policy(fake_openai.base_url, [{"name": "tiny", "scope": "policy", "window": "day", "limitUSD": 0.0005}])
    sidecar = await make_sidecar(policy)
    fake_openai.fail("gpt-4o-mini", status=500, times=1)
    async with aiohttp.ClientSession() as http:
        status, _, body = await chat(http, sidecar)
        assert status == 502 and body["error"]["message"].endswith(": gpt-4o-mini (server)")  # gpt-4o was not tried
        status, headers, _ = await chat(http, sidecar)
    assert status == 200 and headers["x-modelroute-model"] == "gpt-4o-mini"
    assert [c.body["model"] for c in fake_openai.calls()] == ["gpt-4o-mini", "gpt-4o-mini"]


async def test_downgrade_serves_the_cheaper_chain(make_sidecar: SidecarFactory, fake_openai: FakeOpenAI) -> None:
    budget = {"name": "team-daily", "scope": {"header": "x-team"}, "window": "day", "limitUSD": 0.0005,
              "onExceed": {"downgradeTo": "gpt-4o-mini"}}
    sidecar = await make_sidecar(budget_policy(fake_openai.base_url, [budget]))
    async with aiohttp.ClientSession() as http:
        status, headers, _ = await chat(http, sidecar, headers={**PREMIUM, "x-team": "search"})
        assert status == 200 and headers["x-modelroute-model"] == "gpt-4o-mini" and headers["x-modelroute-route"] == "premium"
        status, headers, _ = await chat(http, sidecar, headers=PREMIUM)  # no x-team: this budget does not apply
        assert status == 200 and headers["x-modelroute-model"] == "gpt-4o"
    assert [c.body["model"] for c in fake_openai.calls()] == ["gpt-4o-mini", "gpt-4o"]
    [row] = await budgets(sidecar)
    assert row["scope"] == {"header": "x-team", "value": "search"} and row["on_exceed"] == {"downgrade_to": "gpt-4o-mini"}
    metrics = await _metrics(sidecar.url)
    assert 'modelroute_budget_decisions_total{budget="team-daily",policy="quickstart",result="downgraded"} 1.0' in metrics


async def test_reservations_settle_with_the_real_cost(make_sidecar: SidecarFactory, fake_openai: FakeOpenAI) -> None:
    sidecar = await make_sidecar(budget_policy(fake_openai.base_url, [{"name": "all", "scope": "policy", "window": "month", "limitUSD": 5}]))
    async with openai.AsyncOpenAI(base_url=sidecar.base_url, api_key=APP_KEY, max_retries=0) as client:
        raw = await client.chat.completions.with_raw_response.create(model="auto", messages=[{"role": "user", "content": "hi"}])
        whole = Decimal(raw.headers["x-modelroute-cost-usd"])
        stream = await client.chat.completions.create(model="auto", messages=[{"role": "user", "content": TWELVE_WORDS}],
                                                      stream=True)
        _ = [chunk async for chunk in stream]
        fake_openai.fail("*", status=500, times=2)
        with pytest.raises(openai.APIStatusError):
            await client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "hi"}])
    streamed_cost = sum(s.attributes["modelroute.cost_usd"] for s in sidecar.request_spans()[1:2])
    [row] = await budgets(sidecar)
    assert row["reserved_usd"] == 0
    assert row["spent_usd"] == pytest.approx(float(whole) + streamed_cost, abs=1e-9)
    assert whole == Decimal("0.000003") and streamed_cost > 0
    assert row["remaining_usd"] == pytest.approx(5 - row["spent_usd"], abs=1e-9)


async def test_fifty_concurrent_requests_never_overshoot(make_sidecar: SidecarFactory, fake_openai: FakeOpenAI) -> None:
    """Each answer costs most of its reservation; without reservations 50 in flight would spend ~4x the limit."""
    limit = 0.002
    sidecar = await make_sidecar(budget_policy(fake_openai.base_url, [{"name": "all", "scope": "policy", "window": "day", "limitUSD": limit}]))
    async with aiohttp.ClientSession() as http:
        for _ in range(5):  # nearly spend it
            status, _, _ = await chat(http, sidecar, TWELVE_WORDS, PREMIUM, max_tokens=10)
            assert status == 200
        fake_openai.fail("gpt-4o", delay=0.5)  # every request is admitted while the others are still in flight
        results = await asyncio.gather(*(chat(http, sidecar, TWELVE_WORDS, PREMIUM, max_tokens=10) for _ in range(50)))
    statuses = [r[0] for r in results]
    served, rejected = statuses.count(200), statuses.count(429)
    assert served + rejected == 50 and served >= 1 and rejected >= 1
    assert {r[2]["error"]["type"] for r in results if r[0] == 429} == {"budget_exceeded"}
    assert len(fake_openai.calls("gpt-4o")) == 5 + served  # rejected requests reached no provider
    cost = sum(Decimal(r[1]["x-modelroute-cost-usd"]) for r in results if r[0] == 200)
    assert served * 0.00014 < float(cost) and 50 * float(cost) / served > 2 * limit  # would overshoot unreserved
    [row] = await budgets(sidecar)
    assert row["reserved_usd"] == 0 and row["spent_usd"] <= limit and row["remaining_usd"] >= 0


async def _metrics(url: str) -> str:
    async with aiohttp.ClientSession() as http, http.get(url + "/metrics") as resp:
        return await resp.text()


async def test_anthropic_clients_are_admitted_too(make_sidecar: SidecarFactory, fake_openai: FakeOpenAI) -> None:
    policy = budget_policy(fake_openai.base_url, [{"name": "tiny", "scope": "policy", "window": "day", "limitUSD": 0.0005}])
    sidecar = await make_sidecar(policy)
    body = {"model": "gpt-4o", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}
    async with aiohttp.ClientSession() as http:
        async with http.post(sidecar.url + "/v1/messages", json=body, headers=PREMIUM) as resp:
            refused = resp.status, await resp.text()
        async with http.post(sidecar.url + "/v1/messages", json=body) as resp:
            served = resp.status, resp.headers["x-modelroute-model"]
    assert refused[0] == 429 and '"rate_limit_error"' in refused[1] and "budget 'tiny'" in refused[1]  # Anthropic's format
    assert served == (200, "gpt-4o-mini") and [c.body["model"] for c in fake_openai.calls()] == ["gpt-4o-mini"]
    [row] = await budgets(sidecar)
    assert row["spent_usd"] > 0 and row["reserved_usd"] == 0
