"""The Responses translators composed through chat (the hub) against the fake providers on real
sockets, the way the pipeline will run them: every upstream request must pass the fake's checks of
the real API (Claude's alternation and tool pairing, the Responses API's call/output pairing and
parameter list), and every answer must come back in the client's API as its SDK reads it.

* a Responses client served by a chat-only server (``ResponsesToChat``) and by Claude
  (``ResponsesToChat`` then ``OpenAIToAnthropic``), whole and streamed, with a function-tool round trip;
* a chat client served by a Responses-only model (``ChatToResponses``), and a Messages client too
  (``AnthropicToOpenAI`` then ``ChatToResponses``), whole and streamed, with a tool round trip.
"""

from __future__ import annotations

import json
from typing import Any, AsyncIterator

import aiohttp
import anthropic
import pytest
from openai import omit
from openai.lib.streaming.responses._responses import ResponseStreamState
from openai.types.chat import ChatCompletion
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from modelroute import _json
from modelroute.policy import ModelSpec, Pricing
from modelroute.providers.anthropic_openai import AnthropicToOpenAI
from modelroute.providers.chat_responses import ChatToResponses
from modelroute.providers.openai_anthropic import OpenAIToAnthropic
from modelroute.providers.responses_chat import ResponsesToChat
from modelroute.providers.sse import SSEParser
from modelroute.testing.fake_anthropic import FakeAnthropic
from modelroute.testing.fake_openai import FakeOpenAI

CLAUDE = ModelSpec("claude", "anthropic", "claude-sonnet-4-5", Pricing(3.0, 15.0), max_output_tokens=1024)
WEATHER = {"type": "function", "name": "get_weather", "description": "Weather for a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
EVENTS: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def _post(http: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> Any:
    """The answer: a JSON object, or the SSE events as (name, payload) pairs."""
    async with http.post(url, data=_json.dumps(body), headers={"Content-Type": "application/json",
                                                               "anthropic-version": "2023-06-01"}) as resp:
        raw = await resp.read()
        assert resp.status == 200, raw.decode()
        if not body.get("stream"):
            return json.loads(raw)
    parser = SSEParser()
    events = [(n.decode() if n else None, json.loads(d)) for n, d in [*parser.feed(raw), *parser.close()] if d != b"[DONE]"]
    return events


class _ResponsesVia:
    """A Responses client's request carried to a chat upstream, or through chat to Claude."""

    def __init__(self, claude: bool) -> None:
        self.outer = ResponsesToChat()
        self.inner = OpenAIToAnthropic(CLAUDE) if claude else None

    def request(self, body: dict[str, Any]) -> dict[str, Any]:
        chat = self.outer.request(body)
        return self.inner.request(chat) if self.inner is not None else chat

    def response(self, answer: dict[str, Any]) -> dict[str, Any]:
        return self.outer.response(self.inner.response(answer) if self.inner is not None else answer)

    def stream(self, events: list[tuple[str | None, dict[str, Any]]]) -> list[tuple[str | None, dict[str, Any]]]:
        chunks = events
        if self.inner is not None:
            chunks = [e for n, d in events for e in self.inner.event(n, d)] + self.inner.end()
        return [e for n, d in chunks for e in self.outer.event(n, d)] + self.outer.end()


def _read(events: list[tuple[str | None, dict[str, Any]]]) -> Any:
    """The final response as the SDK's ``responses.stream()`` helper gives it."""
    state: ResponseStreamState[Any] = ResponseStreamState(input_tools=omit, text_format=omit)
    handed = [e for _, payload in events for e in state.handle_event(EVENTS.validate_python(payload))]
    return handed[-1].response


@pytest.mark.parametrize("claude", [False, True], ids=["chat-server", "claude"])
async def test_a_responses_conversation_served_through_chat(http: aiohttp.ClientSession, claude: bool) -> None:
    async with FakeOpenAI(speaks=frozenset({"chat"})) as server, FakeAnthropic() as claude_server:
        url = f"{claude_server.url}/v1/messages" if claude else f"{server.base_url}/chat/completions"
        model = "claude-sonnet-4-5" if claude else "qwen3"
        first_body = {"model": model, "instructions": "Be brief.", "tools": [WEATHER], "input": "Paris"}
        via = _ResponsesVia(claude)
        first = via.response(await _post(http, url, via.request(first_body)))
        Response.model_validate(first)
        [call] = [item for item in first["output"] if item["type"] == "function_call"]
        assert json.loads(call["arguments"]) == {"city" if claude else "query": "Paris"}
        turn = [{"role": "user", "content": "Paris"}, *first["output"],
                {"type": "function_call_output", "call_id": call["call_id"], "output": "14C and rain"}]
        for stream in (False, True):
            via = _ResponsesVia(claude)
            answer = await _post(http, url, via.request({**first_body, "input": turn, "stream": stream}))
            response = _read(via.stream(answer)) if stream else Response.model_validate(via.response(answer))
            assert response.status == "completed"
            assert response.output_text == f"[{model}] the tool said: 14C and rain"
            assert response.usage is not None and response.usage.output_tokens > 0


@pytest.mark.parametrize("claude", [False, True], ids=["chat-server", "claude"])
async def test_structured_output_through_chat(http: aiohttp.ClientSession, claude: bool) -> None:
    async with FakeOpenAI(speaks=frozenset({"chat"})) as server, FakeAnthropic() as claude_server:
        url = f"{claude_server.url}/v1/messages" if claude else f"{server.base_url}/chat/completions"
        schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"], "additionalProperties": False}
        body = {"model": "m", "input": "Ada", "text": {"format": {"type": "json_schema", "name": "person", "schema": schema,
                                                                   "strict": True}}}
        via = _ResponsesVia(claude)
        response = Response.model_validate(via.response(await _post(http, url, via.request(body))))
        assert isinstance(json.loads(response.output_text), dict)


class _ChatVia:
    """A chat (or, through chat, a Messages) client's request carried to a Responses-only model."""

    def __init__(self, messages: bool) -> None:
        self.outer = AnthropicToOpenAI() if messages else None
        self.inner = ChatToResponses("openai/gpt-5-pro")

    def request(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.inner.request(self.outer.request(body) if self.outer is not None else body)

    def response(self, answer: dict[str, Any]) -> dict[str, Any]:
        chat = self.inner.response(answer)
        return self.outer.response(chat) if self.outer is not None else chat

    def stream(self, events: list[tuple[str | None, dict[str, Any]]]) -> list[tuple[str | None, dict[str, Any]]]:
        chunks = [e for n, d in events for e in self.inner.event(n, d)] + self.inner.end()
        if self.outer is None:
            return chunks
        return [e for n, d in chunks for e in self.outer.event(n, d)] + self.outer.end()


async def test_a_chat_conversation_served_by_a_responses_only_model(http: aiohttp.ClientSession) -> None:
    async with FakeOpenAI(speaks=frozenset({"responses"})) as server:
        url = f"{server.base_url}/responses"
        tools = [{"type": "function", "function": {"name": "get_weather", "parameters": WEATHER["parameters"]}}]
        messages: list[dict[str, Any]] = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Paris"}]
        via = _ChatVia(messages=False)
        first = ChatCompletion.model_validate(via.response(await _post(http, url, via.request(
            {"model": "gpt-5-pro", "messages": messages, "tools": tools, "max_tokens": 8}))))
        assert first.choices[0].finish_reason == "tool_calls" and "max_output_tokens.minimum" in via.inner.dropped
        call = first.choices[0].message.tool_calls[0]  # type: ignore[index]
        messages += [first.choices[0].message.model_dump(exclude_none=True),
                     {"role": "tool", "tool_call_id": call.id, "content": "14C"}]
        for stream in (False, True):
            via = _ChatVia(messages=False)
            answer = await _post(http, url, via.request({"model": "gpt-5-pro", "messages": messages, "tools": tools, "stream": stream}))
            if stream:
                chunks = [d for _, d in via.stream(answer)]
                text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
                assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] > 0
            else:
                text = ChatCompletion.model_validate(via.response(answer)).choices[0].message.content or ""
            assert text == "[gpt-5-pro] the tool said: 14C"


async def test_a_messages_conversation_served_by_a_responses_only_model(http: aiohttp.ClientSession) -> None:
    async with FakeOpenAI(speaks=frozenset({"responses"})) as server:
        url = f"{server.base_url}/responses"
        tools = [{"name": "get_weather", "description": "Weather", "input_schema": WEATHER["parameters"]}]
        messages: list[dict[str, Any]] = [{"role": "user", "content": "Paris"}]
        via = _ChatVia(messages=True)
        first = anthropic.types.Message.model_validate(via.response(await _post(http, url, via.request(
            {"model": "gpt-5-pro", "max_tokens": 200, "system": "Be brief.", "messages": messages, "tools": tools}))))
        assert first.stop_reason == "tool_use"
        use = first.content[-1]
        assert use.type == "tool_use" and use.input == {"city": "Paris"}
        messages += [{"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
                     {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "14C"}]}]
        for stream in (False, True):
            via = _ChatVia(messages=True)
            body = {"model": "gpt-5-pro", "max_tokens": 200, "messages": messages, "tools": tools, "stream": stream}
            answer = await _post(http, url, via.request(body))
            if stream:
                events = via.stream(answer)
                assert [n for n, _ in events][:2] == ["message_start", "ping"] and events[-1][0] == "message_stop"
                text = "".join(d["delta"].get("text", "") for n, d in events if n == "content_block_delta")
            else:
                reply = anthropic.types.Message.model_validate(via.response(answer))
                text = "".join(b.text for b in reply.content if b.type == "text")
            assert text == "[gpt-5-pro] the tool said: 14C"
