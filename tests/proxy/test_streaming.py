"""Streaming: a true pass-through, with usage hidden unless asked for and costed exactly."""

from __future__ import annotations

import asyncio
import json
import time

from typing import Any, AsyncIterator

import aiohttp
import openai
import pytest

from modelroute.providers import TYPES, EventStream, Completion
from modelroute.providers.openai import OpenAIProvider
from modelroute.testing.fake_openai import FakeOpenAI
from tests.support import Sidecar, SidecarFactory, quickstart

HELLO = [{"role": "user", "content": "stream me some words please"}]


async def test_stream_reaches_the_sdk_with_the_same_text(client: openai.AsyncOpenAI) -> None:
    whole = await client.chat.completions.create(model="auto", messages=HELLO)
    stream = await client.chat.completions.create(model="auto", messages=HELLO, stream=True)
    parts = [c.choices[0].delta.content or "" async for c in stream if c.choices]
    assert "".join(parts) == whole.choices[0].message.content


async def test_usage_chunk_is_hidden_unless_the_client_asked(client: openai.AsyncOpenAI, fake_openai: FakeOpenAI) -> None:
    stream = await client.chat.completions.create(model="auto", messages=HELLO, stream=True)
    chunks = [c async for c in stream]
    assert all(c.choices for c in chunks), "a usage-only chunk leaked to a client that did not ask"
    assert fake_openai.calls()[-1].body["stream_options"] == {"include_usage": True}

    stream = await client.chat.completions.create(model="auto", messages=HELLO, stream=True, stream_options={"include_usage": True})
    chunks = [c async for c in stream]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


async def test_streamed_request_is_costed_from_usage(client: openai.AsyncOpenAI, sidecar: Sidecar) -> None:
    stream = await client.chat.completions.create(model="auto", messages=HELLO, stream=True)
    [c async for c in stream]
    span = sidecar.request_spans()[-1]
    assert span.attributes["gen_ai.usage.output_tokens"] > 0
    assert span.attributes["modelroute.cost_usd"] > 0
    assert span.attributes["gen_ai.request.stream"] is True


async def test_chunks_arrive_as_the_upstream_sends_them(sidecar: Sidecar, fake_openai: FakeOpenAI) -> None:
    fake_openai.fail("gpt-4o-mini", chunk_delay=0.15)
    body = {"model": "auto", "messages": HELLO, "stream": True}
    arrivals = []
    async with aiohttp.ClientSession() as http:
        async with http.post(sidecar.base_url + "/chat/completions", json=body) as resp:
            assert resp.headers["Content-Type"].startswith("text/event-stream")
            assert resp.headers["x-modelroute-model"] == "gpt-4o-mini"
            start = time.monotonic()
            async for line in resp.content:
                if line.startswith(b"data: {"):
                    arrivals.append(time.monotonic() - start)
    # each chunk arrives on its own, not all at once at the end
    assert len(arrivals) >= 4
    assert arrivals[-1] - arrivals[1] > 0.15 * (len(arrivals) - 3)


async def test_failure_before_the_first_chunk_falls_back_invisibly(client: openai.AsyncOpenAI, fake_openai: FakeOpenAI, sidecar: Sidecar) -> None:
    fake_openai.fail("gpt-4o-mini", status=500)
    raw = await client.chat.completions.with_raw_response.create(model="auto", messages=HELLO, stream=True)
    assert raw.headers["x-modelroute-model"] == "gpt-4o"
    text = "".join([c.choices[0].delta.content or "" async for c in raw.parse() if c.choices])
    assert text.startswith("[gpt-4o]")


async def test_stream_cut_after_the_first_byte_ends_in_an_sse_error(sidecar: Sidecar, fake_openai: FakeOpenAI) -> None:
    fake_openai.fail("gpt-4o-mini", cut_after=3)
    body = {"model": "auto", "messages": HELLO, "stream": True}
    async with aiohttp.ClientSession() as http:
        async with http.post(sidecar.base_url + "/chat/completions", json=body) as resp:
            text = (await resp.read()).decode()
    events = [e[len("data: "):] for e in text.strip().split("\n\n")]
    assert events[-1] == "[DONE]"
    error = json.loads(events[-2])["error"]
    assert error["code"] == "stream_connect"
    span = sidecar.request_spans()[-1]
    assert span.attributes["error.type"] == "stream_connect"


async def test_sdk_raises_on_a_broken_stream(client: openai.AsyncOpenAI, fake_openai: FakeOpenAI) -> None:
    fake_openai.fail("gpt-4o-mini", cut_after=2)
    stream = await client.chat.completions.create(model="auto", messages=HELLO, stream=True)
    try:
        async for _ in stream:
            pass
    except openai.APIError as exc:
        assert "upstream stream failed" in str(exc)
    else:
        raise AssertionError("the SDK saw a clean end of a broken stream")


async def test_client_going_away_mid_stream_is_recorded(sidecar: Sidecar, fake_openai: FakeOpenAI) -> None:
    fake_openai.fail("gpt-4o-mini", chunk_delay=0.1)
    body = {"model": "auto", "messages": HELLO, "stream": True}
    async with aiohttp.ClientSession() as http:
        async with http.post(sidecar.base_url + "/chat/completions", json=body) as resp:
            await resp.content.readline()
    for _ in range(50):
        if sidecar.request_spans():
            break
        await asyncio.sleep(0.05)
    assert sidecar.request_spans()[-1].attributes["error.type"] == "client_closed"


async def test_a_stalled_stream_ends_at_the_idle_timeout(make_sidecar: object, fake_openai: FakeOpenAI) -> None:
    from tests.support import quickstart

    sidecar = await make_sidecar(quickstart(fake_openai.base_url, timeouts={"streamIdleSeconds": 0.3}))  # type: ignore[operator]
    fake_openai.fail("gpt-4o-mini", stall_after=2, stall=3.0)
    body = {"model": "auto", "messages": HELLO, "stream": True}
    started = time.monotonic()
    async with aiohttp.ClientSession() as http:
        async with http.post(sidecar.base_url + "/chat/completions", json=body) as resp:
            text = (await resp.read()).decode()
    assert time.monotonic() - started < 2
    assert resp.headers["x-modelroute-model"] == "gpt-4o-mini"
    assert json.loads(text.split('data: ')[-2])['error']['code'] == 'stream_timeout' and text.endswith("data: [DONE]\n\n")


class _Breaking(EventStream):
    """The real upstream stream, then an exception of no known kind after its second batch: how a
    bug of the sidecar's own would surface mid-stream."""

    def __init__(self, inner: EventStream) -> None:
        self.inner = inner
        self.where, self.headers, self.finished = inner.where, inner.headers, False
        self.usage = None

    async def batches(self) -> AsyncIterator[list[tuple[bytes | None, bytes]]]:
        count = 0
        async for batch in self.inner.batches():
            for event in batch:
                yield [event]
                count += 1
                if count == 2:
                    raise RuntimeError("a bug")

    async def aclose(self) -> None:
        await self.inner.aclose()


class BreakingProvider(OpenAIProvider):
    async def stream(self, *args: Any, **kwargs: Any) -> EventStream:
        return _Breaking(await super().stream(*args, **kwargs))

    async def call(self, *args: Any, **kwargs: Any) -> Completion:
        raise RuntimeError("a bug")


async def test_an_error_of_the_sidecar_mid_stream_ends_the_stream_cleanly(
        make_sidecar: SidecarFactory, fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    """The provider type registry (not the HTTP client) points at a provider whose stream breaks."""
    monkeypatch.setitem(TYPES, "openai", f"{__name__}:BreakingProvider")
    sidecar = await make_sidecar(quickstart(fake_openai.base_url))
    async with aiohttp.ClientSession() as http:
        async with http.post(sidecar.url + "/v1/chat/completions", json={"model": "auto", "messages": HELLO, "stream": True}) as resp:
            assert resp.status == 200
            text = await resp.text()  # a corrupt chunked body would raise here
    data = [line[6:] for line in text.split("\n") if line.startswith("data: ")]
    assert len(data) == 4 and data[-1] == "[DONE]"
    assert json.loads(data[2])["error"] == {"message": "internal error in the modelroute sidecar", "type": "server_error",
                                            "param": None, "code": None}
    assert sidecar.services.metrics.errors.labels("internal")._value.get() == 1
    async with aiohttp.ClientSession() as http:  # the same bug before any byte went out: a 500, counted once too
        async with http.post(sidecar.url + "/v1/chat/completions", json={"model": "auto", "messages": HELLO}) as resp:
            assert resp.status == 500
            assert (await resp.json())["error"]["message"] == "internal error in the modelroute sidecar"
    await asyncio.sleep(0.05)  # the exchange is recorded on the next turns of the loop
    assert sidecar.services.metrics.errors.labels("internal")._value.get() == 2


async def test_an_error_of_the_sidecar_mid_stream_ends_a_messages_stream_with_an_error_event(
        make_sidecar: SidecarFactory, fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(TYPES, "openai", f"{__name__}:BreakingProvider")
    sidecar = await make_sidecar(quickstart(fake_openai.base_url))
    body = {"model": "auto", "max_tokens": 50, "stream": True, "messages": HELLO}
    async with aiohttp.ClientSession() as http, http.post(sidecar.url + "/v1/messages", json=body) as resp:
        assert resp.status == 200
        text = await resp.text()
    events = [line[7:] for line in text.split("\n") if line.startswith("event: ")]
    assert events[0] == "message_start" and events[-1] == "error" and "message_stop" not in events
    last = json.loads(text.rstrip().split("\n")[-1][6:])
    assert last == {"type": "error", "error": {"type": "api_error", "message": "internal error in the modelroute sidecar"}}
    assert sidecar.services.metrics.errors.labels("internal")._value.get() == 1
