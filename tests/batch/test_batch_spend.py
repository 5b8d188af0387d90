"""Spend is never lost on batches (issue #18, finding 3): a batch's worst case is held against the
budgets at submission and refused over budget, in the client's format; its cost is recorded
(metrics and budgets, freeing the hold) when the provider finishes it, found by the background
poller whether or not anyone reads the output; reading the output later counts nothing more."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import aiohttp
import anthropic
import openai
import pytest

from modelroute.batch import PollSettings
from modelroute.testing.fake_anthropic import FakeAnthropic
from modelroute.testing.fake_openai_batch import FakeOpenAIBatch
from tests.batch.helpers import anthropic_cost, jsonl, line, message_batch_policy, metric, openai_cost, request, with_budget
from tests.spend.helpers import budgets
from tests.support import APP_KEY, SidecarFactory

BATCH_COST = "modelroute_cost_usd_total"


async def test_a_batch_over_budget_is_refused_at_submission(make_sidecar: SidecarFactory, fake_batch: FakeOpenAIBatch,
                                                            fake_anthropic: FakeAnthropic) -> None:
    """Each request's worst case is about USD 0.0003-0.0005 at batch prices: two do not fit in 0.0006."""
    sidecar = await make_sidecar(with_budget(message_batch_policy(fake_batch.base_url, fake_anthropic.base_url), 0.0006))
    async with anthropic.AsyncAnthropic(base_url=sidecar.url, api_key=APP_KEY, max_retries=0) as claude:
        with pytest.raises(anthropic.RateLimitError) as refused:
            await claude.messages.batches.create(requests=[request("a", "hello"), request("b", "write code for a lexer")])
    assert "budget 'daily'" in refused.value.message and "cannot cover this batch" in refused.value.message
    assert refused.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    async with openai.AsyncOpenAI(base_url=sidecar.base_url, api_key=APP_KEY, max_retries=0) as client:
        lines = [line(c, "gpt-4o-mini", "hello") for c in ("a", "b", "c")]
        uploaded = await client.files.create(file=("work.jsonl", jsonl(lines)), purpose="batch")
        with pytest.raises(openai.RateLimitError) as over:
            await client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")
    assert over.value.code == "budget_exceeded" and over.value.response.headers["retry-after"]
    assert fake_anthropic.batches == {} and fake_batch.batches == {} and fake_batch.files == {}  # nothing was sent
    [row] = await budgets(sidecar)
    assert row["reserved_usd"] == 0 and row["spent_usd"] == 0
    assert await metric(sidecar, "modelroute_budget_decisions_total", 'result="rejected"') == 2


async def test_cost_is_recorded_when_the_provider_ends_without_anyone_reading(make_sidecar: SidecarFactory,
                                                                              fake_batch: FakeOpenAIBatch,
                                                                              fake_anthropic: FakeAnthropic) -> None:
    sidecar = await make_sidecar(with_budget(message_batch_policy(fake_batch.base_url, fake_anthropic.base_url), 10))
    async with anthropic.AsyncAnthropic(base_url=sidecar.url, api_key=APP_KEY, max_retries=0) as claude:
        batch = await claude.messages.batches.create(requests=[request("a", "hello there"), request("b", "write code for a lexer"),
                                                               request("gpt", "hi", model="gpt-4o-mini")])
        [held] = await budgets(sidecar)
        assert held["reserved_usd"] > 0 and held["spent_usd"] == 0 and fake_anthropic.batch_results == {}
        # the poller's round: its first poll ends the provider batches (polls_to_end=1); nobody reads anything
        assert await sidecar.batch.poller.run_once(sidecar.holder.current, force=True) == 1
        expected = anthropic_cost(fake_anthropic)
        assert expected > 0
        assert await metric(sidecar, BATCH_COST, 'route="batch"') == pytest.approx(float(expected), abs=1e-12)
        assert await metric(sidecar, "modelroute_batches_recorded_total", 'kind="anthropic"') == 1
        [row] = await budgets(sidecar)
        assert row["spent_usd"] == pytest.approx(float(expected), abs=1e-9) and row["reserved_usd"] == 0
        # a later read shows the recorded cost and counts nothing more
        for _ in range(2):
            seen = await claude.messages.batches.retrieve(batch.id)
            assert Decimal((seen.model_extra or {})["modelroute"]["cost_usd"]) == expected
            async with aiohttp.ClientSession() as http, http.get(seen.results_url or "") as resp:
                assert Decimal(resp.headers["x-modelroute-cost-usd"]) == expected and len((await resp.read()).splitlines()) == 3
    assert await metric(sidecar, BATCH_COST, 'route="batch"') == pytest.approx(float(expected), abs=1e-12)
    assert (await budgets(sidecar))[0]["spent_usd"] == row["spent_usd"]
    assert await sidecar.batch.poller.run_once(sidecar.holder.current, force=True) == 0  # nothing left to follow


async def test_the_background_poller_records_openai_batches_and_deferred_requests(make_sidecar: SidecarFactory,
                                                                                  fake_batch: FakeOpenAIBatch) -> None:
    fake_batch.api_key = None
    doc = with_budget(message_batch_policy(fake_batch.base_url, "http://127.0.0.1:9"), 10)
    doc["spec"]["routes"].insert(0, {"name": "later", "match": {"headers": {"x-later": "*"}}, "model": "gpt-4o", "batch": "preferred"})
    sidecar = await make_sidecar(doc, batch_poll=PollSettings(interval=0.01))
    async with openai.AsyncOpenAI(base_url=sidecar.base_url, api_key=APP_KEY, max_retries=0) as client:
        uploaded = await client.files.create(file=("w.jsonl", jsonl([line("a", "gpt-4o-mini", "hello")])), purpose="batch")
        batch = await client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")
        deferred = await client.chat.completions.with_raw_response.create(
            model="auto", messages=[{"role": "user", "content": "summarise this"}],
            extra_headers={"x-later": "1", "x-modelroute-deadline": "24h"})
    assert deferred.status_code == 202
    batches, runtime = sidecar.batch.batches, sidecar.holder.current
    dfr = "batch_mr_" + deferred.headers["x-modelroute-deferred-id"].removeprefix("dfr_")
    costs = await asyncio.wait_for(asyncio.gather(batches.recorded(runtime, batch.id), batches.recorded(runtime, dfr)), 30)
    assert sum(costs) == openai_cost(fake_batch) > 0 and len(fake_batch.batches) == 2
    assert await metric(sidecar, BATCH_COST, 'route="batch"') == pytest.approx(float(sum(costs)), abs=1e-12)
    [row] = await budgets(sidecar)
    assert row["spent_usd"] == pytest.approx(float(sum(costs)), abs=1e-9) and row["reserved_usd"] == 0
