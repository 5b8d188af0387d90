"""An upstream whose answers break its API's shape (fields of the wrong type or missing, at any
depth, in whole answers, stream chunks and events): the client gets a 502 in its own API's
format, or a stream that ends cleanly, with an error event when the answer broke mid-way; never a
500 and never a corrupt stream. Such an answer is the upstream's failure (``protocol``): with a
fallback the next model answers.

The fake providers speak their real wire formats, and ``mangle`` rewrites what they send: each
field of each payload of a clean answer (the whole answer, or every chunk or event of a stream)
alone, given every other JSON type or dropped; then 100 seeded random mixes.
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any, Callable, Iterator

import aiohttp
import pytest

from modelroute.testing.fake_anthropic import FakeAnthropic
from modelroute.testing.fake_openai import FakeOpenAI
from tests.support import ANTHROPIC_KEY, Sidecar, SidecarFactory, each_field_mutated, mixed_policy, mutated

CASES = 100  # random mixes per path, model and stream flag
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


class Mangler:
    """Rewrites the ``index``-th payload of each answer with ``rewrite`` (or every payload, by chance)."""

    def __init__(self) -> None:
        self.seen = 0
        self.rewrite: Callable[[int, dict[str, Any]], Any] = lambda n, payload: payload

    def __call__(self, payload: dict[str, Any]) -> Any:
        self.seen += 1
        return self.rewrite(self.seen - 1, payload)

    def cases(self, clean: list[dict[str, Any]], rng: random.Random) -> Iterator[Callable[[int, dict[str, Any]], Any]]:
        """Each field of each payload alone given every other JSON type or dropped, then random mixes."""
        for index, payload in enumerate(clean):
            for wrong in each_field_mutated(payload):
                yield lambda n, p, index=index, wrong=wrong: wrong if n == index else p
        for _ in range(CASES):
            yield lambda n, p: mutated(p, rng) if rng.random() < 0.5 else p


def _body(path: str, model: str, stream: bool) -> dict[str, Any]:
    tools = ([{"type": "function", "function": {"name": "look", "parameters": {"type": "object"}}}] if path.endswith("completions")
             else [{"name": "look", "input_schema": {"type": "object"}}])
    return {"model": model, "max_tokens": 16, "stream": stream, "messages": MESSAGES, "tools": tools}


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/messages"])
@pytest.mark.parametrize("model", ["gpt-4o-mini", "claude-sonnet"])
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
async def test_a_malformed_answer_is_a_clean_failure(pinned: Sidecar, fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic,
                                                    path: str, model: str, stream: bool, caplog: pytest.LogCaptureFixture) -> None:
    mangler, clean = Mangler(), []
    fake_openai.mangle = fake_anthropic.mangle = mangler
    mangler.rewrite = lambda n, payload: clean.append(payload) or payload
    statuses: dict[int, int] = {}
    body = _body(path, model, stream)
    async with aiohttp.ClientSession() as http:
        async with http.post(pinned.url + path, json=body) as resp:
            assert resp.status == 200, await resp.text()
        for rewrite in list(mangler.cases(clean, random.Random(f"{path}:{model}:{stream}"))):
            mangler.seen, mangler.rewrite = 0, rewrite
            async with http.post(pinned.url + path, json=body) as resp:
                text = await resp.text()
            statuses[resp.status] = statuses.get(resp.status, 0) + 1
            _check(path, stream, resp.status, text, body)
        fake_openai.mangle = fake_anthropic.mangle = None
        async with http.post(pinned.url + path, json=body) as resp:
            assert resp.status == 200, await resp.text()
    if not stream:  # a stream's failures after its first event are error events inside a 200
        assert statuses.get(502, 0) >= 10 and statuses.get(200, 0) >= 10, statuses  # the mutations hit fields that are read
    assert pinned.services.metrics.errors.labels("internal")._value.get() == 0
    await asyncio.sleep(0.1)  # the quality monitor reads the answers in the background
    logged = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR and r.name.startswith("modelroute")]
    assert not logged, logged[:3]  # nor did a background reader of the answers fail on them


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
