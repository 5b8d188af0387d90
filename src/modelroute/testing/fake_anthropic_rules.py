"""The request checks of the fake Anthropic provider: what the Messages API refuses with a 400.

Stricter than the real API in one place on purpose: consecutive turns of one role are refused
(Anthropic merges them), so a translator that forgets to merge is caught. Also builds sample
values for a JSON schema (the fake's tool inputs and structured answers).
"""

from __future__ import annotations

import re
from typing import Any

_MESSAGES_KEYS = frozenset({
    "model", "messages", "max_tokens", "system", "metadata", "stop_sequences", "stream", "temperature", "top_p",
    "top_k", "tools", "tool_choice", "thinking", "output_config", "service_tier", "container", "mcp_servers",
    "cache_control", "inference_geo", "speed",
})
_COUNT_KEYS = frozenset({"model", "messages", "system", "tools", "tool_choice", "thinking", "output_config", "mcp_servers"})
_IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
#: Blocks of server tools (web search, web fetch, code execution, MCP) that past assistant turns carry.
_SERVER_TOOL_BLOCKS = ("server_tool_use", "web_search_tool_result", "web_fetch_tool_result",
                       "code_execution_tool_result", "mcp_tool_use", "mcp_tool_result")


def check_request(body: Any, count: bool) -> str | None:
    """Why Anthropic would refuse ``body`` (a 400 message), or None."""
    if not isinstance(body, dict):
        return "the request body must be a JSON object"
    extra = sorted(set(body) - (_COUNT_KEYS if count else _MESSAGES_KEYS))
    if extra:
        return f"{extra[0]}: Extra inputs are not permitted"
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "model: Field required"
    max_tokens = body.get("max_tokens")
    if not count and (not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 0):
        return "max_tokens: Field required"
    return _system(body.get("system")) or _messages(body.get("messages")) or _sampling(body) or _tools(body)


def _system(system: Any) -> str | None:
    if system is None or isinstance(system, str):
        return None
    if not isinstance(system, list):
        return "system: Input should be a valid string or list"
    for i, block in enumerate(system):
        if not isinstance(block, dict) or block.get("type") != "text" or not block.get("text"):
            return f"system.{i}: system blocks must be non-empty text blocks"
    return None


def _messages(messages: Any) -> str | None:
    if not isinstance(messages, list) or not messages:
        return "messages: at least one message is required"
    previous: str | None = None
    pending: set[Any] = set()
    for i, msg in enumerate(messages):
        role = msg.get("role") if isinstance(msg, dict) else None
        if role not in ("user", "assistant"):
            return f"messages.{i}.role: Input should be 'user' or 'assistant'"
        if role == previous:
            return f"messages.{i}: roles must alternate between \"user\" and \"assistant\""
        content = msg.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        if not isinstance(blocks, list) or not blocks:
            return f"messages.{i}.content: must be a non-empty string or list"
        for j, block in enumerate(blocks):
            problem = _block(block, role, f"messages.{i}.content.{j}")
            if problem:
                return problem
        if role == "user":
            problem = _results(blocks, pending, i)
            if problem:
                return problem
        pending = {b.get("id") for b in blocks if b.get("type") == "tool_use"} if role == "assistant" else set()
        previous = role
    return None


def _results(blocks: list[dict[str, Any]], pending: set[Any], i: int) -> str | None:
    kinds = [b.get("type") == "tool_result" for b in blocks]
    ids = {b.get("tool_use_id") for b in blocks if b.get("type") == "tool_result"}
    if pending - ids:
        return f"messages.{i}: tool_use ids were found without tool_result blocks immediately after: {', '.join(sorted(map(str, pending - ids)))}"
    if ids - pending:
        return f"messages.{i}.content: unexpected tool_use_id found in tool_result blocks"
    if kinds != sorted(kinds, reverse=True):
        return f"messages.{i}.content: tool_result blocks must come before any other content"
    return None


def _block(block: Any, role: str, where: str) -> str | None:
    if not isinstance(block, dict):
        return f"{where}: Input should be an object"
    kind = block.get("type")
    allowed = {"user": ("text", "image", "document", "tool_result", "search_result"),
               "assistant": ("text", "tool_use", "thinking", "redacted_thinking", *_SERVER_TOOL_BLOCKS)}[role]
    if kind not in allowed:
        return f"{where}.type: {kind!r} is not allowed in a {role} message"
    if kind == "text" and (not isinstance(block.get("text"), str) or not block["text"]):
        return f"{where}: text content blocks must be non-empty"
    if kind == "image":
        source = block.get("source") or {}
        if source.get("type") == "base64" and (source.get("media_type") not in _IMAGE_TYPES or not source.get("data")):
            return f"{where}.source: images must be base64 jpeg, png, gif or webp"
        if source.get("type") not in ("base64", "url") or (source.get("type") == "url" and not source.get("url")):
            return f"{where}.source: Input tag {source.get('type')!r} does not match any of the expected tags"
    if kind == "tool_use" and (not block.get("id") or not block.get("name") or not isinstance(block.get("input"), dict)):
        return f"{where}: tool_use blocks need id, name and an object input"
    if kind == "tool_result":
        if not block.get("tool_use_id"):
            return f"{where}.tool_use_id: Field required"
        inner = block.get("content", "")
        if isinstance(inner, list):
            for k, part in enumerate(inner):
                if not isinstance(part, dict) or part.get("type") not in ("text", "image", "document", "search_result"):
                    return f"{where}.content.{k}: tool results hold text, image or document blocks"
    if kind == "thinking" and not block.get("signature"):
        return f"{where}: Invalid `signature` in `thinking` block"
    return None


def _sampling(body: dict[str, Any]) -> str | None:
    for key in ("temperature", "top_p"):
        value = body.get(key)
        if value is not None and not (isinstance(value, (int, float)) and 0 <= value <= 1):
            return f"{key}: Input should be less than or equal to 1"
    stops = body.get("stop_sequences")
    if stops is not None and not (isinstance(stops, list) and all(isinstance(s, str) and s.strip() for s in stops)):
        return "stop_sequences: each stop sequence must be a non-empty string"
    metadata = body.get("metadata")
    if metadata is not None and (not isinstance(metadata, dict) or set(metadata) - {"user_id"}):
        return "metadata: Extra inputs are not permitted"
    thinking = body.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") == "enabled":
        budget = thinking.get("budget_tokens")
        if not isinstance(budget, int) or budget < 1024:
            return "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
        if "max_tokens" in body and budget >= body["max_tokens"]:
            return "`max_tokens` must be greater than `thinking.budget_tokens`"
        if body.get("temperature") not in (None, 1):
            return "`temperature` may only be set to 1 when thinking is enabled"
        if body.get("top_k") is not None:
            return "`top_k` is not supported when thinking is enabled"
        if (body.get("tool_choice") or {}).get("type") in ("any", "tool"):
            return "Thinking may not be enabled when tool_choice forces tool use."
    fmt = (body.get("output_config") or {}).get("format")
    if fmt is not None and (not isinstance(fmt, dict) or fmt.get("type") != "json_schema" or not isinstance(fmt.get("schema"), dict)):
        return "output_config.format: expected {type: json_schema, schema: {...}}"
    return None


def _tools(body: dict[str, Any]) -> str | None:
    tools = body.get("tools")
    names = set()
    if tools is not None:
        if not isinstance(tools, list):
            return "tools: Input should be a valid list"
        for i, tool in enumerate(tools):
            if not isinstance(tool, dict) or not _TOOL_NAME.match(str(tool.get("name", ""))):
                return f"tools.{i}.name: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$'"
            if tool.get("type") in (None, "custom"):
                schema = tool.get("input_schema")
                if not isinstance(schema, dict) or schema.get("type") != "object":
                    return f"tools.{i}.input_schema.type: Input should be 'object'"
            names.add(tool["name"])
    choice = body.get("tool_choice")
    if choice is None:
        return None
    if not isinstance(choice, dict) or choice.get("type") not in ("auto", "any", "tool", "none"):
        return "tool_choice: Input tag does not match any of the expected tags: 'auto', 'any', 'tool', 'none'"
    if choice["type"] in ("any", "tool") and not names:
        return "tool_choice: a tool must be provided when tool_choice forces tool use"
    if choice["type"] == "tool" and choice.get("name") not in names:
        return f"tool_choice.name: no tool named {choice.get('name')!r}"
    if choice["type"] == "none" and "disable_parallel_tool_use" in choice:
        return "tool_choice.none.disable_parallel_tool_use: Extra inputs are not permitted"
    return None


def text_of(content: Any) -> str:
    """The text of a content value: a string, or the text (and tool result text) of its blocks."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    parts = []
    for block in content:
        if isinstance(block, dict) and block.get("type") == "text":
            parts.append(str(block.get("text", "")))
        elif isinstance(block, dict) and block.get("type") == "tool_result":
            parts.append(text_of(block.get("content")))
    return " ".join(p for p in parts if p)


def sample(schema: Any, prompt: str) -> Any:
    """A small value matching ``schema`` (strings echo the start of the prompt)."""
    if not isinstance(schema, dict):
        return None
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        if schema.get(key):
            return sample(schema[key][0], prompt)
    kind = schema.get("type")
    kind = kind[0] if isinstance(kind, list) and kind else kind
    if kind == "object" or (kind is None and "properties" in schema):
        props = schema.get("properties") or {}
        return {name: sample(sub, prompt) for name, sub in props.items()}
    if kind == "array":
        return [sample(schema.get("items") or {"type": "string"}, prompt)]
    return {"string": prompt[:40] or "text", "integer": 1, "number": 1.5, "boolean": True, "null": None}.get(str(kind), prompt[:40])
