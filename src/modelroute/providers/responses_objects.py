"""The OpenAI Responses API's objects, as the translators that read or write them need them.

Shapes follow OpenAI's API reference (https://platform.openai.com/docs/api-reference/responses,
``/responses/object`` and ``/responses-streaming``) and the ``openai`` SDK's generated types
(``openai/types/responses/response.py``, ``response_usage.py``, ``response_output_message.py``,
``response_function_tool_call.py``, ``response_reasoning_item.py``), checked against recorded
answers of the real API: every field of a ``response`` object is present (null when unset), as
the API writes it; ``output_text`` is an SDK convenience and never on the wire.

Usage, both ways (the same rules as chat <-> messages, issue #21):

========================================  ============================================
Chat Completions ``usage``                Responses ``usage``
========================================  ============================================
``prompt_tokens``                         ``input_tokens``
``prompt_tokens_details.cached_tokens``   ``input_tokens_details.cached_tokens``
``prompt_tokens_details.cache_write_tokens``  ``input_tokens_details.cache_write_tokens``
``completion_tokens``                     ``output_tokens``
``completion_tokens_details.reasoning_tokens``  ``output_tokens_details.reasoning_tokens``
========================================  ============================================

``cache_creation_tokens`` (the key :mod:`openai_anthropic` wrote before issue #21) is read as a
cache write too, so a chat answer composed from Claude's is costed the same either way.
"""

from __future__ import annotations

import secrets
from typing import Any, Callable, Mapping

from modelroute.providers.base import Usage
from modelroute.providers.translate import obj

#: Makes an id with a prefix (``resp``, ``msg``, ``fc``, ``rs``); tests pass a counter.
IdMaker = Callable[[str], str]


def new_id(prefix: str) -> str:
    """An id shaped like OpenAI's (``resp_`` then 48 hex digits)."""
    return f"{prefix}_{secrets.token_hex(24)}"


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _cache_write(details: Mapping[str, Any]) -> int:
    return _int(details.get("cache_write_tokens")) or _int(details.get("cache_creation_tokens"))


def responses_usage(chat: Any) -> dict[str, Any] | None:
    """Chat Completions usage -> Responses usage (None stays None)."""
    if not isinstance(chat, dict):
        return None
    prompt, completion = obj(chat.get("prompt_tokens_details")), obj(chat.get("completion_tokens_details"))
    inputs, outputs = _int(chat.get("prompt_tokens")), _int(chat.get("completion_tokens"))
    return {
        "input_tokens": inputs,
        "input_tokens_details": {"cached_tokens": _int(prompt.get("cached_tokens")), "cache_write_tokens": _cache_write(prompt)},
        "output_tokens": outputs,
        "output_tokens_details": {"reasoning_tokens": _int(completion.get("reasoning_tokens"))},
        "total_tokens": _int(chat.get("total_tokens")) or inputs + outputs,
    }


def chat_usage(usage: Any) -> dict[str, Any] | None:
    """Responses usage -> Chat Completions usage (None stays None)."""
    if not isinstance(usage, dict):
        return None
    inputs, outputs = obj(usage.get("input_tokens_details")), obj(usage.get("output_tokens_details"))
    prompt, completion = _int(usage.get("input_tokens")), _int(usage.get("output_tokens"))
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": _int(usage.get("total_tokens")) or prompt + completion,
        "prompt_tokens_details": {"cached_tokens": _int(inputs.get("cached_tokens")), "cache_write_tokens": _cache_write(inputs)},
        "completion_tokens_details": {"reasoning_tokens": _int(outputs.get("reasoning_tokens"))},
    }


def usage_of(usage: Any) -> Usage | None:
    """The sidecar's :class:`Usage` for a Responses usage object."""
    if not isinstance(usage, dict):
        return None
    inputs, outputs = obj(usage.get("input_tokens_details")), obj(usage.get("output_tokens_details"))
    return Usage(input_tokens=_int(usage.get("input_tokens")), output_tokens=_int(usage.get("output_tokens")),
                 cached_input_tokens=_int(inputs.get("cached_tokens")), cache_write_tokens=_cache_write(inputs),
                 reasoning_tokens=_int(outputs.get("reasoning_tokens")))


#: Request parameters a ``response`` object repeats, with the value it shows when unset.
ECHOED: dict[str, Any] = {
    "background": False, "instructions": None, "max_output_tokens": None, "max_tool_calls": None,
    "parallel_tool_calls": True, "previous_response_id": None, "prompt_cache_key": None,
    "reasoning": {"effort": None, "summary": None}, "safety_identifier": None, "service_tier": "default",
    "store": True, "temperature": 1.0, "text": {"format": {"type": "text"}, "verbosity": "medium"},
    "tool_choice": "auto", "tools": [], "top_logprobs": 0, "top_p": 1.0, "truncation": "disabled",
    "user": None, "metadata": {},
}

#: Finish reason of a chat answer -> (response status, incomplete_details.reason).
STATUS_OF_FINISH: dict[str, tuple[str, str | None]] = {
    "stop": ("completed", None), "tool_calls": ("completed", None), "function_call": ("completed", None),
    "length": ("incomplete", "max_output_tokens"), "content_filter": ("incomplete", "content_filter"),
}


def response_object(request: Mapping[str, Any], *, id: str, model: Any, created_at: int, status: str,
                    output: list[dict[str, Any]], usage: dict[str, Any] | None,
                    incomplete: str | None = None, error: dict[str, Any] | None = None) -> dict[str, Any]:
    """A whole ``response`` object: the answer, and the request's parameters as the API echoes them."""
    out: dict[str, Any] = {"id": id, "object": "response", "created_at": created_at, "status": status,
                           "error": error, "incomplete_details": {"reason": incomplete} if incomplete else None}
    for key, default in ECHOED.items():
        value = request.get(key)
        out[key] = default if value is None else value
    text = obj(request.get("text"))
    if text:
        out["text"] = {**ECHOED["text"], **text}
    reasoning = obj(request.get("reasoning"))
    if reasoning:
        out["reasoning"] = {**ECHOED["reasoning"], **reasoning}
    out.update(model=model, output=output, usage=usage)
    if status == "completed":
        out["completed_at"] = created_at
    return out


def message_item(id: str, status: str, parts: list[dict[str, Any]]) -> dict[str, Any]:
    return {"id": id, "type": "message", "status": status, "content": parts, "role": "assistant"}


def text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "annotations": [], "logprobs": [], "text": text}


def refusal_part(text: str) -> dict[str, Any]:
    return {"type": "refusal", "refusal": text}


def function_call_item(id: str, status: str, call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {"id": id, "type": "function_call", "status": status, "arguments": arguments, "call_id": call_id, "name": name}


def reasoning_item(id: str, status: str, text: str) -> dict[str, Any]:
    """Reasoning text an OpenAI-compatible upstream showed (``reasoning_content``): a reasoning
    item with ``reasoning_text`` content, as open-weight models served by the Responses API give it."""
    return {"id": id, "type": "reasoning", "status": status, "summary": [],
            "content": [{"type": "reasoning_text", "text": text}], "encrypted_content": None}
