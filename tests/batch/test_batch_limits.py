"""Bounded memory for what a client picks the number of (issue #18): the sidecar keeps at most so
many uploaded files and batch records, evicts the oldest finished ones and counts each eviction;
when every record is of a batch still running, a new batch is refused rather than a running one
forgotten with its spend. And the poller backs off on a batch that does not change."""

from __future__ import annotations

import anthropic
import openai
import pytest

from modelroute.batch import PollSettings
from modelroute.testing.fake_anthropic import FakeAnthropic
from modelroute.testing.fake_openai_batch import FakeOpenAIBatch
from tests.batch.helpers import jsonl, line, message_batch_policy, metric, request
from tests.support import APP_KEY, SidecarFactory


async def test_files_beyond_the_cap_evict_the_oldest(make_sidecar: SidecarFactory, fake_batch: FakeOpenAIBatch,
                                                     fake_anthropic: FakeAnthropic) -> None:
    sidecar = await make_sidecar(message_batch_policy(fake_batch.base_url, fake_anthropic.base_url))
    sidecar.batch.batches.files.max_files = 2
    async with openai.AsyncOpenAI(base_url=sidecar.base_url, api_key=APP_KEY, max_retries=0) as client:
        ids = [(await client.files.create(file=(f"{n}.jsonl", jsonl([line("a", "gpt-4o-mini", f"hi {n}")])), purpose="batch")).id
               for n in range(3)]
        with pytest.raises(openai.NotFoundError):
            await client.files.retrieve(ids[0])
        assert [(await client.files.retrieve(i)).id for i in ids[1:]] == ids[1:]
    assert await metric(sidecar, "modelroute_batch_evictions_total", 'store="files"') == 1


async def test_running_batches_are_never_evicted(make_sidecar: SidecarFactory, fake_batch: FakeOpenAIBatch,
                                                 fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.polls_to_end = 100
    sidecar = await make_sidecar(message_batch_policy(fake_batch.base_url, fake_anthropic.base_url))
    sidecar.batch.batches.stores.local.limit = 2
    async with anthropic.AsyncAnthropic(base_url=sidecar.url, api_key=APP_KEY, max_retries=0) as claude:
        first = await claude.messages.batches.create(requests=[request("a", "one")])
        await claude.messages.batches.create(requests=[request("a", "two")])
        with pytest.raises(anthropic.RateLimitError) as full:
            await claude.messages.batches.create(requests=[request("a", "three")])
        assert "still running" in full.value.message and full.value.response.headers["retry-after"] == "60"
        assert len(fake_anthropic.batches) == 2  # the refused one never reached the provider
        fake_anthropic.end_batches()
        assert await sidecar.batch.poller.run_once(sidecar.holder.current, force=True) == 2  # both recorded: evictable now
        third = await claude.messages.batches.create(requests=[request("a", "three")])
        with pytest.raises(anthropic.NotFoundError):
            await claude.messages.batches.retrieve(first.id)
        assert (await claude.messages.batches.retrieve(third.id)).processing_status == "in_progress"
    assert await metric(sidecar, "modelroute_batch_evictions_total", 'store="batches"') == 1


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_the_poller_backs_off_on_a_batch_that_does_not_change(make_sidecar: SidecarFactory, fake_batch: FakeOpenAIBatch,
                                                                    fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.polls_to_end = 1000
    clock = Clock()
    sidecar = await make_sidecar(message_batch_policy(fake_batch.base_url, fake_anthropic.base_url),
                                 batch_poll=PollSettings(interval=10, max_interval=40, clock=clock))
    async with anthropic.AsyncAnthropic(base_url=sidecar.url, api_key=APP_KEY, max_retries=0) as claude:
        batch = await claude.messages.batches.create(requests=[request("a", "one")])
    [upstream] = fake_anthropic.batches
    poller, runtime = sidecar.batch.poller, sidecar.holder.current
    polled = []
    # created at 1000: first poll at 1010, then waits of 10, 20, 40, 40 while nothing changes
    for now in (1009, 1010, 1019, 1020, 1039, 1040, 1079, 1080, 1119, 1120):
        clock.now = now
        polled.append(await poller.run_once(runtime))
    assert polled == [0, 1, 0, 1, 0, 1, 0, 1, 0, 1]
    assert fake_anthropic.batch_polls[upstream] == 5
    fake_anthropic.end_batches()  # a change: recorded on the next due poll, then no longer followed
    clock.now = 1160
    assert await poller.run_once(runtime) == 1
    assert await sidecar.batch.batches.recorded(runtime, batch.id) > 0
    clock.now = 10_000
    assert await poller.run_once(runtime) == 0
