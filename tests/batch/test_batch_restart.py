"""Batch records survive a sidecar restart where a budget store (Redis) is configured, and each
batch is recorded once: by a restarted sidecar that resumes polling, and by two sidecars sharing
the store whichever sees it end (a real redis-server; issue #18, finding 3)."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import anthropic
import openai
import pytest

from modelroute.testing.fake_anthropic import FakeAnthropic
from modelroute.testing.fake_openai_batch import FakeOpenAIBatch
from tests.batch.helpers import anthropic_cost, jsonl, line, message_batch_policy, metric, openai_cost, request, with_budget
from tests.spend.helpers import budgets
from tests.support import APP_KEY, Sidecar, SidecarFactory

BATCH_COST = "modelroute_cost_usd_total"


async def _message_batch(sidecar: Sidecar) -> str:
    async with anthropic.AsyncAnthropic(base_url=sidecar.url, api_key=APP_KEY, max_retries=0) as claude:
        made = await claude.messages.batches.create(requests=[request("a", "hello there"), request("b", "write code for a lexer")])
    return made.id


async def _both_kinds(sidecar: Sidecar) -> tuple[str, str]:
    """An Anthropic and an OpenAI batch made through ``sidecar``."""
    made = await _message_batch(sidecar)
    async with openai.AsyncOpenAI(base_url=sidecar.base_url, api_key=APP_KEY, max_retries=0) as client:
        uploaded = await client.files.create(file=("w.jsonl", jsonl([line("x", "gpt-4o-mini", "hi"), line("y", "gpt-4o-mini", "yo")])),
                                             purpose="batch")
        batch = await client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")
    return made, batch.id


async def test_a_restarted_sidecar_resumes_polling_and_records_each_batch_once(
        make_sidecar: SidecarFactory, fake_batch: FakeOpenAIBatch, fake_anthropic: FakeAnthropic, redis_url: str) -> None:
    doc = with_budget(message_batch_policy(fake_batch.base_url, fake_anthropic.base_url), 10, redis_url)
    first = await make_sidecar(doc)
    message_batch, openai_batch = await _both_kinds(first)
    [held] = await budgets(first)
    assert held["reserved_usd"] > 0 and held["store"] == "redis"
    await first.close()  # stopped before the provider finished: its memory is gone
    fake_anthropic.end_batches()
    fake_batch.complete_all()
    expected = anthropic_cost(fake_anthropic) + openai_cost(fake_batch)
    assert expected > 0

    second = await make_sidecar(doc)
    assert await second.batch.poller.run_once(second.holder.current) == 2  # found in the store, due at once
    assert await metric(second, BATCH_COST, 'route="batch"') == pytest.approx(float(expected), abs=1e-12)
    [row] = await budgets(second)
    assert row["spent_usd"] == pytest.approx(float(expected), abs=1e-9) and row["reserved_usd"] == 0
    # the restarted sidecar serves both batches from the store; reading counts nothing more
    async with anthropic.AsyncAnthropic(base_url=second.url, api_key=APP_KEY, max_retries=0) as claude:
        ended = await claude.messages.batches.retrieve(message_batch)
        assert ended.processing_status == "ended"
        assert [r.result.type async for r in await claude.messages.batches.results(message_batch)] == ["succeeded"] * 2
    async with openai.AsyncOpenAI(base_url=second.base_url, api_key=APP_KEY, max_retries=0) as client:
        done = await client.batches.retrieve(openai_batch)
        assert done.status == "completed" and done.output_file_id is not None
        assert len((await client.files.content(done.output_file_id)).content.splitlines()) == 2
    third = await make_sidecar(doc)  # yet another start: nothing left to follow
    assert await third.batch.poller.run_once(third.holder.current, force=True) == 0
    assert (await budgets(third))[0]["spent_usd"] == row["spent_usd"]
    assert await metric(second, BATCH_COST, 'route="batch"') == pytest.approx(float(expected), abs=1e-12)


async def test_two_sidecars_sharing_the_store_record_each_batch_once(
        make_sidecar: SidecarFactory, fake_batch: FakeOpenAIBatch, fake_anthropic: FakeAnthropic, redis_url: str) -> None:
    doc = with_budget(message_batch_policy(fake_batch.base_url, fake_anthropic.base_url), 10, redis_url)
    a, b = await make_sidecar(doc), await make_sidecar(doc)
    message_batch, openai_batch = await _both_kinds(a)
    fake_anthropic.end_batches()
    fake_batch.complete_all()
    expected = anthropic_cost(fake_anthropic) + openai_cost(fake_batch)
    # the Message Batch: both sidecars finish it at the same moment (no poll lease between them)
    records = [await s.batch.batches.store(s.holder.current).get(message_batch) for s in (a, b)]
    assert all(r is not None and r.cost is None for r in records)
    costs = await asyncio.gather(*(s.batch.batches.finish(s.holder.current, r) for s, r in zip((a, b), records) if r is not None))
    assert costs == [anthropic_cost(fake_anthropic)] * 2
    # the OpenAI batch: both pollers run a round at once (one polls, the other finds it busy or recorded)
    await asyncio.gather(a.batch.poller.run_once(a.holder.current, force=True), b.batch.poller.run_once(b.holder.current, force=True))
    for sidecar in (a, b):
        record = await sidecar.batch.batches.store(sidecar.holder.current).get(openai_batch)
        assert record is not None and record.cost == openai_cost(fake_batch)
    counted = [await metric(s, BATCH_COST, 'route="batch"') for s in (a, b)]
    assert sum(counted) == pytest.approx(float(expected), abs=1e-12)
    for sidecar in (a, b):
        [row] = await budgets(sidecar)
        assert row["spent_usd"] == pytest.approx(float(expected), abs=1e-9) and row["reserved_usd"] == 0


async def test_a_settlement_made_before_a_crash_is_not_made_again(
        make_sidecar: SidecarFactory, fake_batch: FakeOpenAIBatch, fake_anthropic: FakeAnthropic, redis_url: str) -> None:
    """A sidecar that settled the budgets but died before marking the record: the next one records
    the batch (metrics) without adding its cost to the budgets a second time."""
    doc = with_budget(message_batch_policy(fake_batch.base_url, fake_anthropic.base_url), 10, redis_url)
    first = await make_sidecar(doc)
    message_batch = await _message_batch(first)
    fake_anthropic.end_batches()
    record = await first.batch.batches.store(first.holder.current).get(message_batch)
    assert record is not None and first.batch.batches.spend is not None
    cost = anthropic_cost(fake_anthropic)
    assert await first.batch.batches.spend.settle(first.holder.current.policy, record.hold, record.id, cost)
    await first.close()
    second = await make_sidecar(doc)
    recorded = second.batch.batches.recorded(second.holder.current, message_batch)
    await second.batch.poller.run_once(second.holder.current)
    assert await recorded == cost
    [row] = await budgets(second)
    assert Decimal(str(row["spent_usd"])) == cost  # once, not twice
    assert await metric(second, BATCH_COST, 'route="batch"') == pytest.approx(float(cost), abs=1e-12)
