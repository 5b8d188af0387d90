"""The quality monitor on a real sidecar: labelled heuristic metrics, the sampled judge on its bounded
queue (drops counted, cost apart), regret sampling against the baseline (rate-limited)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from decimal import Decimal

import aiohttp
import openai
import pytest

from modelroute.quality.hook import MeasurementHook
from modelroute.report.prom import Samples
from modelroute.testing.fake_openai import FakeOpenAI
from tests.quality.fake_judge import FakeJudge, judged_policy
from tests.support import APP_KEY, Sidecar, SidecarFactory, quickstart

HI = [{"role": "user", "content": "hello there"}]


@pytest.fixture
async def judge_server() -> AsyncIterator[FakeJudge]:
    async with FakeJudge() as judge:
        yield judge


def hook_of(sidecar: Sidecar) -> MeasurementHook:
    return next(h for h in sidecar.services.hooks.items if isinstance(h, MeasurementHook))


async def scrape(sidecar: Sidecar) -> Samples:
    await hook_of(sidecar).drain()
    async with aiohttp.ClientSession() as http, http.get(sidecar.url + "/metrics") as resp:
        return Samples.parse(await resp.text())


async def test_heuristic_outcomes_are_labelled_by_policy_route_and_model(make_sidecar: SidecarFactory, fake_openai: FakeOpenAI) -> None:
    sidecar = await make_sidecar(quickstart(fake_openai.base_url))
    async with openai.AsyncOpenAI(base_url=sidecar.base_url, api_key=APP_KEY, max_retries=0) as client:
        await client.chat.completions.create(model="auto", messages=HI)
        await client.chat.completions.create(model="auto", messages=HI, max_tokens=2)  # cut: finish_reason length
        await client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "I'm sorry, but I can't do it"}])
        await client.chat.completions.create(model="auto", messages=HI, response_format={"type": "json_object"})
        stream = await client.chat.completions.create(model="auto", messages=HI, stream=True, extra_headers={"x-user-tier": "premium"})
        async for _ in stream:
            pass
    m = await scrape(sidecar)
    checks = "modelroute_quality_checks_total"
    base = {"policy": "quickstart", "route": "default", "model": "gpt-4o-mini", "experiment": "", "arm": ""}
    assert m.sum(checks, **base, check="empty", result="pass") == 4
    assert m.sum(checks, **base, check="truncated", result="fail") == 1
    assert m.sum(checks, **base, check="refusal", result="fail") == 1  # the fake echoes the prompt
    assert m.sum(checks, **base, check="json", result="pass") == 1
    assert m.sum("modelroute_quality_answers_total", **base, result="pass") == 2
    assert m.sum("modelroute_quality_answers_total", **base, result="fail") == 2
    premium = {**base, "route": "premium", "model": "gpt-4o"}  # the streamed answer, reassembled
    assert m.sum("modelroute_quality_answers_total", **premium, result="pass") == 1


async def test_answers_are_measured_in_batches_that_no_reader_misses(make_sidecar: SidecarFactory, fake_openai: FakeOpenAI) -> None:
    """The checks and the feedback index run on a batch of settled exchanges; a /metrics scrape and
    a feedback post flush it first, and the batch also goes on its own, BATCH_SECONDS later."""
    from modelroute.quality import hook as hook_module

    sidecar = await make_sidecar(quickstart(fake_openai.base_url))
    hook = hook_of(sidecar)
    answers = "modelroute_quality_answers_total"
    async with openai.AsyncOpenAI(base_url=sidecar.base_url, api_key=APP_KEY, max_retries=0) as client, \
            aiohttp.ClientSession() as http:
        first = await client.chat.completions.with_raw_response.create(model="auto", messages=HI)
        await asyncio.sleep(0)  # settled, not yet measured
        assert len(hook.index) == 0
        async with http.get(sidecar.url + "/metrics") as resp:  # no drain: the scrape flushes
            assert Samples.parse(await resp.text()).sum(answers, result="pass") == 1
        second = await client.chat.completions.with_raw_response.create(model="auto", messages=HI)
        async with http.post(sidecar.base_url + "/feedback", json={"request_id": second.headers["x-modelroute-request-id"],
                                                                    "thumbs": "up"}) as resp:
            assert resp.status == 200, await resp.text()  # posted at once: the feedback flushes
        await client.chat.completions.create(model="auto", messages=HI)
        await asyncio.sleep(hook_module.BATCH_SECONDS * 3)
        assert len(hook.index) == 3  # the timer flushed the third
        async with http.post(sidecar.base_url + "/feedback", json={"request_id": first.headers["x-modelroute-request-id"],
                                                                    "score": 0.5}) as resp:
            assert resp.status == 200, await resp.text()
        async with http.get(sidecar.url + "/metrics") as resp:
            assert Samples.parse(await resp.text()).sum(answers, result="pass") == 3


async def test_judge_scores_sampled_answers_and_its_cost_is_apart(make_sidecar: SidecarFactory, fake_openai: FakeOpenAI,
                                                                  judge_server: FakeJudge) -> None:
    sidecar = await make_sidecar(judged_policy(fake_openai.base_url, judge_server.base_url))
    paid = Decimal(0)
    async with openai.AsyncOpenAI(base_url=sidecar.base_url, api_key=APP_KEY, max_retries=0) as client:
        for tier in ("basic", "basic", "premium"):
            raw = await client.chat.completions.with_raw_response.create(model="auto", messages=HI, extra_headers={"x-user-tier": tier})
            paid += Decimal(raw.headers["x-modelroute-cost-usd"])
    m = await scrape(sidecar)
    assert len(judge_server.prompts) == 3 and "hello there" in judge_server.prompts[0]
    assert m.sum("modelroute_judge_score_count", route="default", model="gpt-4o-mini") == 2
    assert m.sum("modelroute_judge_score_sum", route="default") == pytest.approx(1.2)
    assert m.sum("modelroute_judge_score_sum", route="premium", model="gpt-4o") == pytest.approx(0.9)
    assert m.sum("modelroute_judge_score_squares_total", route="default") == pytest.approx(0.72)
    assert m.sum("modelroute_quality_cost_usd_total", kind="judge", model="judge") == pytest.approx(3 * 0.000104)
    assert m.sum("modelroute_cost_usd_total") == pytest.approx(float(paid))  # the traffic's cost leaves the judge out
    assert m.sum("modelroute_quality_jobs_total", kind="judge", result="ok") == 3


async def test_a_full_queue_drops_and_counts_and_no_answer_waits(make_sidecar: SidecarFactory, fake_openai: FakeOpenAI,
                                                                 judge_server: FakeJudge) -> None:
    judge_server.delay = 0.5
    sidecar = await make_sidecar(judged_policy(fake_openai.base_url, judge_server.base_url, queueSize=2, workers=1))
    async with openai.AsyncOpenAI(base_url=sidecar.base_url, api_key=APP_KEY, max_retries=0) as client:
        started = time.monotonic()
        await asyncio.gather(*(client.chat.completions.create(model="auto", messages=HI) for _ in range(8)))
        answered = time.monotonic() - started
    assert answered < 0.4  # the judge takes 0.5 s a call: nobody waited for it
    m = await scrape(sidecar)
    dropped = m.sum("modelroute_quality_jobs_total", kind="judge", result="dropped_queue_full")
    ok = m.sum("modelroute_quality_jobs_total", kind="judge", result="ok")
    assert dropped >= 5 and ok + dropped == 8 and ok == len(judge_server.prompts)


async def test_regret_reruns_cheap_answers_on_the_baseline_within_the_rate(make_sidecar: SidecarFactory, fake_openai: FakeOpenAI,
                                                                          judge_server: FakeJudge) -> None:
    doc = judged_policy(fake_openai.base_url, judge_server.base_url, regret={"sampleRate": 1.0, "maxPerMinute": 3})
    doc["spec"]["quality"]["judge"]["sampleRate"] = 0.0
    sidecar = await make_sidecar(doc)
    async with openai.AsyncOpenAI(base_url=sidecar.base_url, api_key=APP_KEY, max_retries=0) as client:
        for text in ("a hard question", "a hard one", "an easy one", "one more", "and another"):
            await client.chat.completions.create(model="auto", messages=[{"role": "user", "content": text}])
        await client.chat.completions.create(model="auto", messages=HI, extra_headers={"x-user-tier": "premium"})  # baseline: no re-run
    m = await scrape(sidecar)
    assert len(fake_openai.calls("gpt-4o")) == 1 + 3  # the premium request, then three re-runs
    assert m.sum("modelroute_quality_jobs_total", kind="regret", result="dropped_rate_limited") == 2
    labels = {"policy": "quickstart", "route": "default", "model": "gpt-4o-mini"}
    assert m.sum("modelroute_regret_samples_total", **labels, result="baseline_better") == 2
    assert m.sum("modelroute_regret_samples_total", **labels, result="routed_ok") == 1
    assert m.sum("modelroute_regret_saved_usd_total", **labels) > 0
    assert m.sum("modelroute_quality_cost_usd_total", kind="regret", model="gpt-4o") > 0
