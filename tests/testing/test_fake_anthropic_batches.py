"""The fake Anthropic provider's Message Batches, Models and 404s, spoken to by the real
``anthropic`` SDK directly (``messages.batches.create / retrieve / list / cancel / delete /
results``, ``models``), so the fake is proven to speak the wire format the SDK expects."""

from __future__ import annotations

from typing import Any, AsyncIterator

import anthropic
import pytest

from modelroute.testing.fake_anthropic import FakeAnthropic
from tests.support import ANTHROPIC_KEY


def request(custom_id: str, text: str = "hello batch", **params: Any) -> dict[str, Any]:
    return {"custom_id": custom_id, "params": {"model": "claude-sonnet-4-5", "max_tokens": 64,
                                               "messages": [{"role": "user", "content": text}], **params}}


@pytest.fixture
async def fake() -> AsyncIterator[FakeAnthropic]:
    async with FakeAnthropic(api_key=ANTHROPIC_KEY) as server:
        yield server


@pytest.fixture
async def client(fake: FakeAnthropic) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with anthropic.AsyncAnthropic(base_url=fake.base_url, api_key=ANTHROPIC_KEY, max_retries=0) as c:
        yield c


async def test_a_batch_runs_to_its_results(client: anthropic.AsyncAnthropic, fake: FakeAnthropic) -> None:
    fake.polls_to_end = 2
    fake.expire = {"late"}
    batch = await client.messages.batches.create(requests=[  # type: ignore[list-item]
        request("ok"), request("bad", temperature=3), request("late")])
    assert batch.type == "message_batch" and batch.processing_status == "in_progress" and batch.results_url is None
    assert batch.request_counts.processing == 3 and batch.expires_at > batch.created_at
    with pytest.raises(anthropic.BadRequestError):
        await client.get(f"/v1/messages/batches/{batch.id}/results", cast_to=object)
    assert (await client.messages.batches.retrieve(batch.id)).processing_status == "in_progress"
    ended = await client.messages.batches.retrieve(batch.id)
    assert ended.processing_status == "ended" and ended.ended_at is not None
    assert ended.results_url == f"{fake.url}/v1/messages/batches/{batch.id}/results"
    counts = ended.request_counts
    assert (counts.processing, counts.succeeded, counts.errored, counts.expired, counts.canceled) == (0, 1, 1, 1, 0)
    results = {r.custom_id: r.result async for r in await client.messages.batches.results(batch.id)}
    ok, bad, late = results["ok"], results["bad"], results["late"]
    assert ok.type == "succeeded" and ok.message.content[0].text == "[claude-sonnet-4-5] you said: hello batch"  # type: ignore[union-attr]
    assert ok.message.usage.output_tokens > 0  # type: ignore[union-attr]
    assert bad.type == "errored" and bad.error.error.type == "invalid_request_error"  # type: ignore[union-attr]
    assert "temperature" in bad.error.error.message  # type: ignore[union-attr]
    assert late.type == "expired"


async def test_cancel_list_and_delete(client: anthropic.AsyncAnthropic, fake: FakeAnthropic) -> None:
    fake.polls_to_end = 10
    first = await client.messages.batches.create(requests=[request("a")])  # type: ignore[list-item]
    second = await client.messages.batches.create(requests=[request("b"), request("c")])  # type: ignore[list-item]
    listed = [b.id async for b in client.messages.batches.list(limit=1)]  # the SDK follows the pages
    assert listed == [second.id, first.id]
    with pytest.raises(anthropic.BadRequestError, match="cannot be deleted"):
        await client.messages.batches.delete(second.id)
    canceling = await client.messages.batches.cancel(second.id)
    assert canceling.processing_status == "canceling" and canceling.cancel_initiated_at is not None
    ended = await client.messages.batches.retrieve(second.id)
    assert ended.processing_status == "ended" and ended.request_counts.canceled == 2
    assert [r.result.type async for r in await client.messages.batches.results(second.id)] == ["canceled", "canceled"]
    deleted = await client.messages.batches.delete(second.id)
    assert deleted.type == "message_batch_deleted" and deleted.id == second.id
    with pytest.raises(anthropic.NotFoundError):
        await client.messages.batches.retrieve(second.id)
    fake.end_batches()
    assert (await client.messages.batches.retrieve(first.id)).request_counts.succeeded == 1


@pytest.mark.parametrize(("requests", "message"), [
    ([], "at least 1 item"),
    ([request("same"), request("same")], "unique"),
    ([request("bad id!")], "custom_id"),
    ([{"custom_id": "x"}], "params"),
])
async def test_batches_the_api_refuses(client: anthropic.AsyncAnthropic, fake: FakeAnthropic, requests: list[Any],
                                       message: str) -> None:
    with pytest.raises(anthropic.BadRequestError, match=message):
        await client.messages.batches.create(requests=requests)
    assert fake.batches == {}


async def test_models(client: anthropic.AsyncAnthropic) -> None:
    model = await client.models.retrieve("claude-sonnet-4-5")
    assert (model.type, model.id, model.display_name, model.lifecycle) == ("model", "claude-sonnet-4-5", "Claude Sonnet 4.5", "active")
    assert "claude-haiku-4-5" in [m.id async for m in client.models.list(limit=1)]
    with pytest.raises(anthropic.NotFoundError):
        await client.models.retrieve("claude-unknown")


async def test_unknown_paths_and_keys(client: anthropic.AsyncAnthropic, fake: FakeAnthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as unknown:
        await client.post("/v1/xyz", cast_to=object, body={})
    assert unknown.value.body == {"type": "error", "error": {"type": "not_found_error", "message": "Not Found"}, "request_id": "req_fake"}
    async with anthropic.AsyncAnthropic(base_url=fake.base_url, api_key="sk-ant-wrong", max_retries=0) as wrong:
        with pytest.raises(anthropic.AuthenticationError):
            await wrong.messages.batches.create(requests=[request("a")])  # type: ignore[list-item]
        with pytest.raises(anthropic.AuthenticationError):
            await wrong.models.list()
    assert fake.batches == {}
