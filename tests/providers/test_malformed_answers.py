"""An upstream whose answers break its API's shape (fields of the wrong type or missing, at any
depth, in whole answers, stream chunks and events): the client gets a 502 in its own API's
format, or a stream that ends cleanly, with an error event when the answer broke mid-way; never a
500 and never a corrupt stream. Such an answer is the upstream's failure (``protocol``): with a
fallback the next model answers.

The fake providers speak their real wire formats, and ``mangle`` rewrites every payload they send
with the seeded mutator the request fuzz tests use.
"""

from __future__ import annotations

import random
from typing import Any

import aiohttp
import pytest

from modelroute.testing.fake_anthropic import FakeAnthropic
from modelroute.testing.fake_openai import FakeOpenAI
from tests.support import ANTHROPIC_KEY, Sidecar, SidecarFactory, mixed_policy, mutated

CASES = 100  # per path, model and stream flag
MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.fixture
async def pinned(make_sidecar: SidecarFactory, fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic) -> Sidecar:
    """Both models pinned, no fallbacks, a breaker that never trips: every request reaches its upstream."""
    fake_openai.record = fake_anthropic.record = False
    make_sidecar.environ["TEST_ANTHROPIC_KEY"] = ANTHROPIC_KEY
    doc = mixed_policy(fake_openai.base_url, fake_anthropic.base_url)
    doc["spec"].update(fallbacks={}, pinnedModels=["gpt-4o-mini", "claude-sonnet"],
                       circuitBreaker={"failureThreshold": 1_000_000, "cooldownSeconds": 0})
    return await make_sidecar(doc)


def _sse_data(text: str) -> list[str]:
    return [line[6:] for line in text.split("\n") if line.startswith("data: ")]


def _check(path: str, stream: bool, status: int, text: str, body: dict[str, Any]) -> None:
    context = f"{path} {body['model']} stream={stream}: {status} {text[:300]}"
    assert status in (200, 502), context
    anthropic = path == "/v1/messages"
    if status == 502:
        assert ('"type":"error"' in text.replace(" ", "")) if anthropic else ('"upstream_failed"' in text), context
    elif stream and anthropic:  # the last event ends the message, or tells why it broke
        events = [line[7:] for line in text.split("\n") if line.startswith("event: ")]
        assert events and events[-1] in ("message_stop", "error"), context
    elif stream:
        assert _sse_data(text)[-1] == "[DONE]", context


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/messages"])
@pytest.mark.parametrize("model", ["gpt-4o-mini", "claude-sonnet"])
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
async def test_a_malformed_answer_is_a_clean_failure(pinned: Sidecar, fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic,
                                                    path: str, model: str, stream: bool) -> None:
    rng = random.Random(f"{path}:{model}:{stream}")
    fake_openai.mangle = fake_anthropic.mangle = lambda payload: mutated(payload, rng) if rng.random() < 0.5 else payload
    statuses: dict[int, int] = {}
    body = {"model": model, "max_tokens": 16, "stream": stream, "messages": MESSAGES}
    async with aiohttp.ClientSession() as http:
        for _ in range(CASES):
            async with http.post(pinned.url + path, json=body) as resp:
                text = await resp.text()
            statuses[resp.status] = statuses.get(resp.status, 0) + 1
            _check(path, stream, resp.status, text, body)
        fake_openai.mangle = fake_anthropic.mangle = None
        async with http.post(pinned.url + path, json=body) as resp:
            assert resp.status == 200, await resp.text()
    if not stream:  # a stream's failures after its first event are error events inside a 200
        assert statuses.get(502, 0) >= 3 and statuses.get(200, 0) >= CASES // 10, statuses  # some mutations hit read fields
    assert pinned.services.metrics.errors.labels("internal")._value.get() == 0


async def test_a_malformed_answer_falls_back_to_the_next_model(make_sidecar: SidecarFactory, fake_openai: FakeOpenAI,
                                                              fake_anthropic: FakeAnthropic) -> None:
    make_sidecar.environ["TEST_ANTHROPIC_KEY"] = ANTHROPIC_KEY
    sidecar = await make_sidecar(mixed_policy(fake_openai.base_url, fake_anthropic.base_url))  # claude -> gpt-4o-mini
    fake_anthropic.mangle = lambda message: {**message, "usage": {**message["usage"], "output_tokens": "many"}}
    async with aiohttp.ClientSession() as http:
        async with http.post(sidecar.url + "/v1/chat/completions", json={"model": "auto", "messages": MESSAGES}) as resp:
            assert resp.status == 200, await resp.text()
            assert resp.headers["x-modelroute-model"] == "gpt-4o-mini"
    [attempt] = [s for s in sidecar.finished_spans() if s.attributes and s.attributes.get("modelroute.model") == "claude-sonnet"]
    assert attempt.attributes is not None and attempt.attributes.get("error.type") == "protocol"
