"""Wrongly typed fields anywhere in a valid body: a 4xx in the client's API format, never a 5xx,
and the sidecar, its providers and their health are as they were.

Each case starts from a valid request that exercises what the sidecar reads (content parts, tools,
tool calls, response format, stop sequences, the parameters translation reads) and replaces its
fields, at any depth, with a value of another JSON type, or drops them: every field alone with
every other type, then random combinations of one to three. The random ones are seeded, so a
failure names a body that fails again. The sidecar serves both APIs and both directions of translation:
chat completions to Claude (OpenAI -> Anthropic), Messages to gpt-4o-mini (Anthropic -> OpenAI)
and to Claude (native).
"""

from __future__ import annotations

import copy
import random
from typing import Any, AsyncIterator

import aiohttp
import pytest

from modelroute.testing.fake_anthropic import FakeAnthropic
from modelroute.testing.fake_openai import FakeOpenAI
from tests.support import ANTHROPIC_KEY, Sidecar, SidecarFactory, each_field_mutated, mixed_policy, mutated

CASES = 300  # per body below

CHAT: dict[str, Any] = {
    "model": "auto",
    "messages": [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": [{"type": "text", "text": "what is on this picture?"},
                                     {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]},
        {"role": "assistant", "content": None,
         "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "look", "arguments": "{\"x\": 1}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "a cat"},
    ],
    "tools": [{"type": "function", "function": {"name": "look", "description": "d", "parameters": {"type": "object"}}}],
    "tool_choice": "auto", "parallel_tool_calls": True, "response_format": {"type": "text"}, "max_tokens": 16,
    "temperature": 0.5, "top_p": 0.9, "stop": ["END"], "user": "u-1", "metadata": {"team": "a"}, "reasoning_effort": "low",
    "seed": 7, "n": 1, "stream_options": {"include_usage": True},
}
MESSAGES: dict[str, Any] = {
    "model": "auto", "max_tokens": 16, "system": [{"type": "text", "text": "be brief"}],
    "messages": [
        {"role": "user", "content": [{"type": "text", "text": "look"},
                                     {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}]},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "look", "input": {"x": 1}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "a cat"}]}]},
    ],
    "tools": [{"name": "look", "description": "d", "input_schema": {"type": "object"}}],
    "tool_choice": {"type": "auto"}, "stop_sequences": ["END"], "temperature": 0.2, "top_p": 0.9, "top_k": 5,
    "metadata": {"user_id": "u-1"}, "thinking": {"type": "disabled"},
}


@pytest.fixture
async def claude() -> AsyncIterator[FakeAnthropic]:
    fake = FakeAnthropic(api_key=ANTHROPIC_KEY, record=False)
    await fake.start()
    yield fake
    await fake.close()


@pytest.fixture
async def mixed(make_sidecar: SidecarFactory, fake_openai: FakeOpenAI, claude: FakeAnthropic) -> Sidecar:
    """Claude by default; gpt-4o-mini and claude-sonnet pinned, so a request naming one is served by it."""
    fake_openai.record = False
    make_sidecar.environ["TEST_ANTHROPIC_KEY"] = ANTHROPIC_KEY
    doc = mixed_policy(fake_openai.base_url, claude.base_url)
    doc["spec"]["pinnedModels"] = ["gpt-4o-mini", "claude-sonnet"]
    return await make_sidecar(doc)


def _assert_error_format(path: str, status: int, body: Any, sent: dict[str, Any]) -> None:
    context = f"{path} answered {status} to {sent}: {body}"
    if path.startswith("/v1/messages"):
        assert body["type"] == "error" and body["error"]["message"] and body["error"]["type"], context
    else:
        assert body["error"]["message"] and body["error"]["type"], context


@pytest.mark.parametrize(("path", "valid", "model"), [
    ("/v1/chat/completions", CHAT, "claude-sonnet"),  # OpenAI -> Anthropic
    ("/v1/chat/completions", CHAT, "gpt-4o-mini"),
    ("/v1/messages", MESSAGES, "gpt-4o-mini"),  # Anthropic -> OpenAI
    ("/v1/messages", MESSAGES, "claude-sonnet"),  # native
    ("/v1/messages/count_tokens", MESSAGES, "gpt-4o-mini"),
], ids=["chat-to-claude", "chat-to-openai", "messages-to-openai", "messages-to-claude", "count-tokens"])
async def test_no_body_makes_a_5xx(mixed: Sidecar, fake_openai: FakeOpenAI, claude: FakeAnthropic, path: str,
                                   valid: dict[str, Any], model: str) -> None:
    rng = random.Random(f"{path}:{model}")
    statuses: dict[int, int] = {}
    start = {**valid, "model": model}
    bodies = [*each_field_mutated(start), *(mutated(start, rng) for _ in range(CASES))]
    async with aiohttp.ClientSession() as http:
        for body in bodies:
            async with http.post(mixed.url + path, json=body) as resp:
                statuses[resp.status] = statuses.get(resp.status, 0) + 1
                assert resp.status < 500, f"{path} answered {resp.status} to {body}: {await resp.text()}"
                if resp.status >= 400:
                    _assert_error_format(path, resp.status, await resp.json(), body)
                else:
                    await resp.read()
        assert sum(n for s, n in statuses.items() if s >= 400) >= CASES // 4, statuses  # the mutations do reach the checks
        async with http.post(mixed.url + path, json={**valid, "model": model}) as resp:
            assert resp.status == 200, await resp.text()  # nothing was cooled down or broken
            assert resp.headers["x-modelroute-model"] == model
    assert mixed.services.metrics.errors.labels("internal")._value.get() == 0
    assert (fake_openai.refused, claude.refused) == (0, 0)  # nothing unreadable got past the sidecar's checks


async def test_a_wrong_type_is_named_by_its_path_in_each_api(mixed: Sidecar) -> None:
    chat = copy.deepcopy(CHAT)
    chat["messages"][1]["content"][0]["text"] = 7
    messages = copy.deepcopy(MESSAGES)
    messages["messages"][1]["content"][0]["input"] = "x"
    async with aiohttp.ClientSession() as http:
        async with http.post(mixed.url + "/v1/chat/completions", json=chat) as resp:
            assert resp.status == 400
            assert (await resp.json())["error"] == {
                "message": "Invalid type for 'messages[1].content[0].text': expected a string, but got an integer instead.",
                "type": "invalid_request_error", "param": "messages[1].content[0].text", "code": "invalid_type"}
        async with http.post(mixed.url + "/v1/messages", json=messages) as resp:
            assert resp.status == 400
            body = await resp.json()
            assert body["error"] == {"type": "invalid_request_error",
                                     "message": "messages.1.content.0.input: Input should be a valid dictionary"}


@pytest.mark.parametrize(("path", "valid"), [
    ("/v1/embeddings", {"model": "gpt-4o-mini", "input": ["a", "b"], "encoding_format": "float", "dimensions": 8}),
    ("/v1/feedback", {"request_id": "r-1", "score": 0.5, "thumbs": "up", "comment": "ok", "labels": {"team": "a"}}),
    ("/v1/batches", {"input_file_id": "file-1", "endpoint": "/v1/chat/completions", "completion_window": "24h",
                     "metadata": {"team": "a"}}),
], ids=["embeddings", "feedback", "batches"])
async def test_other_endpoints_make_no_5xx_either(mixed: Sidecar, path: str, valid: dict[str, Any]) -> None:
    rng = random.Random(path)
    async with aiohttp.ClientSession() as http:
        for body in [*each_field_mutated(valid), *(mutated(valid, rng) for _ in range(CASES))]:
            async with http.post(mixed.url + path, json=body) as resp:
                assert resp.status < 500, f"{path} answered {resp.status} to {body}: {await resp.text()}"
                if resp.status >= 400:
                    _assert_error_format(path, resp.status, await resp.json(), body)
    assert mixed.services.metrics.errors.labels("internal")._value.get() == 0
