"""AnthropicProvider against the fake Anthropic server, over real sockets on 127.0.0.1."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, AsyncIterator

import aiohttp
import pytest

from modelroute.policy import ApiKeyRef, ModelSpec, Pricing, ProviderSpec
from modelroute.providers import EnvFileKeys, ErrorKind, ProviderError
from modelroute.providers.anthropic import AnthropicProvider
from modelroute.testing.fake_anthropic import FakeAnthropic, Reply

KEY = "sk-ant-provider-key-0123456789"
WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
                                            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


@dataclass
class Env:
    fake: FakeAnthropic
    provider: AnthropicProvider
    model: ModelSpec


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    fake = FakeAnthropic(api_key=KEY)
    await fake.start()
    spec = ProviderSpec("anthropic", "anthropic", fake.base_url, api_key=ApiKeyRef(env="ANTHROPIC_KEY"),
                        headers={"anthropic-beta": "test-beta-2025"}, anthropic_version="2023-06-01")
    model = ModelSpec("claude", "anthropic", "claude-sonnet-4-5", Pricing(3.0, 15.0), max_output_tokens=2048)
    async with aiohttp.ClientSession() as session:
        yield Env(fake, AnthropicProvider(spec, session, EnvFileKeys({"ANTHROPIC_KEY": KEY})), model)
    await fake.close()


def _user(text: str, **extra: Any) -> dict[str, Any]:
    return {"model": "auto", "messages": [{"role": "user", "content": text}], **extra}


async def _chunks(env: Env, body: dict[str, Any]) -> tuple[list[dict[str, Any]], Any]:
    stream = await env.provider.chat_stream(body, env.model, timeout=5, idle_timeout=5, headers={})
    chunks = [json.loads(raw) async for raw in stream]
    return chunks, stream


async def test_chat_sends_provider_headers_and_translates_the_answer(env: Env) -> None:
    env.fake.cache_read_tokens, env.fake.cache_creation_tokens = 5, 2
    body = {"model": "auto", "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello there"}]}
    done = await env.provider.chat(body, env.model, timeout=5, headers={"traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01"})
    received = env.fake.calls()[-1]
    assert received.headers["x-api-key"] == KEY
    assert received.headers["anthropic-version"] == "2023-06-01"
    assert received.headers["anthropic-beta"] == "test-beta-2025"
    assert "traceparent" in received.headers and "Authorization" not in received.headers
    assert received.body["model"] == "claude-sonnet-4-5" and received.body["max_tokens"] == 2048
    assert received.body["system"] == [{"type": "text", "text": "Be brief."}]
    message = done.body["choices"][0]["message"]
    assert message == {"role": "assistant", "content": "[claude-sonnet-4-5] you said: hello there"}
    assert done.body["choices"][0]["finish_reason"] == "stop"
    usage = done.body["usage"]
    assert usage["prompt_tokens_details"] == {"cached_tokens": 5, "cache_creation_tokens": 2}
    assert done.usage is not None and done.usage.input_tokens == usage["prompt_tokens"]
    assert (done.usage.cached_input_tokens, done.usage.cache_write_tokens) == (5, 2)


async def test_dropped_parameters_are_reported(env: Env) -> None:
    done = await env.provider.chat(_user("hi", seed=3, logprobs=True, temperature=1.5), env.model, timeout=5, headers={})
    assert set(done.dropped) == {"seed", "logprobs", "temperature.above_1"}
    assert env.fake.calls()[-1].body["temperature"] == 1.0


async def test_stream_text_ends_with_a_usage_chunk(env: Env) -> None:
    env.fake.cache_read_tokens = 3
    chunks, stream = await _chunks(env, _user("one two three four", stream=True))
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "[claude-sonnet-4-5] you said: one two three four"
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "stop"
    last = chunks[-1]
    assert last["choices"] == [] and last["usage"]["prompt_tokens_details"]["cached_tokens"] == 3
    assert stream.usage is not None and stream.usage.output_tokens == last["usage"]["completion_tokens"] > 0
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)


async def test_stream_tool_call_arguments_arrive_as_json(env: Env) -> None:
    chunks, _ = await _chunks(env, _user("weather in Paris", stream=True, tools=[WEATHER]))
    calls = [tc for c in chunks if c["choices"] for tc in c["choices"][0]["delta"].get("tool_calls") or []]
    assert calls[0]["id"].startswith("toolu_") and calls[0]["function"]["name"] == "get_weather"
    arguments = "".join(tc["function"]["arguments"] for tc in calls)
    assert json.loads(arguments) == {"city": "weather in Paris"}
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"


async def test_tool_call_round_trip(env: Env) -> None:
    first = await env.provider.chat(_user("weather in Paris", tools=[WEATHER]), env.model, timeout=5, headers={})
    message = first.body["choices"][0]["message"]
    assert first.body["choices"][0]["finish_reason"] == "tool_calls"
    call = message["tool_calls"][0]
    follow_up = {"model": "auto", "tools": [WEATHER], "messages": [
        {"role": "user", "content": "weather in Paris"}, message,
        {"role": "tool", "tool_call_id": call["id"], "content": "18C and sunny"}]}
    second = await env.provider.chat(follow_up, env.model, timeout=5, headers={})
    assert second.body["choices"][0]["message"]["content"] == "[claude-sonnet-4-5] the tool said: 18C and sunny"
    sent = env.fake.calls()[-1].body["messages"]
    assert sent[2] == {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call["id"], "content": "18C and sunny"}]}


async def test_thinking_is_kept_apart_from_the_answer(env: Env) -> None:
    chunks, _ = await _chunks(env, _user("is 97 prime", stream=True, reasoning_effort="low"))
    assert env.fake.calls()[-1].body["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    reasoning = "".join(d.get("reasoning_content") or "" for d in deltas)
    content = "".join(d.get("content") or "" for d in deltas)
    assert reasoning == "The user wrote: is 97 prime" and "The user wrote" not in content
    blocks = [b for d in deltas for b in d.get("thinking_blocks") or []]
    assert blocks == [{"type": "thinking", "thinking": reasoning, "signature": blocks[0]["signature"]}] and blocks[0]["signature"]
    done = await env.provider.chat(_user("is 97 prime", reasoning_effort="low"), env.model, timeout=5, headers={})
    message = done.body["choices"][0]["message"]
    assert message["reasoning_content"] == reasoning and message["thinking_blocks"][0]["signature"] == blocks[0]["signature"]


async def test_response_formats(env: Env) -> None:
    schema = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
              "required": ["name", "age"], "additionalProperties": False}
    strict = {"type": "json_schema", "json_schema": {"name": "person", "strict": True, "schema": schema}}
    done = await env.provider.chat(_user("Ada", response_format=strict), env.model, timeout=5, headers={})
    assert env.fake.calls()[-1].body["output_config"]["format"]["schema"] == schema
    assert json.loads(done.body["choices"][0]["message"]["content"]) == {"name": "Ada", "age": 1}
    loose = {"type": "json_schema", "json_schema": {"name": "person", "schema": schema}}
    chunks, _ = await _chunks(env, _user("Ada", response_format=loose, stream=True))
    content = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert json.loads(content) == {"name": "Ada", "age": 1}
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "stop"
    assert env.fake.calls()[-1].body["tool_choice"] == {"type": "tool", "name": "person"}


@pytest.mark.parametrize(("status", "kind", "retryable"), [
    (400, ErrorKind.BAD_REQUEST, False), (401, ErrorKind.AUTH, True), (403, ErrorKind.AUTH, True),
    (404, ErrorKind.NOT_FOUND, True), (413, ErrorKind.CONTEXT_LENGTH, True), (429, ErrorKind.RATE_LIMITED, True),
    (500, ErrorKind.SERVER, True), (529, ErrorKind.SERVER, True),
])
async def test_error_statuses(env: Env, status: int, kind: ErrorKind, retryable: bool) -> None:
    env.fake.fail(status=status, retry_after=2 if status == 429 else None, times=1)
    with pytest.raises(ProviderError) as info:
        await env.provider.chat(_user("hi"), env.model, timeout=5, headers={})
    assert (info.value.kind, info.value.status, info.value.retryable) == (kind, status, retryable)
    if status == 429:
        assert info.value.retry_after == 2
    if status == 400:
        assert info.value.error == {"message": "fault 400", "type": "invalid_request_error", "param": None, "code": None}
    assert KEY not in str(info.value) and KEY not in json.dumps(info.value.error)


async def test_wrong_key_is_auth_and_never_echoed(env: Env) -> None:
    spec = ProviderSpec("anthropic", "anthropic", env.fake.base_url, api_key=ApiKeyRef(env="ANTHROPIC_KEY"))
    wrong = AnthropicProvider(spec, env.provider.session, EnvFileKeys({"ANTHROPIC_KEY": "sk-ant-wrong-key"}))
    with pytest.raises(ProviderError) as info:
        await wrong.chat(_user("hi"), env.model, timeout=5, headers={})
    assert info.value.kind is ErrorKind.AUTH and "sk-ant-wrong-key" not in str(info.value)


async def test_prompt_too_long_is_context_length(env: Env) -> None:
    env.fake.context_windows["claude-sonnet-4-5"] = 5
    with pytest.raises(ProviderError) as info:
        await env.provider.chat(_user("a long prompt " * 10), env.model, timeout=5, headers={})
    assert info.value.kind is ErrorKind.CONTEXT_LENGTH and info.value.error is not None
    assert info.value.error["code"] == "context_length_exceeded"


async def test_overloaded_error_event_mid_stream(env: Env) -> None:
    env.fake.fail(error_after=6, times=1)
    stream = await env.provider.chat_stream(_user("one two three four five", stream=True), env.model, timeout=5,
                                            idle_timeout=5, headers={})
    got = []
    with pytest.raises(ProviderError) as info:
        async for raw in stream:
            got.append(raw)
    assert got and info.value.kind is ErrorKind.SERVER and info.value.status == 529 and info.value.retryable


async def test_stream_cut_before_message_stop(env: Env) -> None:
    env.fake.fail(cut_after=5, times=1)
    stream = await env.provider.chat_stream(_user("one two three", stream=True), env.model, timeout=5, idle_timeout=5, headers={})
    with pytest.raises(ProviderError) as info:
        async for _ in stream:
            pass
    assert info.value.kind is ErrorKind.CONNECT


async def test_reset_and_timeout(env: Env) -> None:
    env.fake.fail(reset=True, times=1)
    with pytest.raises(ProviderError) as info:
        await env.provider.chat(_user("hi"), env.model, timeout=5, headers={})
    assert info.value.kind is ErrorKind.CONNECT
    env.fake.fail(delay=1.0, times=1)
    with pytest.raises(ProviderError) as info:
        await env.provider.chat(_user("hi"), env.model, timeout=0.2, headers={})
    assert info.value.kind is ErrorKind.TIMEOUT


async def test_untranslatable_content_is_refused_before_any_call(env: Env) -> None:
    body = {"model": "auto", "messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "AA==", "format": "wav"}}]}]}
    with pytest.raises(ProviderError) as info:
        await env.provider.chat(body, env.model, timeout=5, headers={})
    assert info.value.kind is ErrorKind.BAD_REQUEST and not env.fake.requests


async def test_scripted_reply_with_server_tool_blocks_is_dropped_not_guessed(env: Env) -> None:
    env.fake.script(Reply([{"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "x"}},
                           {"type": "text", "text": "Found it."}]))
    done = await env.provider.chat(_user("search"), env.model, timeout=5, headers={})
    assert done.body["choices"][0]["message"]["content"] == "Found it."
    assert done.dropped == ("content.server_tool_use",)


async def test_native_messages_pass_through(env: Env) -> None:
    body = {"model": "claude", "max_tokens": 50, "messages": [{"role": "user", "content": "hello"}]}
    done = await env.provider.call("messages", body, env.model, timeout=5, headers={})
    assert done.raw is not None and json.loads(done.raw) == done.body and done.body["type"] == "message"
    assert env.fake.calls()[-1].body == {**body, "model": "claude-sonnet-4-5"}
    assert done.usage is not None and done.usage.output_tokens == done.body["usage"]["output_tokens"]
    stream = await env.provider.stream("messages", {**body, "stream": True}, env.model, timeout=5, idle_timeout=5, headers={})
    events = [event async for batch in stream.batches() for event in batch]
    names = [(name or b"").decode() for name, _ in events]
    assert names[:2] == ["message_start", "ping"] and names[-2:] == ["message_delta", "message_stop"]
    assert all(json.loads(data)["type"] == name for name, data in zip(names, (d for _, d in events)))
    assert stream.finished and stream.usage is not None and stream.usage.output_tokens == done.usage.output_tokens
    counted = await env.provider.count_tokens(body, env.model, timeout=5, headers={})
    assert counted["input_tokens"] > 0 and "max_tokens" not in env.fake.requests[-1].body


async def test_fake_refuses_what_anthropic_refuses(env: Env) -> None:
    unmerged = {"model": "claude", "max_tokens": 50, "messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]}
    with pytest.raises(ProviderError) as info:
        await env.provider.call("messages", unmerged, env.model, timeout=5, headers={})
    assert info.value.kind is ErrorKind.BAD_REQUEST and "alternate" in str(info.value)
    extra = {"model": "claude", "max_tokens": 50, "n": 2, "messages": [{"role": "user", "content": "a"}]}
    with pytest.raises(ProviderError) as info:
        await env.provider.call("messages", extra, env.model, timeout=5, headers={})
    assert "Extra inputs" in str(info.value)
