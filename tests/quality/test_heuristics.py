"""Heuristic checks: each outcome on answers that hit it, and only the checks that apply."""

from __future__ import annotations

from typing import Any

import pytest

from modelroute.quality.config import quality_config
from modelroute.quality.heuristics import checks, run_checks
from modelroute.routing.answers import is_refusal, read_answer


def body(content: Any = "fine", finish: str = "stop", calls: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if calls:
        message["tool_calls"] = calls
    return {"choices": [{"index": 0, "message": message, "finish_reason": finish}]}


def call(arguments: str) -> dict[str, Any]:
    return {"id": "c1", "type": "function", "function": {"name": "f", "arguments": arguments}}


def test_a_good_answer_passes_the_checks_that_apply() -> None:
    assert dict(run_checks(body("Paris is the capital."))) == {"empty": True, "truncated": True, "refusal": True}


def test_each_failure_is_named() -> None:
    assert dict(run_checks(body("")))["empty"] is False
    assert dict(run_checks(body(None)))["empty"] is False
    assert dict(run_checks(body("half an ans", finish="length")))["truncated"] is False
    assert dict(run_checks(body("I'm sorry, but I can't help with that request.")))["refusal"] is False
    assert dict(run_checks(body('{"a": 1'), response_format="json_object"))["json"] is False
    assert dict(run_checks(body('```json\n{"a": 1}\n```'), response_format="json_schema"))["json"] is False
    assert dict(run_checks(body('{"a": 1}'), response_format="json_object"))["json"] is True
    calls = dict(run_checks(body(None, "tool_calls", [call('{"q": 1}'), call('{"q": ')])))
    assert calls == {"empty": True, "truncated": True, "tool_args": False}
    assert dict(run_checks(body(None, "tool_calls", [call("[1, 2]")])))["tool_args"] is False  # arguments must be an object


def test_refusal_needs_the_phrase_at_the_start_of_a_long_answer() -> None:
    long = "Here is the answer. " * 30 + "I can't help with the rest, sadly."
    assert not is_refusal(long)
    assert is_refusal("I can\u2019t help with that.")  # typographic apostrophe
    phrases = quality_config({"quality": {"refusalPhrases": ["Computer says no"]}}).refusals
    assert dict(run_checks(body("computer says no."), phrases=phrases))["refusal"] is False


SHAPES = [
    {"choices": [{"message": {"content": "Paris."}, "finish_reason": "stop"}]},
    {"choices": [{"message": {"content": "I can't help with that."}, "finish_reason": "stop"}]},
    {"choices": [{"message": {"content": "I’m unable to do that."}, "finish_reason": "stop"}]},
    {"choices": [{"message": {"content": "   "}, "finish_reason": "stop"}]},
    {"choices": [{"message": {"content": ""}, "finish_reason": "stop"}]},
    {"choices": [{"message": {"content": "Paris"}, "finish_reason": "length"}]},
    {"choices": [{"message": {"content": "Paris"}, "finish_reason": None}]},
    {"choices": [{"message": {"content": None, "refusal": "No."}, "finish_reason": "stop"}]},
    {"choices": [{"message": {"content": "Sure", "refusal": ""}, "finish_reason": "stop"}]},
    {"choices": [{"message": {"content": "x", "tool_calls": []}, "finish_reason": "stop"}]},
    {"choices": [{"message": {"content": "x", "tool_calls": [{"function": {"name": "f", "arguments": "{}"}}]},
                  "finish_reason": "stop"}]},
    {"choices": [{"message": {"content": [{"type": "text", "text": "Paris"}]}, "finish_reason": "stop"}]},
    {"choices": [{"message": {"content": '{"a": 1}'}, "finish_reason": "stop"}]},
    {"choices": []},
    {"choices": "nonsense"},
    {},
]


@pytest.mark.parametrize("fmt", ["text", "json_object"])
@pytest.mark.parametrize("answer", SHAPES, ids=range(len(SHAPES)))
def test_the_short_way_for_plain_prose_gives_what_the_full_reading_gives(answer: dict[str, Any], fmt: str) -> None:
    assert run_checks(answer, fmt) == checks(read_answer(answer), fmt)
