"""One reading of an answer, one refusal detector: the cascade's checks and the quality monitor's
must agree on every answer, from the well-formed to the malformed."""

from __future__ import annotations

from typing import Any

import pytest

from modelroute.quality.config import quality_config
from modelroute.quality.heuristics import run_checks
from modelroute.quality.hook import _answer_text
from modelroute.routing import Router
from modelroute.routing.answers import REFUSAL_PHRASES, Answer, is_refusal, read_answer, refusal_phrase
from tests.routing.strategies.strategy_support import policy, view

#: The two lists this module replaced: the monitor's and the cascade's. Each phrase must still count.
MONITOR_PHRASES = (
    "i can't help with", "i cannot help with", "i can't assist with", "i cannot assist with",
    "i'm sorry, but i can't", "i'm sorry, but i cannot", "i am sorry, but i cannot", "i'm unable to help",
    "i am unable to help", "i'm not able to help", "i won't be able to help", "i can't comply", "i cannot comply",
    "as an ai language model, i cannot", "i must decline",
)
CASCADE_PHRASES = (
    "i'm sorry, but i can't", "i am sorry, but i can't", "i'm sorry, but i cannot", "i cannot help with",
    "i can't help with", "i can't assist", "i cannot assist", "i am unable to", "i'm unable to",
    "as an ai language model", "i won't be able to", "i cannot provide", "i can't provide",
)
LONG_ANSWER = "Here is the answer, step by step. " * 10  # 340 characters


def body(content: Any, finish: Any = "stop", calls: Any = None, **choice: Any) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if calls is not None:
        message["tool_calls"] = calls
    return {"choices": [{"index": 0, "message": message, "finish_reason": finish, **choice}]}


def call(name: str = "f", arguments: str = '{"q": 1}') -> dict[str, Any]:
    return {"id": "c1", "type": "function", "function": {"name": name, "arguments": arguments}}


async def cascade_verdict(answer: dict[str, Any], checks: dict[str, Any] | None = None, **request: Any) -> str | None:
    """The cascade's reason to reject ``answer`` from its first model, or None when it accepts."""
    strategies = {"c": {"type": "cascade", "chain": ["cheap", "strong"], "checks": checks or {}}}
    decision = await Router(policy("http://127.0.0.1:9", strategies)).decide(view("question", **request))
    assert decision.reviewer is not None
    review = await decision.reviewer.review(view("question", **request), "cheap", answer)
    return None if review.accept else review.reason


def monitor(answer: dict[str, Any], **kwargs: Any) -> dict[str, bool]:
    return dict(run_checks(answer, **kwargs))


# -- one refusal detector ----------------------------------------------------------------------


@pytest.mark.parametrize("phrase", sorted(set(MONITOR_PHRASES + CASCADE_PHRASES)))
async def test_a_phrase_of_either_former_list_is_a_refusal_to_both(phrase: str) -> None:
    text = f"Well. {phrase.capitalize()} that request, sorry."
    assert monitor(body(text))["refusal"] is False
    reason = await cascade_verdict(body(text))
    assert reason is not None and reason.startswith("refusal (")


def test_the_one_list_is_lower_case_straight_and_without_duplicates() -> None:
    assert len(set(REFUSAL_PHRASES)) == len(REFUSAL_PHRASES)
    assert all(p == p.lower() and "\u2019" not in p for p in REFUSAL_PHRASES)


async def test_a_typographic_apostrophe_is_a_straight_one() -> None:
    text = "I\u2019m sorry, but I can\u2019t share that."
    assert is_refusal(text) and monitor(body(text))["refusal"] is False
    assert await cascade_verdict(body(text)) == "refusal (\"i'm sorry, but i can't\")"
    custom = {"refusal": ["I won\u2019t do"]}  # a configured phrase may carry one too
    assert await cascade_verdict(body("I won't do that."), custom) == "refusal (\"i won't do\")"


async def test_a_phrase_deep_in_a_long_answer_is_no_refusal() -> None:
    for text in (LONG_ANSWER + "I can't help with the rest.",
                 LONG_ANSWER[:130] + " I cannot provide the proof. " + LONG_ANSWER):  # past the opening
        assert not is_refusal(text) and monitor(body(text))["refusal"] is True
        assert await cascade_verdict(body(text)) is None
    opening = "I cannot provide a full proof, but here is a sketch. " + LONG_ANSWER
    assert is_refusal(opening) and monitor(body(opening))["refusal"] is False
    assert await cascade_verdict(body(opening)) == "refusal ('i cannot provide')"
    short = "The capital is Paris. " * 5 + "I cannot help with more."  # short: searched whole
    assert is_refusal(short) and await cascade_verdict(body(short)) is not None


async def test_the_cascade_may_turn_refusals_off_or_bring_its_own() -> None:
    refusal = body("I'm unable to do that.")
    assert await cascade_verdict(refusal, {"refusal": False}) is None
    assert await cascade_verdict(refusal, {"refusal": ["computer says no"]}) is None
    assert await cascade_verdict(body("Computer says no."), {"refusal": ["Computer says NO"]}) is not None
    assert refusal_phrase("I'm unable to do that.", ()) is None  # no phrase: nothing is a refusal
    extra = quality_config({"quality": {"refusalPhrases": ["Computer says no"]}}).refusals
    assert monitor(body("computer says no."), phrases=extra)["refusal"] is False
    assert monitor(refusal, phrases=extra)["refusal"] is False  # the extra phrases add to the list


# -- one reading of an answer ------------------------------------------------------------------


async def test_content_parts_are_the_text_parts_joined() -> None:
    parts = [{"type": "text", "text": "I'm sorry, "}, {"type": "image_url", "image_url": {"url": "x"}}, "junk",
             {"type": "text", "text": None}, {"type": "text", "text": "but I can't do that."}]
    assert read_answer(body(parts)).text == "I'm sorry, but I can't do that."
    assert monitor(body(parts))["refusal"] is False
    assert await cascade_verdict(body(parts)) == "refusal (\"i'm sorry, but i can't\")"
    json_parts = [{"type": "text", "text": '{"a": "b'}, {"type": "text", "text": 'c"}'}]
    assert monitor(body(json_parts), response_format="json_object")["json"] is True
    assert await cascade_verdict(body(json_parts), response_format={"type": "json_object"}) is None


@pytest.mark.parametrize("answer", [
    {}, {"choices": []}, {"choices": None}, {"choices": ["junk"]}, {"choices": {"0": {}}},
    {"choices": [{"message": "junk"}]}, body(None), body(7), body("   "), body(None, calls=["junk"]),
])
async def test_a_missing_or_malformed_answer_is_empty_to_both(answer: dict[str, Any]) -> None:
    assert monitor(answer)["empty"] is False
    assert await cascade_verdict(answer) == "empty answer"


async def test_tool_calls_are_an_answer() -> None:
    answer = body(None, "tool_calls", [call(), "junk", call("g", '{"q": ')])
    read = read_answer(answer)
    assert read.text == "" and [c["function"]["name"] for c in read.tool_calls] == ["f", "g"]
    assert read.finish_reason == "tool_calls"
    assert monitor(answer) == {"empty": True, "truncated": True, "tool_args": False}
    assert await cascade_verdict(answer, response_format={"type": "json_object"}) is None  # no JSON text expected
    assert _answer_text(answer) == '\n[tool call f: {"q": 1}]\n[tool call g: {"q": ]'
    assert _answer_text(body("Hi", calls=[{"function": None}])) == "Hi\n[tool call None: None]"


async def test_logprobs_and_finish_reason() -> None:
    tokens = [{"logprob": -0.1}, {"logprob": None}, {"token": "t"}, {"logprob": True}, "junk", {"logprob": -3}]
    assert read_answer(body("x", logprobs={"content": tokens})).logprobs == (-0.1, -3.0)
    assert read_answer(body("x", logprobs={"content": []})).logprobs is None
    assert read_answer(body("x", logprobs="junk")).logprobs is None
    assert read_answer(body("x", finish=3)).finish_reason is None
    low = body("x", logprobs={"content": [{"logprob": -2.0}, {"logprob": None}]})  # None is skipped, not a crash
    assert "logprob -2.000" in (await cascade_verdict(low, {"logprobs": {"threshold": -0.5}}) or "")
    assert read_answer({}) == Answer()


@pytest.mark.parametrize("message", [
    {"role": "assistant", "content": None, "refusal": "I can not share that."},
    {"role": "assistant", "content": [{"type": "refusal", "refusal": "Not something I will do."}]},
])
async def test_a_refusal_the_model_declares_is_a_refusal_to_both(message: dict[str, Any]) -> None:
    """OpenAI's structured refusals: in ``message.refusal`` or a content part, in words no phrase knows."""
    answer = {"choices": [{"index": 0, "message": message, "finish_reason": "stop"}]}
    assert read_answer(answer).refusal is not None
    assert monitor(answer) == {"empty": True, "truncated": True, "refusal": False}
    assert await cascade_verdict(answer) == "refusal (declared by the model)"
    assert await cascade_verdict(answer, {"refusal": False}) is None  # the check turned off


async def test_an_empty_refusal_field_is_no_refusal() -> None:
    answer = body("Paris.")
    answer["choices"][0]["message"]["refusal"] = None
    assert read_answer(answer).refusal is None
    assert monitor(answer)["refusal"] is True and await cascade_verdict(answer) is None


@pytest.mark.parametrize("seed", range(4))
def test_the_trie_finds_a_refusal_exactly_where_the_phrase_list_does(seed: int) -> None:
    """``Refusals.found`` (the phrases' trie) against ``Refusals.phrase`` (plain alternation), on
    random texts made of pieces of the phrases, phrase lists with shared prefixes and phrases
    that are prefixes of others."""
    import random

    from modelroute.routing.answers import Refusals

    rng = random.Random(seed)
    words = ["i", "i'm", "can't", "cannot", "help", "with", "as", "an", "ai", "no", "\u2019", "sorry,", "but", "x"]
    lists = [REFUSAL_PHRASES, ("ab", "abc", "abd", "b"), ("i can", "i can't help", "i"),
             tuple(" ".join(rng.choice(words) for _ in range(rng.randint(1, 3))) for _ in range(6))]
    for phrases in lists:
        refusals = Refusals(phrases)
        for _ in range(400):
            text = " ".join(rng.choice(words) for _ in range(rng.randint(0, 60)))
            text = text.upper() if rng.random() < 0.2 else text
            assert refusals.found(text) == (refusals.phrase(text) is not None), (phrases, text)
    assert Refusals(("a+b", "(x")).found("so A+B then")  # phrases are literals, not patterns
    assert not Refusals(()).found("i can't help with that")


def test_a_stream_parsed_in_one_go_adds_up_as_one_parse_per_chunk() -> None:
    """``AnswerBuilder.from_chunks`` parses the payloads as one JSON array; payloads that are not
    one JSON value (garbage, ``1,2``, half an object) must leave it with what a parse per payload
    gives."""
    import json as stdlib_json
    import random

    from modelroute.routing.answers import AnswerBuilder

    def reference(chunks: list[bytes]) -> dict[str, Any]:
        builder = AnswerBuilder()
        for chunk in chunks:
            try:
                data = stdlib_json.loads(chunk)
            except ValueError:
                continue
            if isinstance(data, dict):
                builder.add(data)
        return builder.body()

    def delta(**fields: Any) -> bytes:
        return stdlib_json.dumps({"model": "m", "choices": [{"index": 0, "delta": fields, "finish_reason": None}]}).encode()

    good = [delta(role="assistant", content=""), delta(content="Hel"), delta(content="lo \u00e9\n"),
            delta(tool_calls=[{"index": 0, "id": "c1", "function": {"name": "f", "arguments": "{\"a\""}}]),
            delta(tool_calls=[{"index": 0, "function": {"arguments": ": 1}"}}]),
            b'{"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}',
            b'{"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}}']
    odd = [b"not json", b"1,2", b'{"choices": [', b"]}", b"[1", b"2]", b"", b"null", b'"text"', b'{"a": 1}, {"b": 2}',
           b'{"choices": [{"index": 0, "delta": {"content": "X"}}]}, {"model": "y"}']  # two values in one payload
    rng = random.Random(7)
    for _ in range(300):
        chunks = [rng.choice(good if rng.random() < 0.7 else odd) for _ in range(rng.randint(0, 12))]
        assert AnswerBuilder.from_chunks(chunks) == reference(chunks), chunks
    assert AnswerBuilder.from_chunks(good)["choices"][0]["message"]["content"] == "Hello \u00e9\n"


@pytest.mark.parametrize("seed", range(3))
def test_the_checks_read_a_long_stream_s_opening_and_end_as_they_read_it_whole(seed: int) -> None:
    """``AnswerBuilder.for_checks`` skips the middle of a long stream: every check but ``json``
    must give on it what it gives on the whole reassembled stream, refusals placed anywhere,
    whitespace at both ends, finish reasons early, late or twice, tool calls, odd payloads."""
    import json as stdlib_json
    import random

    from modelroute.routing.answers import AnswerBuilder

    rng = random.Random(seed)

    def chunk(content: str | None = None, finish: str | None = None, calls: bool = False) -> bytes:
        delta: dict[str, Any] = {} if content is None else {"content": content}
        if calls:
            delta["tool_calls"] = [{"index": 0, "id": "c", "function": {"name": "f", "arguments": "{}"}}]
        return stdlib_json.dumps({"model": "m", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}).encode()

    words = ["lorem", "ipsum", " ", "\n", "I'm unable to", "I CAN'T HELP WITH", "dolor", "   ", "é", "\u2019"]
    skipped = 0
    for _ in range(600):
        pieces = [" " * rng.randint(0, 400) if rng.random() < 0.1 else ""]
        pieces += ["".join(rng.choice(words) for _ in range(rng.randint(0, 12))) for _ in range(rng.randint(0, 90))]
        chunks = [chunk(p) for p in pieces]
        for _ in range(rng.randint(0, 2)):
            chunks.insert(rng.randint(0, len(chunks)), chunk(finish=rng.choice(["stop", "length", "content_filter"])))
        if rng.random() < 0.3:
            chunks.append(b'{"choices": [], "usage": {"completion_tokens": 5}}')
        if rng.random() < 0.1:
            chunks.insert(rng.randint(0, len(chunks)), b"not json")
        if rng.random() < 0.05:
            chunks.insert(rng.randint(0, len(chunks)), chunk(calls=True))
        whole = AnswerBuilder.from_chunks(chunks)
        part = AnswerBuilder.for_checks(chunks)
        assert run_checks(part) == run_checks(whole), chunks
        skipped += len(whole["choices"][0]["message"]["content"] or "") > len(part["choices"][0]["message"]["content"] or "")
    assert skipped > 100  # long streams were read in part
