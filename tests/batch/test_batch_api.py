"""Batch API pass-through with the real openai SDK: every line routed by the policy, one provider
batch per model, unbatchable lines reported, batch prices at batchDiscount recorded once."""

from __future__ import annotations

import json
from decimal import Decimal

import aiohttp
import openai
import pytest

from modelroute.testing.fake_openai_batch import FakeOpenAIBatch
from tests.batch.helpers import batch_policy, jsonl, line
from tests.spend.helpers import budgets
from tests.support import APP_KEY, PROVIDER_KEY, SidecarFactory

M = Decimal(1_000_000)
PRICES = {"gpt-4o-mini": (Decimal("0.15"), Decimal("0.60")), "gpt-4o": (Decimal("2.5"), Decimal(10))}


async def test_batch_lines_are_routed_priced_at_the_discount_and_recorded_once(make_sidecar: SidecarFactory,
                                                                                 fake_batch: FakeOpenAIBatch) -> None:
    fake_batch.api_key = PROVIDER_KEY
    sidecar = await make_sidecar(batch_policy(fake_batch.base_url))
    lines = [line("a", "auto", "hello there"), line("b", "gpt-4o-mini", "write code for a parser"),
             line("c", "claude-haiku", "hi"), line("d", "gpt-4o", "what is the capital of France")]
    async with openai.AsyncOpenAI(base_url=sidecar.base_url, api_key=APP_KEY, max_retries=0) as client:
        uploaded = await client.files.create(file=("work.jsonl", jsonl(lines)), purpose="batch")
        report = (uploaded.model_extra or {})["modelroute"]
        assert report["models"] == {"gpt-4o-mini": 2, "gpt-4o": 1} and report["unbatchable"][0]["param"] == "c"
        batch = await client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")
        assert batch.status == "validating" and batch.errors is not None and batch.errors.data is not None
        [error] = batch.errors.data
        assert error.code == "no_batch_api" and error.line == 3 and "claude-haiku" in (error.message or "")
        done = await client.batches.retrieve(batch.id)
        assert done.status == "completed" and done.request_counts is not None
        assert (done.request_counts.total, done.request_counts.completed, done.request_counts.failed) == (4, 3, 1)
        assert done.output_file_id is not None
        first = await client.files.with_raw_response.content(done.output_file_id)
        again = await client.files.with_raw_response.content(done.output_file_id)
    # the provider saw one file and one batch per model, each line's model rewritten as routed in real time
    sent = {f.id: [json.loads(x) for x in f.content.splitlines()] for f in fake_batch.files.values() if f.purpose == "batch"}
    by_model = {rows[0]["body"]["model"]: [r["custom_id"] for r in rows] for rows in sent.values()}
    assert by_model == {"gpt-4o-mini": ["a", "d"], "gpt-4o": ["b"]}
    assert len(fake_batch.batches) == 2 and fake_batch.calls() == []  # nothing went to the real-time endpoint
    out = [json.loads(x) for x in first.content.splitlines()]
    assert sorted(o["custom_id"] for o in out) == ["a", "b", "d"]
    expected = Decimal(0)
    for o in out:
        body = o["response"]["body"]
        price_in, price_out = PRICES[body["model"]]
        expected += (body["usage"]["prompt_tokens"] * price_in + body["usage"]["completion_tokens"] * price_out) / M / 2
    assert Decimal(first.headers["x-modelroute-cost-usd"]) == expected == Decimal(again.headers["x-modelroute-cost-usd"])
    metrics = await _metrics(sidecar.url)
    recorded = sum(float(row.split()[-1]) for row in metrics.splitlines()
                   if row.startswith("modelroute_cost_usd_total{") and 'route="batch"' in row)
    assert recorded == pytest.approx(float(expected), abs=1e-12)  # once, though the output was read twice
    [row] = await budgets(sidecar)
    assert row["spent_usd"] == pytest.approx(float(expected), abs=1e-9)


async def test_bad_files_and_unknown_ids(make_sidecar: SidecarFactory, fake_batch: FakeOpenAIBatch) -> None:
    sidecar = await make_sidecar(batch_policy(fake_batch.base_url))
    async with openai.AsyncOpenAI(base_url=sidecar.base_url, api_key=APP_KEY, max_retries=0) as client:
        with pytest.raises(openai.BadRequestError) as info:
            await client.files.create(file=("bad.jsonl", b'{"custom_id": "x"}\n'), purpose="batch")
        assert "line 1" in str(info.value)
        with pytest.raises(openai.NotFoundError):
            await client.batches.retrieve("batch_mr_nothing")
        with pytest.raises(openai.NotFoundError):
            await client.batches.create(input_file_id="file-mr-nothing", endpoint="/v1/chat/completions", completion_window="24h")
    assert fake_batch.files == {}


async def test_what_is_not_the_sidecars_passes_through(make_sidecar: SidecarFactory, fake_batch: FakeOpenAIBatch) -> None:
    """A file for another purpose, and files and batches the sidecar did not make, are the provider's."""
    sidecar = await make_sidecar(batch_policy(fake_batch.base_url))
    content = jsonl([line("a", "auto", "hi")])
    async with openai.AsyncOpenAI(base_url=sidecar.base_url, api_key=APP_KEY, max_retries=0) as client:
        uploaded = await client.files.create(file=("a.jsonl", content), purpose="assistants")
        assert uploaded.id in fake_batch.files and fake_batch.files[uploaded.id].content == content
        assert (await client.files.retrieve(uploaded.id)).purpose == "assistants"
        assert (await client.files.content(uploaded.id)).content == content
        assert [f.id for f in (await client.files.list()).data] == [uploaded.id]
        with pytest.raises(openai.BadRequestError) as info:  # the provider's own answer
            await client.batches.create(input_file_id="file-nothing", endpoint="/v1/chat/completions", completion_window="24h")
        assert "input_file_id does not exist" in str(info.value)
    assert fake_batch.hits[0].headers["Authorization"] == f"Bearer {PROVIDER_KEY}"


async def _metrics(url: str) -> str:
    async with aiohttp.ClientSession() as http, http.get(url + "/metrics") as resp:
        return await resp.text()


async def test_a_line_with_a_wrongly_typed_field_is_unroutable_with_its_path(make_sidecar: SidecarFactory,
                                                                              fake_batch: FakeOpenAIBatch) -> None:
    fake_batch.api_key = PROVIDER_KEY
    sidecar = await make_sidecar(batch_policy(fake_batch.base_url))
    bad = line("b", "auto", "hi")
    bad["body"]["messages"][0]["content"] = [{"type": "text", "text": 7}]
    async with openai.AsyncOpenAI(base_url=sidecar.base_url, api_key=APP_KEY, max_retries=0) as client:
        uploaded = await client.files.create(file=("work.jsonl", jsonl([line("a", "auto", "hello"), bad])), purpose="batch")
    report = (uploaded.model_extra or {})["modelroute"]
    assert report["models"] == {"gpt-4o-mini": 1}
    [row] = report["unbatchable"]
    assert (row["code"], row["line"], row["param"]) == ("unroutable", 2, "b")
    assert "'messages[0].content[0].text': expected a string, but got an integer" in row["message"]
