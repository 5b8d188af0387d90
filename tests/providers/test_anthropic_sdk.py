"""The real Anthropic SDK against the sidecar's ``/v1/messages``: served natively by the fake
Anthropic provider, or translated to the fake OpenAI-compatible one (the ``premium`` route sends
``x-user-tier: premium`` to gpt-4o). Text, streams, tool use round trips, usage, errors, count_tokens."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import aiohttp
import anthropic
import pytest

from modelroute.testing.fake_anthropic import FakeAnthropic
from modelroute.testing.fake_openai import FakeOpenAI
from tests.support import ANTHROPIC_KEY
from tests.support import APP_KEY, Sidecar

TO_OPENAI = {"x-user-tier": "premium"}
NATIVE: dict[str, str] = {}
WEATHER = {"name": "get_weather", "description": "Weather for a city",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
BOTH = pytest.mark.parametrize(("headers", "served"), [(NATIVE, "claude-sonnet"), (TO_OPENAI, "gpt-4o")], ids=["native", "translated"])


@BOTH
async def test_text(claude: anthropic.AsyncAnthropic, headers: dict[str, str], served: str) -> None:
    raw = await claude.messages.with_raw_response.create(model="auto", max_tokens=200, system="Be brief.",
                                                         messages=[{"role": "user", "content": "hello router"}], extra_headers=headers)
    message = await raw.parse()
    assert raw.headers["x-modelroute-model"] == served and raw.headers["request-id"].startswith("req_")
    upstream = "claude-sonnet-4-5" if served == "claude-sonnet" else "gpt-4o"
    assert message.content[0].type == "text" and message.content[0].text == f"[{upstream}] you said: hello router"
    assert message.stop_reason == "end_turn" and message.usage.output_tokens > 0 and message.usage.input_tokens > 0


async def test_native_answer_passes_through_untouched(claude: anthropic.AsyncAnthropic, fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.cache_read_tokens, fake_anthropic.cache_creation_tokens = 3, 1
    raw = await claude.messages.with_raw_response.create(model="auto", max_tokens=200, messages=[{"role": "user", "content": "hello"}],
                                                         extra_headers={"anthropic-beta": "client-beta-1"})
    body = json.loads(raw.http_response.content)
    assert body["id"].startswith("msg_") and set(body["usage"]) == {"input_tokens", "cache_creation_input_tokens",
                                                                     "cache_read_input_tokens", "output_tokens"}
    sent = fake_anthropic.calls()[-1]
    headers = {k.lower(): v for k, v in sent.headers.items()}
    assert headers["x-api-key"] == ANTHROPIC_KEY and APP_KEY not in json.dumps(headers)
    assert headers["anthropic-beta"] == "client-beta-1"
    assert sent.body == {"model": "claude-sonnet-4-5", "max_tokens": 200, "messages": [{"role": "user", "content": "hello"}]}
    u = body["usage"]
    plain, cached, written = u["input_tokens"], u["cache_read_input_tokens"], u["cache_creation_input_tokens"]
    expected = (plain * Decimal(3) + cached * Decimal("0.3") + written * Decimal("3.75") + u["output_tokens"] * Decimal(15)) / 1_000_000
    assert (cached, written) == (3, 1) and Decimal(raw.headers["x-modelroute-cost-usd"]) == expected


@BOTH
async def test_streaming(claude: anthropic.AsyncAnthropic, mixed: Sidecar, headers: dict[str, str], served: str) -> None:
    async with claude.messages.stream(model="auto", max_tokens=200, messages=[{"role": "user", "content": "one two three"}],
                                      extra_headers=headers) as stream:
        kinds = [event.type async for event in stream]
        final = await stream.get_final_message()
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop" and "content_block_delta" in kinds
    upstream = "claude-sonnet-4-5" if served == "claude-sonnet" else "gpt-4o"
    assert final.content[0].type == "text" and final.content[0].text == f"[{upstream}] you said: one two three"
    assert final.stop_reason == "end_turn" and final.usage.output_tokens > 0 and final.usage.input_tokens > 0
    span = mixed.request_spans()[-1]
    assert span.attributes is not None and span.attributes["modelroute.model"] == served
    assert span.attributes["gen_ai.usage.output_tokens"] == final.usage.output_tokens


@BOTH
async def test_tool_use_round_trip(claude: anthropic.AsyncAnthropic, headers: dict[str, str], served: str) -> None:
    messages: list[Any] = [{"role": "user", "content": "weather in Paris"}]
    first = await claude.messages.create(model="auto", max_tokens=200, tools=[WEATHER], messages=messages, extra_headers=headers)
    assert first.stop_reason == "tool_use"
    use = next(b for b in first.content if b.type == "tool_use")
    assert use.name == "get_weather" and isinstance(use.input, dict) and use.input
    messages += [{"role": "assistant", "content": first.content},
                 {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "18C and sunny"}]}]
    second = await claude.messages.create(model="auto", max_tokens=200, tools=[WEATHER], messages=messages, extra_headers=headers)
    text = second.content[0].text if second.content[0].type == "text" else ""
    assert text.endswith("the tool said: 18C and sunny") and second.stop_reason == "end_turn"


@BOTH
async def test_streamed_tool_use(claude: anthropic.AsyncAnthropic, headers: dict[str, str], served: str) -> None:
    async with claude.messages.stream(model="auto", max_tokens=200, tools=[WEATHER],
                                      messages=[{"role": "user", "content": "weather in Rome"}], extra_headers=headers) as stream:
        final = await stream.get_final_message()
    use = next(b for b in final.content if b.type == "tool_use")
    assert use.name == "get_weather" and use.input in ({"city": "weather in Rome"}, {"query": "weather in Rome"})
    assert final.stop_reason == "tool_use"


async def test_translated_request_reaches_openai_in_its_shape(claude: anthropic.AsyncAnthropic, fake_openai: FakeOpenAI,
                                                              mixed: Sidecar) -> None:
    await claude.messages.create(model="auto", max_tokens=64, system="Be brief.", extra_body={"top_k": 5}, stop_sequences=["END"],
                                 messages=[{"role": "user", "content": "hi"}], extra_headers=TO_OPENAI)
    sent = fake_openai.calls()[-1]
    assert sent.body["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]
    assert sent.body["max_completion_tokens"] == 64 and sent.body["stop"] == ["END"] and "top_k" not in sent.body
    assert sent.headers.get("Authorization") != f"Bearer {APP_KEY}"
    span = mixed.request_spans()[-1]
    assert span.attributes is not None and list(span.attributes["modelroute.translation.dropped"]) == ["top_k"]  # type: ignore[arg-type]


async def test_errors_come_back_in_anthropic_format(claude: anthropic.AsyncAnthropic, fake_anthropic: FakeAnthropic,
                                                    fake_openai: FakeOpenAI) -> None:
    with pytest.raises(anthropic.NotFoundError) as missing:
        await claude.messages.create(model="no-such-model", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    assert missing.value.body["type"] == "error" and missing.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    fake_anthropic.fail(status=400, times=1)
    with pytest.raises(anthropic.BadRequestError) as bad:
        await claude.messages.create(model="auto", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    assert bad.value.body["error"] == {"type": "invalid_request_error", "message": "fault 400"}  # type: ignore[index]
    fake_anthropic.fail(status=529)
    fake_openai.fail(status=500)
    with pytest.raises(anthropic.InternalServerError) as down:
        await claude.messages.create(model="auto", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    assert down.value.status_code == 502 and down.value.body["error"]["type"] == "api_error"  # type: ignore[index]


async def test_overloaded_native_model_falls_back_to_openai(claude: anthropic.AsyncAnthropic, fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.fail(status=529, times=1)
    raw = await claude.messages.with_raw_response.create(model="auto", max_tokens=50, messages=[{"role": "user", "content": "hi"}])
    assert raw.headers["x-modelroute-model"] == "gpt-4o-mini"
    message = await raw.parse()
    assert message.content[0].type == "text" and message.content[0].text.startswith("[gpt-4o-mini]")


async def test_stream_breaking_after_the_first_event_ends_with_an_error_event(claude: anthropic.AsyncAnthropic,
                                                                              fake_openai: FakeOpenAI) -> None:
    fake_openai.fail(cut_after=3, times=1)
    with pytest.raises(anthropic.APIStatusError) as info:
        async with claude.messages.stream(model="auto", max_tokens=50, messages=[{"role": "user", "content": "one two three four"}],
                                          extra_headers=TO_OPENAI) as stream:
            async for _ in stream:
                pass
    assert "stream failed" in str(info.value)


async def test_bad_bodies_are_refused_in_anthropic_format(mixed: Sidecar) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(mixed.url + "/v1/messages", json={"model": "auto", "messages": [{"role": "user", "content": "x"}]}) as resp:
            assert resp.status == 400 and (await resp.json())["error"] == {"type": "invalid_request_error", "message": "max_tokens: Field required"}
        async with http.post(mixed.url + "/v1/messages", data=b"{not json") as resp:
            body = await resp.json()
            assert resp.status == 400 and body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
        async with http.post(mixed.url + "/v1/messages/count_tokens", json={"model": "auto"}) as resp:
            assert resp.status == 400 and (await resp.json())["type"] == "error"
        async with http.get(mixed.url + "/metrics") as resp:  # every refusal counted, count_tokens' too
            errors = [line for line in (await resp.text()).splitlines() if line.startswith("modelroute_errors_total{")]
        assert sum(float(line.rsplit(" ", 1)[1]) for line in errors) == 3, errors


async def test_count_tokens(claude: anthropic.AsyncAnthropic, fake_anthropic: FakeAnthropic, mixed: Sidecar) -> None:
    messages: list[Any] = [{"role": "user", "content": "count these words please"}]
    counted = await claude.messages.count_tokens(model="auto", messages=messages, system="Be brief.")
    sent = [r for r in fake_anthropic.requests if r.path == "/v1/messages/count_tokens"][-1]
    assert sent.body["model"] == "claude-sonnet-4-5" and counted.input_tokens > 0
    raw = await claude.messages.with_raw_response.count_tokens(model="gpt-4o", messages=messages)
    assert raw.headers["x-modelroute-model"] == "gpt-4o" and raw.headers["x-modelroute-estimate"] == "true"
    assert (await raw.parse()).input_tokens > 0


async def test_cascade_reviews_a_native_answer_and_escalates(make_sidecar: Any, fake_openai: FakeOpenAI,
                                                             fake_anthropic: FakeAnthropic) -> None:
    from tests.support import mixed_policy

    doc = mixed_policy(fake_openai.base_url, fake_anthropic.base_url)
    doc["spec"]["strategies"] = {"claude-first": {"type": "cascade", "chain": ["claude-sonnet", "gpt-4o"], "checks": {"minLength": 400}}}
    doc["spec"]["routes"] = [{"name": "cascade", "strategy": "claude-first"}]
    make_sidecar.environ["TEST_ANTHROPIC_KEY"] = ANTHROPIC_KEY
    sidecar = await make_sidecar(doc)
    async with anthropic.AsyncAnthropic(base_url=sidecar.url, api_key=APP_KEY, max_retries=0) as client:
        raw = await client.messages.with_raw_response.create(model="auto", max_tokens=100, messages=[{"role": "user", "content": "hi"}])
    message = await raw.parse()
    assert raw.headers["x-modelroute-model"] == "gpt-4o"
    assert message.content[0].type == "text" and message.content[0].text.startswith("[gpt-4o]")
    chain = sidecar.request_spans()[-1].attributes["modelroute.fallback_chain"]
    assert chain[0].startswith("claude-sonnet:rejected(") and chain[1] == "gpt-4o:ok"
    assert len(fake_anthropic.calls()) == 1


class _Recorder:
    """A request hook: refuses on a header, asks for streamed answers, records settled exchanges."""

    def __init__(self) -> None:
        self.seen: list[Any] = []

    async def admit(self, ex: Any) -> None:
        from modelroute.contract.errors import ClientError

        if ex.incoming_headers.get("x-refuse"):
            raise ClientError("refused by a hook", status=429, code="budget_exceeded", type="budget_exceeded")
        ex.collect_answer = True

    def skip(self, ex: Any, model: str) -> str | None:
        return None

    def settled(self, ex: Any) -> None:
        self.seen.append(ex)


async def test_hooks_admit_and_see_the_answer_in_openai_shape(make_sidecar: Any, fake_openai: FakeOpenAI,
                                                              fake_anthropic: FakeAnthropic) -> None:
    from tests.support import mixed_policy

    hook = _Recorder()
    make_sidecar.environ["TEST_ANTHROPIC_KEY"] = ANTHROPIC_KEY
    sidecar = await make_sidecar(mixed_policy(fake_openai.base_url, fake_anthropic.base_url), hooks=(hook,))
    texts = []
    async with anthropic.AsyncAnthropic(base_url=sidecar.url, api_key=APP_KEY, max_retries=0) as client:
        for headers in (NATIVE, TO_OPENAI):
            message = await client.messages.create(model="auto", max_tokens=50, messages=[{"role": "user", "content": "a b c"}],
                                                   extra_headers=headers)
            texts.append(message.content[0].text if message.content[0].type == "text" else "")
            async with client.messages.stream(model="auto", max_tokens=50, messages=[{"role": "user", "content": "a b c"}],
                                              extra_headers=headers) as stream:
                texts.append(await stream.get_final_text())
        with pytest.raises(anthropic.RateLimitError) as refused:
            await client.messages.create(model="auto", max_tokens=50, messages=[{"role": "user", "content": "x"}],
                                         extra_headers={"x-refuse": "1"})
    assert refused.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    answers = [ex.answer for ex in hook.seen[:4]]
    assert [a["choices"][0]["message"]["content"] for a in answers] == texts
    assert all(a["choices"][0]["finish_reason"] == "stop" and a["usage"]["completion_tokens"] > 0 for a in answers)
    assert len(hook.seen) == 5 and hook.seen[4].status == "error"


WEB_SEARCH_HISTORY = [
    {"role": "user", "content": "what is new?"},
    {"role": "assistant", "content": [
        {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "news"}},
        {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []},
        {"type": "text", "text": "nothing much"}]},
    {"role": "user", "content": "and now?"},
]


async def test_content_without_an_openai_equivalent_is_served_natively(claude: anthropic.AsyncAnthropic,
                                                                       fake_anthropic: FakeAnthropic) -> None:
    """Server tool blocks from an earlier turn: routing reads the request without them, and only
    Claude can serve it; where the route has no Anthropic model, the 400 names the reason."""
    raw = await claude.messages.with_raw_response.create(model="auto", max_tokens=200, messages=WEB_SEARCH_HISTORY)
    assert raw.headers["x-modelroute-model"] == "claude-sonnet"
    assert fake_anthropic.calls()[-1].body["messages"] == WEB_SEARCH_HISTORY  # untouched
    with pytest.raises(anthropic.BadRequestError) as info:  # the premium route has gpt-4o only
        await claude.messages.create(model="auto", max_tokens=200, messages=WEB_SEARCH_HISTORY, extra_headers=TO_OPENAI)
    assert "gpt-4o: assistant content block 'server_tool_use' has no OpenAI equivalent" in info.value.message
