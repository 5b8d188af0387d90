"""The real OpenAI SDK through the sidecar, routed to the fake Anthropic provider: text, streams,
tool calls, thinking, usage and cost, errors, fallbacks and what translation dropped."""

from __future__ import annotations

import json
from decimal import Decimal

import openai
import pytest

from modelroute.testing.fake_anthropic import FakeAnthropic
from modelroute.testing.fake_openai import FakeOpenAI
from tests.support import ANTHROPIC_KEY
from tests.support import APP_KEY, Sidecar

HELLO = [{"role": "user", "content": "Say hello to the router"}]
WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
                                            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


def _cost(prompt: int, completion: int, cached: int, written: int) -> Decimal:
    """USD at claude-sonnet's prices in the mixed policy (per 1M: 3 in, 15 out, 0.3 cached, 3.75 write)."""
    plain = prompt - cached - written
    return (plain * Decimal("3") + completion * Decimal("15") + cached * Decimal("0.3") + written * Decimal("3.75")) / 1_000_000


async def test_text_usage_and_exact_cost(oai: openai.AsyncOpenAI, fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.cache_read_tokens, fake_anthropic.cache_creation_tokens = 4, 2
    raw = await oai.chat.completions.with_raw_response.create(model="auto", messages=HELLO)
    reply = raw.parse()
    assert raw.headers["x-modelroute-model"] == "claude-sonnet"
    assert reply.choices[0].message.content == "[claude-sonnet-4-5] you said: Say hello to the router"
    assert reply.choices[0].finish_reason == "stop"
    usage = reply.usage
    assert usage is not None and usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens == 4
    sent = fake_anthropic.calls()[-1]
    upstream = fake_anthropic_usage(fake_anthropic, sent.body)
    assert usage.prompt_tokens == upstream["input_tokens"] + 4 + 2 and usage.completion_tokens == upstream["output_tokens"]
    assert Decimal(raw.headers["x-modelroute-cost-usd"]) == _cost(usage.prompt_tokens, usage.completion_tokens, 4, 2)


def fake_anthropic_usage(fake: FakeAnthropic, body: dict[str, object]) -> dict[str, int]:
    """What the fake reported for ``body`` (it is deterministic): replay the request."""
    from modelroute.testing.fake_anthropic import answer, output_tokens, prompt_tokens

    content, _, _ = answer(dict(body))
    total = prompt_tokens(dict(body))
    return {"input_tokens": total - fake.cache_read_tokens - fake.cache_creation_tokens, "output_tokens": output_tokens(content)}


async def test_app_key_is_never_forwarded(oai: openai.AsyncOpenAI, fake_anthropic: FakeAnthropic) -> None:
    await oai.chat.completions.create(model="auto", messages=HELLO)
    headers = {k.lower(): v for k, v in fake_anthropic.calls()[-1].headers.items()}
    assert headers["x-api-key"] == ANTHROPIC_KEY and headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in headers and APP_KEY not in json.dumps(headers)


async def test_streaming_text_with_and_without_usage(oai: openai.AsyncOpenAI, mixed: Sidecar) -> None:
    stream = await oai.chat.completions.create(model="auto", messages=HELLO, stream=True, stream_options={"include_usage": True})
    chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "[claude-sonnet-4-5] you said: Say hello to the router"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    plain = await oai.chat.completions.create(model="auto", messages=HELLO, stream=True)
    assert all(c.choices for c in [chunk async for chunk in plain])  # the usage chunk is hidden
    span = mixed.request_spans()[-1]
    assert span.attributes is not None and span.attributes["modelroute.model"] == "claude-sonnet"
    assert span.attributes["gen_ai.usage.output_tokens"] == chunks[-1].usage.completion_tokens


async def test_tool_call_round_trip(oai: openai.AsyncOpenAI, fake_anthropic: FakeAnthropic) -> None:
    messages: list[dict[str, object]] = [{"role": "user", "content": "weather in Paris"}]
    first = await oai.chat.completions.create(model="auto", messages=messages, tools=[WEATHER])  # type: ignore[arg-type]
    assert first.choices[0].finish_reason == "tool_calls"
    call = first.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "weather in Paris"}  # type: ignore[union-attr]
    messages.append(first.choices[0].message.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": call.id, "content": "18C and sunny"})
    second = await oai.chat.completions.create(model="auto", messages=messages, tools=[WEATHER])  # type: ignore[arg-type]
    assert second.choices[0].message.content == "[claude-sonnet-4-5] the tool said: 18C and sunny"
    turn = fake_anthropic.calls()[-1].body["messages"]
    assert turn[1]["content"][0]["type"] == "tool_use" and turn[1]["content"][0]["id"] == call.id
    assert turn[2]["content"][0] == {"type": "tool_result", "tool_use_id": call.id, "content": "18C and sunny"}


async def test_streamed_tool_call(oai: openai.AsyncOpenAI) -> None:
    stream = await oai.chat.completions.create(model="auto", messages=[{"role": "user", "content": "weather in Rome"}],
                                               tools=[WEATHER], stream=True)  # type: ignore[list-item]
    calls = [tc async for chunk in stream if chunk.choices for tc in chunk.choices[0].delta.tool_calls or []]
    assert calls[0].id and calls[0].function is not None and calls[0].function.name == "get_weather"
    arguments = "".join(tc.function.arguments or "" for tc in calls if tc.function is not None)
    assert json.loads(arguments) == {"city": "weather in Rome"}


async def test_thinking_reaches_the_client_apart_from_the_answer(oai: openai.AsyncOpenAI) -> None:
    reply = await oai.chat.completions.create(model="auto", messages=HELLO, reasoning_effort="low", max_completion_tokens=4000)
    message = reply.choices[0].message
    extra = message.model_extra or {}
    assert extra["reasoning_content"].startswith("The user wrote:")
    assert extra["thinking_blocks"][0]["signature"].startswith("sig_")
    assert "The user wrote" not in (message.content or "")


async def test_dropped_parameters_are_on_the_span_and_counted(oai: openai.AsyncOpenAI, mixed: Sidecar) -> None:
    await oai.chat.completions.create(model="auto", messages=HELLO, seed=7, logprobs=True, extra_body={"made_up_knob": 1})
    span = mixed.request_spans()[-1]
    assert span.attributes is not None
    assert set(span.attributes["modelroute.translation.dropped"]) == {"seed", "logprobs", "made_up_knob"}  # type: ignore[arg-type]
    metrics = mixed.services.metrics.render().decode()
    for label in ("seed", "logprobs", "other"):  # names a client made up are counted as "other"
        assert f'modelroute_translation_dropped_total{{parameter="{label}",provider="anthropic"}} 1.0' in metrics


@pytest.mark.parametrize("status", [429, 500, 529])
async def test_overloaded_and_server_errors_fall_back(oai: openai.AsyncOpenAI, fake_anthropic: FakeAnthropic,
                                                       fake_openai: FakeOpenAI, status: int) -> None:
    fake_anthropic.fail(status=status, times=1)
    raw = await oai.chat.completions.with_raw_response.create(model="auto", messages=HELLO)
    assert raw.headers["x-modelroute-model"] == "gpt-4o-mini"
    assert raw.parse().choices[0].message.content.startswith("[gpt-4o-mini]")  # type: ignore[union-attr]
    assert len(fake_anthropic.calls()) == 1 and len(fake_openai.calls()) == 1


async def test_overloaded_stream_before_the_first_event_falls_back(oai: openai.AsyncOpenAI, fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.fail(error_after=0, times=1)
    stream = await oai.chat.completions.with_raw_response.create(model="auto", messages=HELLO, stream=True)
    assert stream.headers["x-modelroute-model"] == "gpt-4o-mini"


async def test_client_errors_come_back_in_openai_format(oai: openai.AsyncOpenAI, fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.fail(status=400, times=1)
    with pytest.raises(openai.BadRequestError) as info:
        await oai.chat.completions.create(model="auto", messages=HELLO)
    assert info.value.status_code == 400
    assert isinstance(info.value.body, dict) and info.value.body["message"] == "fault 400"
    assert info.value.body["type"] == "invalid_request_error"
    with pytest.raises(openai.BadRequestError) as info:
        await oai.chat.completions.create(model="auto", messages=[{"role": "user", "content": [
            {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}}]}])  # type: ignore[list-item]
    assert "audio" in str(info.value)
