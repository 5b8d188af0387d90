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

from modelroute.routing.answers import REFUSAL_PHRASES, is_refusal, read_answer

CHECKS = ("empty", "truncated", "refusal", "json", "tool_args")


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
               phrases: Iterable[str] = REFUSAL_PHRASES) -> tuple[tuple[str, bool], ...]:
    """Every applicable check on ``answer`` and whether it passed."""
    read = read_answer(answer)
    text, calls, declined = read.text, read.tool_calls, read.refusal is not None
    empty = ("empty", bool(calls) or declined or bool(text.strip()))
    truncated = ("truncated", read.finish_reason != "length")
    refusal = ("refusal", not declined and not is_refusal(text, phrases)) if text or declined else None
    if not calls and response_format not in ("json_object", "json_schema"):  # the common case: prose
        return (empty, truncated) if refusal is None else (empty, truncated, refusal)
    out = [empty, truncated] if refusal is None else [empty, truncated, refusal]
    if not calls:
        out.append(("json", _json_ok(text)))
    else:
        out.append(("tool_args", all(_args_ok(c) for c in calls)))
    return tuple(out)
