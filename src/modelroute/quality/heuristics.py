"""Cheap heuristic checks on an answer: microseconds each, run on every response off the hot path.

Each check that applies to an answer yields ``(check, passed)``:

- ``empty``: the answer has neither text nor tool calls.
- ``truncated``: ``finish_reason`` is ``length`` (the model ran out of tokens).
- ``refusal``: the text starts with, or is mostly, a refusal phrase ("I can't help with that").
- ``json``: JSON was asked for (``response_format`` json_object / json_schema) and the text is not JSON.
- ``tool_args``: a tool call's arguments are not a JSON object.

Checks that do not apply (``json`` on a text request, ``tool_args`` without tool calls) are left out,
so a pass rate is over the answers a check could judge. The answer is read, and a refusal
recognised, by :mod:`modelroute.routing.answers`, as the cascade strategy does.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from modelroute.routing.answers import REFUSAL_PHRASES, Answer, Refusals, compiled, read_answer

CHECKS = ("empty", "truncated", "refusal", "json", "tool_args")


def plain_prose(answer: Mapping[str, Any], response_format: str = "text") -> str | None:
    """The text of the usual answer: one finished (``stop``) message of non-blank string content,
    no tool calls, no declared refusal, no JSON asked for; None for any other. Its checks are
    :func:`check_prose`'s."""
    if response_format in ("json_object", "json_schema"):
        return None
    choices = answer.get("choices")
    if type(choices) is not list or not choices or type(choices[0]) is not dict:
        return None
    choice = choices[0]
    message = choice.get("message")
    if choice.get("finish_reason") != "stop" or type(message) is not dict:
        return None
    content = message.get("content")
    if type(content) is not str or not content.strip() or message.get("tool_calls") or message.get("refusal") is not None:
        return None
    return content


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
    fn = call.get("function")
    if not isinstance(fn, Mapping):
        return False
    try:
        value = json.loads(fn.get("arguments") or "")
    except (ValueError, TypeError):
        return False
    return isinstance(value, dict)


#: The results of the usual answer: prose, finished, not empty; with and without a refusal phrase.
_PROSE_OK = (("empty", True), ("truncated", True), ("refusal", True))
_PROSE_REFUSED = (("empty", True), ("truncated", True), ("refusal", False))


def run_checks(answer: Mapping[str, Any], response_format: str = "text",
               phrases: Refusals | Iterable[str] = REFUSAL_PHRASES) -> tuple[tuple[str, bool], ...]:
    """Every applicable check on ``answer`` and whether it passed (``phrases``: the refusal
    phrases, best compiled once: :class:`Refusals`)."""
    refusals = compiled(phrases)
    prose = plain_prose(answer, response_format)
    if prose is not None:  # the usual answer, read the short way: the same results as checks()
        return check_prose(prose, refusals)
    return checks(read_answer(answer), response_format, refusals)


def check_prose(text: str, refusals: Refusals) -> tuple[tuple[str, bool], ...]:
    """The checks of an answer that :func:`plain_prose` read."""
    return _PROSE_REFUSED if refusals.found(text) else _PROSE_OK


def checks(read: Answer, response_format: str = "text",
           phrases: Refusals | Iterable[str] = REFUSAL_PHRASES) -> tuple[tuple[str, bool], ...]:
    """Every applicable check on an answer already read."""
    found = compiled(phrases).found
    text, calls, declined = read.text, read.tool_calls, read.refusal is not None
    empty = ("empty", bool(calls) or declined or bool(text.strip()))
    truncated = ("truncated", read.finish_reason != "length")
    refusal = ("refusal", not declined and not found(text)) if text or declined else None
    if not calls and response_format not in ("json_object", "json_schema"):  # the common case: prose
        return (empty, truncated) if refusal is None else (empty, truncated, refusal)
    out = [empty, truncated] if refusal is None else [empty, truncated, refusal]
    if not calls:
        out.append(("json", _json_ok(text)))
    else:
        out.append(("tool_args", all(_args_ok(c) for c in calls)))
    return tuple(out)
