"""Golden translation tables: ``testdata/NN-name.input.json`` -> ``NN-name.expected.json``.

Each input names a translator (``openai_anthropic``: OpenAI client, Anthropic upstream;
``anthropic_openai``: the reverse; ``responses_chat``: Responses client, Chat Completions upstream;
``chat_responses``: the reverse) and holds a client request, and optionally the upstream's whole
answer, its stream (``[event, data]`` pairs for Anthropic and Responses events, bare OpenAI
chunks) and upstream error answers. ``responses_chat`` cases may also be ``lenient``, give the
items their ``item_reference`` ids resolve to (``items``), and end their stream with an upstream
failure (``fail``: an error kind) instead of its normal end. The expected file holds everything
the translator produced: the upstream request, the client's answer or stream events, the usage,
and what was dropped.

Regenerate after a deliberate change with ``python tests/providers/test_golden.py --regold`` and
review the diff.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from modelroute.policy import ModelSpec, Pricing
from modelroute.providers.anthropic_errors import upstream_error
from modelroute.providers.anthropic_openai import AnthropicToOpenAI
from modelroute.providers.base import ErrorKind, ProviderError
from modelroute.providers.chat_responses import ChatToResponses
from modelroute.providers.openai_anthropic import OpenAIToAnthropic
from modelroute.providers.responses_chat import ResponsesToChat
from modelroute.providers.translate import Translator

TESTDATA = Path(__file__).parent / "testdata"
CASES = sorted(p.name.removesuffix(".input.json") for p in TESTDATA.glob("*.input.json"))


def _translator(case: dict[str, Any]) -> Translator:
    if case["translator"] == "openai_anthropic":
        spec = {"name": "claude", "provider": "anthropic", "upstream_model": "claude-sonnet-4-5", "max_output_tokens": 8192,
                **case.get("model", {})}
        return OpenAIToAnthropic(ModelSpec(pricing=Pricing(3.0, 15.0), **spec), created=1700000000)
    if case["translator"] == "responses_chat":
        counter = iter(range(1, 1000))
        items = case.get("items", {})
        return ResponsesToChat(lenient=case.get("lenient", False), resolve=items.get, created=1700000000,
                               ids=lambda prefix: f"{prefix}_{next(counter):03d}")
    if case["translator"] == "chat_responses":
        return ChatToResponses("openai/gpt-5-pro", created=1700000000)
    assert case["translator"] == "anthropic_openai"
    return AnthropicToOpenAI()


def _error(exc: ProviderError) -> dict[str, Any]:
    return {"kind": exc.kind.value, "retryable": exc.retryable, "status": exc.status, "retry_after": exc.retry_after,
            "error": exc.error}


def run_case(case: dict[str, Any]) -> dict[str, Any]:
    t = _translator(case)
    out: dict[str, Any] = {}
    try:
        out["request"] = t.request(case["request"])
    except ProviderError as exc:
        out["request_error"] = _error(exc)
        return out
    if "response" in case:
        try:
            out["response"] = t.response(case["response"])
        except ProviderError as exc:
            out["response_error"] = _error(exc)
    if "stream" in case:
        events: list[Any] = []
        try:
            for item in case["stream"]:
                name, data = (item[0], item[1]) if isinstance(item, list) else (None, item)
                events.extend([n, d] if n is not None else d for n, d in t.event(name, data))
            if "fail" in case:
                assert isinstance(t, ResponsesToChat)
                events.extend([n, d] for n, d in t.failed(ErrorKind(case["fail"])))
            else:
                events.extend([n, d] if n is not None else d for n, d in t.end())
        except ProviderError as exc:
            out["stream_error"] = _error(exc)
        out["stream"] = events
    if "errors" in case:
        out["errors"] = [_error(upstream_error("anthropic", "claude", e["status"], e.get("headers", {}),
                                               json.dumps(e["body"]).encode())) for e in case["errors"]]
    out["usage"] = dataclasses.asdict(t.usage) if t.usage is not None else None
    out["dropped"] = t.dropped
    return out


@pytest.mark.parametrize("name", CASES)
def test_golden(name: str) -> None:
    case = json.loads((TESTDATA / f"{name}.input.json").read_text())
    expected = json.loads((TESTDATA / f"{name}.expected.json").read_text())
    assert run_case(case) == expected


def test_every_input_has_its_expected_file() -> None:
    assert CASES, "no golden cases found"
    missing = [name for name in CASES if not (TESTDATA / f"{name}.expected.json").exists()]
    assert not missing


if __name__ == "__main__" and "--regold" in sys.argv:
    for name in CASES:
        result = run_case(json.loads((TESTDATA / f"{name}.input.json").read_text()))
        (TESTDATA / f"{name}.expected.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
        print("wrote", name)
