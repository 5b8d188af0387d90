"""Anthropic Message Batches through the sidecar with the real anthropic SDK: every request routed
as in real time, one provider batch per model, requests routed to a model without Message Batches
reported errored (never sent elsewhere), results of every type merged, ids the sidecar did not make
passed through, errors in Anthropic's format."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import anthropic
import pytest

from modelroute.testing.fake_anthropic import FakeAnthropic
from modelroute.testing.fake_openai_batch import FakeOpenAIBatch
from tests.batch.helpers import message_batch_policy, request
from tests.support import ANTHROPIC_KEY, APP_KEY, Sidecar, SidecarFactory


@pytest.fixture
async def sidecar(make_sidecar: SidecarFactory, fake_batch: FakeOpenAIBatch, fake_anthropic: FakeAnthropic) -> Sidecar:
    return await make_sidecar(message_batch_policy(fake_batch.base_url, fake_anthropic.base_url))


@pytest.fixture
async def claude(sidecar: Sidecar) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with anthropic.AsyncAnthropic(base_url=sidecar.url, api_key=APP_KEY, max_retries=0) as client:
        yield client


def _sent(fake: FakeAnthropic) -> dict[str, list[str]]:
    """Upstream model -> custom ids, over the provider batches the fake was given."""
    out: dict[str, list[str]] = {}
    for lines in fake.batch_requests.values():
        for line in lines:
            out.setdefault(line["params"]["model"], []).append(line["custom_id"])
    return out


async def test_every_method_and_every_result_type(sidecar: Sidecar, claude: anthropic.AsyncAnthropic,
                                                  fake_anthropic: FakeAnthropic, fake_batch: FakeOpenAIBatch) -> None:
    fake_anthropic.polls_to_end = 2
    fake_anthropic.expire = {"late"}
    no_max_tokens = {"custom_id": "broken", "params": {"model": "auto", "messages": [{"role": "user", "content": "hi"}]}}
    requests: list[Any] = [request("hello", "hello there"), request("code", "write code for a parser"),
                           request("late", "this one expires"), request("streamed", "hi", stream=True),
                           request("gpt", "hi", model="gpt-4o-mini"), no_max_tokens]
    batch = await claude.messages.batches.create(requests=requests)
    assert batch.id.startswith("msgbatch_mr_") and batch.processing_status == "in_progress" and batch.results_url is None
    assert (batch.request_counts.processing, batch.request_counts.errored) == (4, 2)
    # routed as in real time: one provider batch per model, params.model rewritten, nothing sent to OpenAI
    assert _sent(fake_anthropic) == {"claude-haiku-4-5": ["hello", "late", "streamed"], "claude-sonnet-4-5": ["code"]}
    assert fake_batch.batches == {} and fake_batch.calls() == [] and fake_anthropic.calls() == []
    assert all(r.headers["x-api-key"] == ANTHROPIC_KEY for r in fake_anthropic.requests)

    assert [b.id async for b in claude.messages.batches.list()] == [batch.id]
    running = await claude.messages.batches.retrieve(batch.id)  # each part polled once: not ended yet
    assert running.processing_status == "in_progress" and running.ended_at is None
    done = await claude.messages.batches.retrieve(batch.id)
    assert done.processing_status == "ended" and done.ended_at is not None
    assert done.results_url == f"{sidecar.url}/v1/messages/batches/{batch.id}/results"
    counts = done.request_counts
    assert (counts.processing, counts.succeeded, counts.errored, counts.canceled, counts.expired) == (0, 2, 3, 0, 1)

    results = {r.custom_id: r.result async for r in await claude.messages.batches.results(batch.id)}
    assert {k: r.type for k, r in results.items()} == {"hello": "succeeded", "code": "succeeded", "late": "expired",
                                                      "streamed": "errored", "gpt": "errored", "broken": "errored"}
    hello, code = results["hello"], results["code"]
    assert hello.type == "succeeded" and hello.message.model == "claude-haiku-4-5"
    assert code.type == "succeeded" and code.message.model == "claude-sonnet-4-5"
    gpt, broken = results["gpt"], results["broken"]
    assert gpt.type == "errored" and broken.type == "errored"
    assert "gpt-4o-mini" in gpt.error.error.message and "no Message Batches API" in gpt.error.error.message
    assert gpt.error.error.type == "invalid_request_error" and "max_tokens: Field required" in broken.error.error.message

    deleted = await claude.messages.batches.delete(batch.id)
    assert deleted.id == batch.id and deleted.type == "message_batch_deleted"
    assert fake_anthropic.batches == {}  # the provider batches went too
    with pytest.raises(anthropic.NotFoundError):
        await claude.messages.batches.retrieve(batch.id)
    assert [b.id async for b in claude.messages.batches.list()] == []


async def test_cancel(claude: anthropic.AsyncAnthropic, fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.polls_to_end = 10
    batch = await claude.messages.batches.create(requests=[request("a", "hello"), request("b", "write code for a lexer")])
    canceling = await claude.messages.batches.cancel(batch.id)
    assert canceling.processing_status == "canceling" and canceling.cancel_initiated_at is not None
    assert {b["processing_status"] for b in fake_anthropic.batches.values()} == {"canceling"}  # both parts
    ended = await claude.messages.batches.retrieve(batch.id)
    assert ended.processing_status == "ended" and ended.request_counts.canceled == 2
    assert {r.result.type async for r in await claude.messages.batches.results(batch.id)} == {"canceled"}


async def test_errors_are_anthropics(sidecar: Sidecar, claude: anthropic.AsyncAnthropic, fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.polls_to_end = 10
    with pytest.raises(anthropic.BadRequestError) as info:
        await claude.messages.batches.create(requests=[request("same", "a"), request("same", "b")])
    assert info.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    assert "custom_id values must be unique" in info.value.message
    with pytest.raises(anthropic.BadRequestError):
        await claude.messages.batches.create(requests=[{"custom_id": "has space", "params": {}}])
    with pytest.raises(anthropic.NotFoundError):
        await claude.messages.batches.retrieve("msgbatch_mr_nothing")
    assert fake_anthropic.batches == {}
    batch = await claude.messages.batches.create(requests=[request("a", "hello")])
    with pytest.raises(anthropic.BadRequestError) as deleting:
        await claude.messages.batches.delete(batch.id)
    assert "cancel it first" in deleting.value.message
    async with aiohttp.ClientSession() as http, http.get(f"{sidecar.url}/v1/messages/batches/{batch.id}/results") as resp:
        assert resp.status == 400 and (await resp.json())["error"]["type"] == "invalid_request_error"


async def test_ids_the_sidecar_did_not_make_pass_through(claude: anthropic.AsyncAnthropic, fake_anthropic: FakeAnthropic) -> None:
    async with anthropic.AsyncAnthropic(base_url=fake_anthropic.url, api_key=ANTHROPIC_KEY, max_retries=0) as direct:
        made = await direct.messages.batches.create(requests=[request("a", "hi", model="claude-haiku-4-5")])  # type: ignore[list-item]
    seen = await claude.messages.batches.retrieve(made.id)  # the provider's own batch, with the provider's key
    assert seen.id == made.id and seen.processing_status == "ended"
    with pytest.raises(anthropic.NotFoundError):
        await claude.messages.batches.retrieve("msgbatch_nothing")
    assert json.loads(fake_anthropic.batch_results[made.id])["result"]["type"] == "succeeded"
