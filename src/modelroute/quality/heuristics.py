"""Cheap heuristic checks on an answer: microseconds each, run on every response off the hot path.

Each check that applies to an answer yields ``(check, passed)``:

- ``empty``: the answer has neither text nor tool calls.
- ``truncated``: ``finish_reason`` is ``length`` (the model ran out of tokens).
- ``refusal``: the text starts with, or is mostly, a refusal phrase ("I can't help with that").
- ``json``: JSON was asked for (``response_format`` json_object / json_schema) and the text is not JSON.
- ``tool_args``: a tool call's arguments are not a JSON object.

Checks that do not apply (``json`` on a text request, ``tool_args`` without tool calls) are left out,
so a pass rate is over the answers a check could judge.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

CHECKS = ("empty", "truncated", "refusal", "json", "tool_args")

#: Lower-case phrases that mark a refusal when the answer opens with one (or is short and holds one).
REFUSAL_PHRASES = (
    "i can't help with",
    "i cannot help with",
    "i can't assist with",
    "i cannot assist with",
    "i'm sorry, but i can't",
    "i'm sorry, but i cannot",
    "i am sorry, but i cannot",
    "i'm unable to help",
    "i am unable to help",
    "i'm not able to help",
    "i won't be able to help",
    "i can't comply",
    "i cannot comply",
    "as an ai language model, i cannot",
    "i must decline",
)
#: Answers longer than this are judged a refusal only when they open with the phrase.
_SHORT = 300
_OPENING = 120


def answer_parts(answer: Mapping[str, Any]) -> tuple[str, list[Mapping[str, Any]], str | None]:
    """(text, tool calls, finish_reason) of the first choice of a ``chat.completion`` body."""
    choices = answer.get("choices") or []
    if not choices or not isinstance(choices[0], Mapping):
        return "", [], None
    choice = choices[0]
    message = choice.get("message") or {}
    content = message.get("content")
    if isinstance(content, list):  # content parts
        content = "".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping))
    calls = [c for c in message.get("tool_calls") or [] if isinstance(c, Mapping)]
    return str(content or ""), calls, choice.get("finish_reason")


@lru_cache(maxsize=32)
def _pattern(phrases: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("|".join(re.escape(p.lower()) for p in phrases))


def is_refusal(text: str, phrases: Iterable[str] = REFUSAL_PHRASES) -> bool:
    stripped = text.strip()
    if not stripped:
        return False
    window = (stripped if len(stripped) <= _SHORT else stripped[:_OPENING]).lower().replace("\u2019", "'")
    return _pattern(tuple(phrases)).search(window) is not None


def _json_ok(text: str) -> bool:
    stripped = text.strip()
    if stripped.startswith("```"):  # a fenced block: the models that do this still count as failing
        return False
    try:
        json.loads(stripped)
    except ValueError:
        return False
    return True


def _args_ok(call: Mapping[str, Any]) -> bool:
    fn = call.get("function") or {}
    try:
        value = json.loads(fn.get("arguments") or "")
    except (ValueError, TypeError):
        return False
    return isinstance(value, dict)


def run_checks(answer: Mapping[str, Any], response_format: str = "text",
               phrases: Iterable[str] = REFUSAL_PHRASES) -> list[tuple[str, bool]]:
    """Every applicable check on ``answer`` and whether it passed."""
    text, calls, finish = answer_parts(answer)
    out = [("empty", bool(calls) or bool(text.strip())), ("truncated", finish != "length")]
    if text:
        out.append(("refusal", not is_refusal(text, phrases)))
    if not calls and response_format in ("json_object", "json_schema"):
        out.append(("json", _json_ok(text)))
    if calls:
        out.append(("tool_args", all(_args_ok(c) for c in calls)))
    return out
