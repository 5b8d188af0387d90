"""The request checks of the fake Responses API: what ``POST /v1/responses`` refuses with a 400.

Follows the create parameters of OpenAI's reference (https://platform.openai.com/docs/api-reference/responses/create)
and the SDK's ``response_create_params.py`` / ``response_input_item_param.py``, with OpenAI's error
wording (``Unknown parameter: 'messages'.``, ``Invalid value: ...``, ``No tool output found for
function call ...``) and its ``param`` paths (``input[2].content[0].type``), so a translation that
leaks a Chat Completions parameter, writes an item or a content part of the wrong kind, or loses a
tool call or its output fails loudly instead of being answered.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable

#: Top-level parameters of ``POST /v1/responses``.
PARAMS = frozenset({
    "model", "input", "instructions", "tools", "tool_choice", "parallel_tool_calls", "text", "reasoning",
    "max_output_tokens", "max_tool_calls", "temperature", "top_p", "top_logprobs", "metadata", "user", "safety_identifier",
    "prompt_cache_key", "prompt_cache_retention", "prompt_cache_options", "service_tier", "store", "stream", "stream_options",
    "previous_response_id", "conversation", "include", "truncation", "background", "prompt", "context_management",
    "moderation", "image",
})
ITEM_TYPES = frozenset({
    "message", "function_call", "function_call_output", "reasoning", "item_reference", "web_search_call",
    "file_search_call", "computer_call", "computer_call_output", "code_interpreter_call", "image_generation_call",
    "local_shell_call", "local_shell_call_output", "shell_call", "shell_call_output", "apply_patch_call",
    "apply_patch_call_output", "mcp_list_tools", "mcp_approval_request", "mcp_approval_response", "mcp_call",
    "custom_tool_call", "custom_tool_call_output", "compaction", "additional_tools", "tool_search_call", "tool_search_output",
})
TOOL_TYPES = frozenset({
    "function", "file_search", "computer", "computer_use_preview", "web_search", "web_search_preview",
    "web_search_preview_2025_03_11", "web_search_2025_08_26", "mcp", "code_interpreter", "image_generation",
    "local_shell", "shell", "custom", "apply_patch", "namespace", "tool_search",
})
_USER_PARTS = ("input_text", "input_image", "input_file")
_ASSISTANT_PARTS = ("output_text", "refusal")
_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
MIN_OUTPUT_TOKENS = 16


@dataclass(frozen=True)
class Problem:
    """A 400 as the Responses API writes it."""

    message: str
    param: str | None
    code: str | None = "invalid_value"


def _values(names: Iterable[str]) -> str:
    return ", ".join(f"'{n}'" for n in names)


def check(body: Any, history: list[dict[str, Any]]) -> Problem | None:
    """Why the API would refuse ``body`` given the items of the conversation before it, or None."""
    if not isinstance(body, dict):
        return Problem("Invalid body: expected an object.", None, "invalid_type")
    for key in body:
        if key not in PARAMS:
            return Problem(f"Unknown parameter: '{key}'.", key, "unknown_parameter")
    if not isinstance(body.get("model"), str) or not body["model"]:
        return Problem("Missing required parameter: 'model'.", "model", "missing_required_parameter")
    if body.get("previous_response_id") and body.get("conversation"):
        return Problem("Cannot use both 'previous_response_id' and 'conversation'.", "previous_response_id", None)
    return _numbers(body) or _tools(body) or _format(body) or _input(body.get("input"), history)


def _numbers(body: dict[str, Any]) -> Problem | None:
    limit = body.get("max_output_tokens")
    if limit is not None and (not isinstance(limit, int) or limit < MIN_OUTPUT_TOKENS):
        return Problem(f"Invalid 'max_output_tokens': integer below minimum value. Expected a value >= {MIN_OUTPUT_TOKENS}, "
                       f"but got {limit} instead.", "max_output_tokens", "integer_below_min_value")
    for key, top in (("temperature", 2), ("top_p", 1)):
        value = body.get(key)
        if value is not None and (not isinstance(value, (int, float)) or not 0 <= value <= top):
            return Problem(f"Invalid '{key}': decimal above maximum value. Expected a value <= {top}, but got {value} instead.",
                           key, "decimal_above_max_value")
    return None


def _tools(body: dict[str, Any]) -> Problem | None:
    names = set()
    for i, tool in enumerate(body.get("tools") or ()):
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind not in TOOL_TYPES:
            return Problem(f"Invalid value: '{kind}'. Supported values are: {_values(sorted(TOOL_TYPES))}.", f"tools[{i}].type")
        if kind == "function":
            if not _NAME.match(str(tool.get("name") or "")):
                return Problem(f"Invalid 'tools[{i}].name': string does not match pattern. Expected a string that matches the "
                               "pattern '^[a-zA-Z0-9_-]+$'.", f"tools[{i}].name")
            if "function" in tool:
                return Problem(f"Unknown parameter: 'tools[{i}].function'.", f"tools[{i}].function", "unknown_parameter")
            names.add(tool["name"])
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") == "function" and choice.get("name") not in names:
        return Problem("Tool choice 'function' not found in 'tools' parameter.", "tool_choice", None)
    if choice is not None and not isinstance(choice, dict) and choice not in ("auto", "none", "required"):
        return Problem(f"Invalid value: '{choice}'. Supported values are: 'none', 'auto', and 'required'.", "tool_choice")
    return None


def _format(body: dict[str, Any]) -> Problem | None:
    if "response_format" in body:
        return Problem("Unknown parameter: 'response_format'.", "response_format", "unknown_parameter")
    fmt = (body.get("text") or {}).get("format") if isinstance(body.get("text"), dict) else None
    if fmt is None:
        return None
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind not in ("text", "json_schema", "json_object"):
        return Problem(f"Invalid value: '{kind}'. Supported values are: 'text', 'json_schema', and 'json_object'.", "text.format.type")
    if kind == "json_schema":
        for key in ("name", "schema"):
            if not fmt.get(key):
                return Problem(f"Missing required parameter: 'text.format.{key}'.", f"text.format.{key}", "missing_required_parameter")
    if kind == "json_object" and "json" not in str(body.get("input")).lower() + str(body.get("instructions")).lower():
        return Problem("Response input messages must contain the word 'json' in some form to use 'text.format' of type "
                       "'json_object'.", "input", None)
    return None


def _input(items: Any, history: list[dict[str, Any]]) -> Problem | None:
    if items is None or isinstance(items, str):
        return None
    if not isinstance(items, list):
        return Problem("Invalid type for 'input': expected one of a string or array of input items, but got an object instead.",
                       "input", "invalid_type")
    for i, item in enumerate(items):
        problem = _item(item, f"input[{i}]")
        if problem:
            return problem
    return _calls([*history, *items])


def _item(item: Any, where: str) -> Problem | None:
    if not isinstance(item, dict):
        return Problem(f"Invalid type for '{where}': expected an object.", where, "invalid_type")
    kind = item.get("type", "message" if "role" in item else None)
    if kind not in ITEM_TYPES:
        return Problem(f"Invalid value: '{kind}'. Supported values are: {_values(sorted(ITEM_TYPES))}.", f"{where}.type")
    if kind == "message":
        return _message(item, where)
    if kind == "function_call":
        for key in ("call_id", "name", "arguments"):
            if not isinstance(item.get(key), str) or (key != "arguments" and not item[key]):
                return Problem(f"Missing required parameter: '{where}.{key}'.", f"{where}.{key}", "missing_required_parameter")
    if kind == "function_call_output":
        if not item.get("call_id"):
            return Problem(f"Missing required parameter: '{where}.call_id'.", f"{where}.call_id", "missing_required_parameter")
        if not isinstance(item.get("output"), (str, list)):
            return Problem(f"Invalid type for '{where}.output': expected a string or an array.", f"{where}.output", "invalid_type")
    if kind == "reasoning" and (not item.get("id") or not isinstance(item.get("summary"), list)):
        return Problem(f"Missing required parameter: '{where}.summary'.", f"{where}.summary", "missing_required_parameter")
    if kind == "item_reference" and not item.get("id"):
        return Problem(f"Missing required parameter: '{where}.id'.", f"{where}.id", "missing_required_parameter")
    return None


def _message(item: dict[str, Any], where: str) -> Problem | None:
    role = item.get("role")
    if role not in ("user", "assistant", "system", "developer"):
        return Problem(f"Invalid value: '{role}'. Supported values are: 'user', 'assistant', 'system', and 'developer'.",
                       f"{where}.role")
    content = item.get("content")
    if isinstance(content, str):
        return None
    if not isinstance(content, list):
        return Problem(f"Invalid type for '{where}.content': expected one of a string or array of input content, "
                       "but got an object instead.", f"{where}.content", "invalid_type")
    allowed = _ASSISTANT_PARTS if role == "assistant" else _USER_PARTS
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind not in allowed:
            return Problem(f"Invalid value: '{kind}'. Supported values are: {_values(allowed)}.", f"{where}.content[{j}].type")
        if kind in ("input_text", "output_text") and not isinstance(part.get("text"), str):
            return Problem(f"Missing required parameter: '{where}.content[{j}].text'.", f"{where}.content[{j}].text",
                           "missing_required_parameter")
        if kind == "input_image" and not (part.get("image_url") or part.get("file_id")):
            return Problem(f"Missing required parameter: '{where}.content[{j}].image_url'.", f"{where}.content[{j}].image_url",
                           "missing_required_parameter")
        if kind == "input_file" and not (part.get("file_data") or part.get("file_id") or part.get("file_url")):
            return Problem(f"Missing required parameter: '{where}.content[{j}].file_id'.", f"{where}.content[{j}].file_id",
                           "missing_required_parameter")
    return None


def _calls(items: list[Any]) -> Problem | None:
    """Every function call has its output later in the conversation, and every output a call before it."""
    called: list[str] = []
    answered: set[str] = set()
    for item in items:
        kind = item.get("type") if isinstance(item, dict) else None
        if kind == "function_call":
            called.append(str(item.get("call_id")))
        elif kind == "function_call_output":
            call_id = str(item.get("call_id"))
            if call_id not in called:
                return Problem(f"No tool call found for function call output with call_id {call_id}.", "input", None)
            answered.add(call_id)
    for call_id in called:
        if call_id not in answered:
            return Problem(f"No tool output found for function call {call_id}.", "input", None)
    return None
