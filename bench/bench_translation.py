"""Micro-benchmark: what translation adds to one non-streaming request of about 2 KB.

``python bench/bench_translation.py [--budget-us 100]`` times, per request, both directions:

* ``openai->anthropic``: an OpenAI client served by Claude: request mapping, answer mapping, and
  serialising the translated answer (a pass-through answer would be sent as the upstream's bytes);
* ``anthropic->openai``: an Anthropic SDK client served by an OpenAI-compatible model, the same;
* ``responses->chat``: a Responses API client served by a Chat Completions model (the same
  conversation as Responses input items), the answer as a whole ``response`` object;
* ``chat->responses``: a chat client served by a Responses-only model, the answer read back as a
  ``chat.completion`` (also how any Responses answer is read "as chat").

and, for streams, the cost per upstream event. Reports the median of several runs in µs of this
thread's CPU time (``time.thread_time``: on a shared machine, time the thread waits for a core is
not translation's cost) and exits
non-zero when a non-streaming direction exceeds the budget (the issue's bar is 100 µs), with each
direction's ratio to ``openai->anthropic`` in the same run (on a busy machine the ratios hold
better than the absolute figures).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from typing import Any, Callable

from modelroute import _json
from modelroute.policy import ModelSpec, Pricing
from modelroute.providers.anthropic_openai import AnthropicToOpenAI
from modelroute.providers.chat_responses import ChatToResponses
from modelroute.providers.openai_anthropic import OpenAIToAnthropic
from modelroute.providers.responses_chat import ResponsesToChat

MODEL = ModelSpec("claude", "anthropic", "claude-sonnet-4-5", Pricing(3.0, 15.0), max_output_tokens=4096)
TOOL = {"type": "function", "function": {"name": "get_weather", "description": "Current weather for a city, in Celsius or Fahrenheit.",
                                         "parameters": {"type": "object", "properties": {
                                             "city": {"type": "string", "description": "City name"},
                                             "unit": {"type": "string", "enum": ["c", "f"]}}, "required": ["city"]}}}
OPENAI_REQUEST: dict[str, Any] = {
    "model": "auto", "temperature": 0.3, "max_tokens": 512, "user": "user-42", "tools": [TOOL], "tool_choice": "auto",
    "messages": [
        {"role": "system", "content": "You are a helpful travel assistant. Answer briefly and cite the tools you used. " * 5},
        {"role": "user", "content": "I am planning a trip to Paris and Rome next week. What should I pack? " * 4},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
            {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Rome\"}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "Paris: 14C, light rain expected on Tuesday and Wednesday."},
        {"role": "tool", "tool_call_id": "call_2", "content": "Rome: 21C, sunny all week with a light breeze."},
        {"role": "user", "content": [{"type": "text", "text": "Thanks. And what about shoes for walking all day in both cities? " * 3}]},
    ],
}
ANTHROPIC_ANSWER = {
    "id": "msg_01XFDUDYJgAACzvnptvVoYEL", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
    "content": [{"type": "text", "text": "Pack a light waterproof jacket for Paris and breathable layers for Rome. " * 3},
                {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris", "unit": "c"}}],
    "stop_reason": "tool_use", "stop_sequence": None,
    "usage": {"input_tokens": 420, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 128, "output_tokens": 96},
}
ANTHROPIC_REQUEST: dict[str, Any] = {
    "model": "auto", "max_tokens": 512, "temperature": 0.3, "system": OPENAI_REQUEST["messages"][0]["content"],
    "tools": [{"name": "get_weather", "description": TOOL["function"]["description"], "input_schema": TOOL["function"]["parameters"]}],
    "messages": [
        {"role": "user", "content": OPENAI_REQUEST["messages"][1]["content"]},
        {"role": "assistant", "content": [
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "toolu_2", "name": "get_weather", "input": {"city": "Rome"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": OPENAI_REQUEST["messages"][3]["content"]},
            {"type": "tool_result", "tool_use_id": "toolu_2", "content": OPENAI_REQUEST["messages"][4]["content"]},
            {"type": "text", "text": OPENAI_REQUEST["messages"][5]["content"][0]["text"]}]},
    ],
}
OPENAI_ANSWER = {
    "id": "chatcmpl-AbC123", "object": "chat.completion", "created": 1700000000, "model": "gpt-4o-mini-2024-07-18",
    "choices": [{"index": 0, "finish_reason": "tool_calls", "logprobs": None, "message": {
        "role": "assistant", "content": ANTHROPIC_ANSWER["content"][0]["text"],  # type: ignore[index]
        "tool_calls": [{"id": "call_9", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]}}],
    "usage": {"prompt_tokens": 548, "completion_tokens": 96, "total_tokens": 644, "prompt_tokens_details": {"cached_tokens": 128}},
}
RESPONSES_REQUEST: dict[str, Any] = {
    "model": "auto", "temperature": 0.3, "max_output_tokens": 512, "user": "user-42", "tool_choice": "auto", "store": True,
    "instructions": OPENAI_REQUEST["messages"][0]["content"],
    "tools": [{"type": "function", "name": "get_weather", "description": TOOL["function"]["description"],  # type: ignore[index]
               "parameters": TOOL["function"]["parameters"], "strict": False}],  # type: ignore[index]
    "input": [
        {"role": "user", "content": [{"type": "input_text", "text": OPENAI_REQUEST["messages"][1]["content"]}]},
        {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"},
        {"type": "function_call", "call_id": "call_2", "name": "get_weather", "arguments": "{\"city\":\"Rome\"}"},
        {"type": "function_call_output", "call_id": "call_1", "output": OPENAI_REQUEST["messages"][3]["content"]},
        {"type": "function_call_output", "call_id": "call_2", "output": OPENAI_REQUEST["messages"][4]["content"]},
        {"role": "user", "content": [{"type": "input_text", "text": OPENAI_REQUEST["messages"][5]["content"][0]["text"]}]},
    ],
}
#: OPENAI_ANSWER as a Responses-only model gives it.
RESPONSES_ANSWER = ResponsesToChat(response_id="resp_68b1", created=1700000000).response(OPENAI_ANSWER)
CHAT_DELTA = {"id": "chatcmpl-AbC123", "object": "chat.completion.chunk", "created": 1700000000, "model": "gpt-4o-mini",
              "choices": [{"index": 0, "delta": {"content": "Pack a light "}, "finish_reason": None}]}
STREAM = [("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Pack a light "}})]


def openai_to_anthropic() -> bytes:
    t = OpenAIToAnthropic(MODEL)
    t.request(OPENAI_REQUEST)
    return _json.dumps(t.response(ANTHROPIC_ANSWER))


def anthropic_to_openai() -> bytes:
    t = AnthropicToOpenAI()
    t.request(ANTHROPIC_REQUEST)
    return _json.dumps(t.response(OPENAI_ANSWER))


def responses_to_chat() -> bytes:
    t = ResponsesToChat()
    t.request(RESPONSES_REQUEST)
    return _json.dumps(t.response(OPENAI_ANSWER))


def chat_to_responses() -> bytes:
    t = ChatToResponses()
    t.request(OPENAI_REQUEST)
    return _json.dumps(t.response(RESPONSES_ANSWER))


def responses_stream_event() -> Callable[[], Any]:
    """A chat text delta as the Responses events it becomes (one ``response.output_text.delta``)."""
    t = ResponsesToChat()
    t.request({**RESPONSES_REQUEST, "stream": True})
    t.event(None, CHAT_DELTA)
    return lambda: [_json.dumps(p) for _, p in t.event(None, CHAT_DELTA)]


def chat_stream_event() -> Callable[[], Any]:
    """A Responses ``output_text.delta`` event as the chat chunk it becomes."""
    t = ChatToResponses()
    t.request({**OPENAI_REQUEST, "stream": True})
    t.event("response.created", {"type": "response.created", "sequence_number": 0, "response": RESPONSES_ANSWER})
    delta = {"type": "response.output_text.delta", "sequence_number": 3, "item_id": "msg_1", "output_index": 0,
             "content_index": 0, "delta": "Pack a light ", "logprobs": []}
    return lambda: [_json.dumps(p) for _, p in t.event("response.output_text.delta", delta)]


def stream_event() -> Callable[[], Any]:
    t = OpenAIToAnthropic(MODEL)
    t.request({**OPENAI_REQUEST, "stream": True})
    t.event("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})
    name, data = STREAM[0]
    return lambda: [_json.dumps(p) for _, p in t.event(name, data)]


def per_call_us(fn: Callable[[], Any], number: int, repeat: int) -> float:
    for _ in range(number // 10):
        fn()
    runs = []
    for _ in range(repeat):
        start = time.thread_time()
        for _ in range(number):
            fn()
        runs.append((time.thread_time() - start) / number * 1e6)
    return statistics.median(runs)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--budget-us", type=float, default=100.0)
    parser.add_argument("--number", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    sizes = {"openai->anthropic": len(json.dumps(OPENAI_REQUEST)), "anthropic->openai": len(json.dumps(ANTHROPIC_REQUEST)),
             "responses->chat": len(json.dumps(RESPONSES_REQUEST)), "chat->responses": len(json.dumps(OPENAI_REQUEST))}
    results = {"openai->anthropic": per_call_us(openai_to_anthropic, args.number, args.repeat),
               "anthropic->openai": per_call_us(anthropic_to_openai, args.number, args.repeat),
               "responses->chat": per_call_us(responses_to_chat, args.number, args.repeat),
               "chat->responses": per_call_us(chat_to_responses, args.number, args.repeat)}
    over = False
    base = results["openai->anthropic"]
    for name, us in results.items():
        flag = "ok" if us <= args.budget_us else "OVER BUDGET"
        over = over or us > args.budget_us
        print(f"{name:20s} request {sizes[name]:5d} B  {us:7.1f} µs per request (request + answer)"
              f"  x{us / base:.2f} of openai->anthropic  {flag}")
    streams = {"stream event": stream_event, "responses stream event": responses_stream_event,
               "chat stream event": chat_stream_event}
    for label, make in streams.items():
        print(f"{label:22s} {'':11s} {per_call_us(make(), args.number * 4, args.repeat):7.2f} µs per text delta")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
