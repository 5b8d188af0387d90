"""The Responses translators checked against the ``openai`` SDK itself, on every golden case.

Golden files pin what the translators write; these tests check that what they write is what the
real SDK reads: every event validates as the SDK's ``ResponseStreamEvent`` and feeds its
``ResponseStreamState`` (the ``responses.stream()`` helper) to the same final response; every
``response`` validates as ``Response``; every chat chunk feeds ``ChatCompletionStreamState`` (the
``chat.completions.stream()`` helper). And they check the two directions against each other: a
stream and the whole answer give the same output, a chat answer carried to the Responses API and
back is the answer it was (text, refusal, reasoning, tool calls with their arguments, finish
reason, usage), streamed or whole; a Responses request a chat request became passes the fake
Responses API's checks.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai import omit
from openai.lib.streaming.responses._responses import ResponseStreamState
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from modelroute.providers.base import ErrorKind
from modelroute.providers.chat_responses import ChatToResponses
from modelroute.providers.responses_chat import ResponsesToChat
from modelroute.testing.fake_openai_responses_rules import check
from tests.providers.test_golden import run_case

TESTDATA = Path(__file__).parent / "testdata"
EVENTS: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)


def _cases(translator: str, key: str, completed: bool = False) -> list[str]:
    """Golden cases of ``translator`` holding ``key``; ``completed``: only streams that end normally
    with something in them (a failed stream has no whole answer to compare with)."""
    names = []
    for path in sorted(TESTDATA.glob("*.input.json")):
        case = json.loads(path.read_text())
        if case["translator"] != translator or key not in case:
            continue
        if completed and ("fail" in case or not case.get("stream")):
            continue
        names.append(path.name.removesuffix(".input.json"))
    return names


def _case(name: str) -> dict[str, Any]:
    return dict(json.loads((TESTDATA / f"{name}.input.json").read_text()))


def _responses_events(case: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    t = ResponsesToChat(created=1700000000)
    t.request(case["request"])
    events = [e for chunk in case["stream"] for e in t.event(None, chunk)]
    events += t.failed(ErrorKind(case["fail"])) if "fail" in case else t.end()
    return [(str(n), d) for n, d in events]


def _sdk_stream(events: list[tuple[str, dict[str, Any]]]) -> list[Any]:
    """The events as the SDK's ``responses.stream()`` helper hands them to an app."""
    state: ResponseStreamState[Any] = ResponseStreamState(input_tools=omit, text_format=omit)
    out = []
    for name, payload in events:
        assert payload["type"] == name
        out.extend(state.handle_event(EVENTS.validate_python(payload)))
    return out


def _without_ids(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_ids(v) for k, v in value.items() if k != "id"}
    if isinstance(value, list):
        return [_without_ids(v) for v in value]
    return value


def _assembled(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    """Chat chunks as the SDK's ``chat.completions.stream()`` helper assembles them."""
    state: ChatCompletionStreamState[Any] = ChatCompletionStreamState()
    for chunk in chunks:
        state.handle_chunk(ChatCompletionChunk.model_validate(chunk))
    return state.current_completion_snapshot.model_dump(mode="json", exclude_none=True)


@pytest.mark.parametrize("name", _cases("responses_chat", "stream"))
def test_responses_events_are_what_the_sdk_reads(name: str) -> None:
    events = _responses_events(_case(name))
    assert [d["sequence_number"] for _, d in events] == list(range(len(events)))
    handed = _sdk_stream(events)
    terminal = handed[-1]
    assert terminal.type in ("response.completed", "response.incomplete", "response.failed")
    assert terminal.response.model_dump(mode="json", exclude_none=True) == Response.model_validate(
        events[-1][1]["response"]).model_dump(mode="json", exclude_none=True)
    texts = "".join(e.delta for e in handed if e.type == "response.output_text.delta")
    final = "".join(c.text for item in terminal.response.output if item.type == "message"
                    for c in item.content if c.type == "output_text")
    assert texts == final


@pytest.mark.parametrize("name", _cases("responses_chat", "stream", completed=True))
def test_a_stream_and_the_whole_answer_give_the_same_output(name: str) -> None:
    case = _case(name)
    streamed = _responses_events(case)[-1][1]["response"]
    t = ResponsesToChat(created=1700000000)
    t.request(case["request"])
    whole = t.response(_assembled(case["stream"]))
    assert _without_ids(whole["output"]) == _without_ids(streamed["output"])
    assert (whole["status"], whole["incomplete_details"], whole["usage"]) == (
        streamed["status"], streamed["incomplete_details"], streamed["usage"])


@pytest.mark.parametrize("name", _cases("responses_chat", "response"))
def test_whole_responses_validate_and_come_back_as_the_chat_answer(name: str) -> None:
    case = _case(name)
    response = run_case(case)["response"]
    Response.model_validate(response)
    back = ChatToResponses(created=1700000000).response(response)
    ChatCompletion.model_validate(back)
    sent = case["response"]["choices"][0]
    message, original = back["choices"][0]["message"], sent["message"]
    assert message.get("content") == (original.get("content") or None)
    assert message.get("refusal") == original.get("refusal")
    assert message.get("reasoning_content") == original.get("reasoning_content")
    assert message.get("tool_calls") == original.get("tool_calls")
    assert back["choices"][0]["finish_reason"] == sent["finish_reason"]
    assert back["usage"]["prompt_tokens"] == case["response"]["usage"]["prompt_tokens"]
    assert back["usage"]["completion_tokens"] == case["response"]["usage"]["completion_tokens"]


@pytest.mark.parametrize("name", _cases("responses_chat", "stream", completed=True))
def test_a_chat_stream_carried_there_and_back_is_the_same_answer(name: str) -> None:
    case = _case(name)
    reader = ChatToResponses(created=1700000000)
    chunks = [c for n, d in _responses_events(case) for _, c in reader.event(n, d)]
    again, original = _assembled(chunks), _assembled(case["stream"])
    for key in ("content", "refusal", "tool_calls", "reasoning_content"):
        assert again["choices"][0]["message"].get(key) == original["choices"][0]["message"].get(key), key
    assert again["choices"][0]["finish_reason"] == original["choices"][0]["finish_reason"]
    assert again["usage"] == {**original["usage"], **again["usage"]}


@pytest.mark.parametrize("name", _cases("chat_responses", "stream"))
def test_chat_chunks_from_responses_events_are_what_the_sdk_reads(name: str) -> None:
    out = run_case(_case(name))
    assembled = _assembled(out["stream"])
    if "stream_error" not in out:
        assert assembled["choices"][0]["finish_reason"] in ("stop", "tool_calls", "length", "content_filter")
        assert out["stream"][-1]["choices"] == [] and out["stream"][-1]["usage"]["total_tokens"] > 0


@pytest.mark.parametrize("name", _cases("chat_responses", "request"))
def test_responses_requests_pass_the_api_checks(name: str) -> None:
    out = run_case(_case(name))
    if "request_error" in out:
        assert out["request_error"]["error"]["code"] == "unsupported_content"
        return
    assert check({**out["request"], "model": "gpt-5-pro"}, []) is None
    if "response" in out:
        ChatCompletion.model_validate(out["response"])


def test_chat_tool_calls_become_function_calls_with_their_outputs() -> None:
    """The Responses API refuses a function call without its output and an output without its
    call: the items the translation writes keep every pair, in order."""
    t = ChatToResponses()
    body = t.request({"model": "m", "messages": [
        {"role": "user", "content": "a"},
        {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "x"}]})
    assert check(body, []) is None
    assert check({**body, "input": body["input"][:2]}, []) is not None  # the output left out: refused
