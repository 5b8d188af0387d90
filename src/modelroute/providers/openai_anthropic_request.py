"""An OpenAI chat-completions request as an Anthropic Messages request (used by OpenAIToAnthropic).

* ``system`` / ``developer`` messages -> ``system`` text blocks (in order, wherever they stood);
  consecutive messages of one role are merged into one turn, ``tool`` messages become
  ``tool_result`` blocks of a user turn (placed first, as Anthropic requires), ids kept.
* Text, image (data URL -> base64 source, http(s) URL -> url source) and PDF/text file parts ->
  content blocks; ``cache_control`` on a part is kept. Audio and OpenAI file ids cannot be carried:
  the request is refused (:class:`TranslationError`), not silently shortened.
* Assistant ``tool_calls`` -> ``tool_use`` blocks; ``thinking_blocks`` (as this module returns
  them) go back as thinking blocks with their signatures.
* ``max_tokens`` / ``max_completion_tokens``, defaulting to the registry's ``maxOutputTokens``;
  ``temperature`` (clamped to Anthropic's 0..1), ``top_p``, ``stop``, ``user`` -> ``metadata``.
* ``tools`` / ``tool_choice`` (auto, none, required -> any, a named function -> tool) and
  ``parallel_tool_calls: false`` -> ``disable_parallel_tool_use``.
* ``response_format``: ``json_schema`` with ``strict: true`` -> ``output_config.format`` (Anthropic's
  constrained decoding: the same guarantee); non-strict ``json_schema`` and ``json_object`` -> one
  extra tool the model is made to call, whose input is the answer (see docs/anthropic.md).
* ``reasoning_effort`` -> ``thinking`` with a documented token budget; Anthropic's own ``thinking``
  and ``top_k`` (sent by OpenAI SDKs as extra body) pass through.

Everything else with a non-default value is dropped and named through ``drop``.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, Callable, Mapping

from modelroute import _json
from modelroute.policy import ModelSpec
from modelroute.providers.translate import TranslationError, obj

#: max_tokens when neither the client nor the registry gives one.
DEFAULT_MAX_TOKENS = 4096
#: reasoning_effort -> thinking budget_tokens (capped below max_tokens; Anthropic's minimum is 1024).
THINKING_BUDGETS = {"low": 1024, "medium": 4096, "high": 16384, "xhigh": 32768}
MIN_THINKING_BUDGET = 1024
#: Name of the answer tool for json_object (json_schema uses the schema's own name).
JSON_TOOL = "json_response"
JSON_TOOL_DESCRIPTION = "Give your answer by calling this tool: its input is the answer, as JSON."

#: Parameters the mapping carries.
_MAPPED = frozenset({
    "model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "top_k", "stop", "user",
    "tools", "tool_choice", "parallel_tool_calls", "response_format", "stream", "stream_options",
    "reasoning_effort", "thinking",
})
#: Parameter values that ask for nothing (so nothing is lost by leaving them out).
_DEFAULTS: dict[str, Any] = {"n": 1, "logprobs": False, "presence_penalty": 0, "frequency_penalty": 0, "store": False}


class RequestMapper:
    """Maps one request; remembers the JSON-answer tool so the answer can be turned back."""

    def __init__(self, model: ModelSpec, drop: Callable[[str], None]) -> None:
        self.model = model
        self.drop = drop
        self.json_tool: str | None = None
        self.json_wrapped = False  # the schema's root was not an object: the tool input is {"value": ...}

    def map(self, body: Mapping[str, Any]) -> dict[str, Any]:
        system, messages = self._messages(body.get("messages"))
        out: dict[str, Any] = {"model": self.model.upstream_model, "messages": messages}
        if system:
            out["system"] = system
        out["max_tokens"] = self._max_tokens(body)
        self._sampling(body, out)
        self._tools(body, out)
        self._response_format(body, out)
        self._thinking(body, out)
        if body.get("stream"):
            out["stream"] = True
        for key, value in body.items():
            if key not in _MAPPED and value is not None and value != {} and value != [] and _DEFAULTS.get(key, ...) != value:
                self.drop(key)
        return out

    def json_answer(self, value: Any) -> str:
        """The answer text for the JSON-answer tool's input."""
        if self.json_wrapped and isinstance(value, dict):
            value = value.get("value")
        return _json.dumps(value if value is not None else {}).decode()

    # -- messages --------------------------------------------------------------------------
    def _messages(self, messages: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        if not isinstance(messages, list):
            raise TranslationError("'messages' must be a list")
        system: list[dict[str, Any]] = []
        out: list[dict[str, Any]] = []
        for msg in messages:
            if not isinstance(msg, dict):
                raise TranslationError("each message must be an object")
            role = msg.get("role")
            if role in ("system", "developer"):
                if out:
                    self.drop("messages.system_position")
                system.extend(self._parts(msg.get("content"), "system"))
                continue
            if msg.get("name"):
                self.drop("messages.name")
            if role == "user":
                target, blocks = "user", self._parts(msg.get("content"), "user")
            elif role == "assistant":
                target, blocks = "assistant", self._assistant(msg)
            elif role == "tool":
                target, blocks = "user", [self._tool_result(msg)]
            else:
                raise TranslationError(f"messages with role {role!r} have no Anthropic equivalent")
            if not blocks:
                self.drop("messages.empty")
            elif out and out[-1]["role"] == target:
                out[-1]["content"].extend(blocks)
            else:
                out.append({"role": target, "content": blocks})
        for turn in out:
            if turn["role"] == "user" and len(turn["content"]) > 1:
                turn["content"].sort(key=lambda b: b.get("type") != "tool_result")  # stable: results first
        return system, out

    def _parts(self, content: Any, where: str) -> list[dict[str, Any]]:
        if content is None:
            return []
        if isinstance(content, str):
            return [{"type": "text", "text": content}] if content else []
        if not isinstance(content, list):
            raise TranslationError("message content must be a string or a list of parts")
        blocks = []
        for part in content:
            block = self._part(part, where) if isinstance(part, dict) else None
            if block is not None:
                blocks.append(block)
        return blocks

    def _part(self, part: Mapping[str, Any], where: str) -> dict[str, Any] | None:
        kind = part.get("type")
        block: dict[str, Any]
        if kind in ("text", "refusal"):
            text = part.get("text") if kind == "text" else part.get("refusal")
            if not text:
                return None
            block = {"type": "text", "text": str(text)}
        elif kind == "image_url" and where in ("user", "tool"):
            block = self._image(part.get("image_url"))
        elif kind == "file" and where in ("user", "tool"):
            block = _document(part.get("file"))
        elif kind == "input_audio":
            raise TranslationError("audio input has no equivalent in the Anthropic Messages API")
        else:
            raise TranslationError(f"content part {kind!r} in a {where} message has no Anthropic equivalent")
        if isinstance(part.get("cache_control"), dict):
            block["cache_control"] = dict(part["cache_control"])
        return block

    def _image(self, image: Any) -> dict[str, Any]:
        url = image.get("url") if isinstance(image, dict) else image
        if not isinstance(url, str) or not url:
            raise TranslationError("an image_url part has no url")
        if isinstance(image, dict) and image.get("detail") not in (None, "auto"):
            self.drop("image_url.detail")
        if url.startswith("data:"):
            media_type, data = _data_url(url)
            return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
        return {"type": "image", "source": {"type": "url", "url": url}}

    def _assistant(self, msg: Mapping[str, Any]) -> list[dict[str, Any]]:
        blocks: list[dict[str, Any]] = []
        thinking = msg.get("thinking_blocks")
        if isinstance(thinking, list) and thinking:
            for item in thinking:
                if isinstance(item, dict) and item.get("type") == "thinking":
                    blocks.append({"type": "thinking", "thinking": item.get("thinking", ""), "signature": item.get("signature", "")})
                elif isinstance(item, dict) and item.get("type") == "redacted_thinking":
                    blocks.append({"type": "redacted_thinking", "data": item.get("data", "")})
        elif msg.get("reasoning_content"):
            self.drop("messages.reasoning_content")  # unsigned reasoning cannot be sent back to Claude
        blocks.extend(self._parts(msg.get("content"), "assistant"))
        if msg.get("refusal") and not msg.get("content"):
            blocks.append({"type": "text", "text": str(msg["refusal"])})
        for call in msg.get("tool_calls") or ():
            if isinstance(call, dict):
                blocks.append(self._tool_use(call))
        for key in ("function_call", "audio"):
            if msg.get(key):
                self.drop(f"messages.{key}")
        return blocks

    def _tool_use(self, call: Mapping[str, Any]) -> dict[str, Any]:
        fn = obj(call.get("function"))
        args = fn.get("arguments")
        try:
            value = _json.loads(args) if isinstance(args, str) and args.strip() else {}
        except ValueError:
            value = None
        if not isinstance(value, dict):
            self.drop("tool_calls.arguments")  # not a JSON object: Anthropic takes objects only
            value = {}
        return {"type": "tool_use", "id": str(call.get("id") or ""), "name": str(fn.get("name") or ""), "input": value}

    def _tool_result(self, msg: Mapping[str, Any]) -> dict[str, Any]:
        content = msg.get("content")
        inner: Any = self._parts(content, "tool") if isinstance(content, list) else str(content or "")
        return {"type": "tool_result", "tool_use_id": str(msg.get("tool_call_id") or ""), "content": inner}

    # -- parameters ------------------------------------------------------------------------
    def _max_tokens(self, body: Mapping[str, Any]) -> int:
        value = body.get("max_completion_tokens")
        if value is None:
            value = body.get("max_tokens")
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        return self.model.max_output_tokens or DEFAULT_MAX_TOKENS

    def _sampling(self, body: Mapping[str, Any], out: dict[str, Any]) -> None:
        temperature = body.get("temperature")
        if isinstance(temperature, (int, float)):
            if temperature > 1:
                self.drop("temperature.above_1")  # OpenAI's range is 0..2, Anthropic's 0..1
            out["temperature"] = min(float(temperature), 1.0)
        for key in ("top_p", "top_k"):
            if body.get(key) is not None:
                out[key] = body[key]
        stop = body.get("stop")
        if isinstance(stop, str) and stop:
            out["stop_sequences"] = [stop]
        elif isinstance(stop, list) and stop:
            out["stop_sequences"] = [str(s) for s in stop]
        if body.get("user"):
            out["metadata"] = {"user_id": str(body["user"])}

    def _tools(self, body: Mapping[str, Any], out: dict[str, Any]) -> None:
        tools: list[dict[str, Any]] = []
        for tool in body.get("tools") or ():
            if not isinstance(tool, dict) or tool.get("type", "function") != "function":
                self.drop(f"tools.{tool.get('type') if isinstance(tool, dict) else 'invalid'}")
                continue
            fn = obj(tool.get("function"))
            mapped: dict[str, Any] = {"name": str(fn.get("name") or ""),
                                      "input_schema": fn.get("parameters") or {"type": "object", "properties": {}}}
            if fn.get("description"):
                mapped["description"] = fn["description"]
            if fn.get("strict"):
                mapped["strict"] = True
            if isinstance(tool.get("cache_control"), dict):
                mapped["cache_control"] = dict(tool["cache_control"])
            tools.append(mapped)
        if tools:
            out["tools"] = tools
        choice = self._tool_choice(body.get("tool_choice"), body.get("parallel_tool_calls"), bool(tools))
        if choice is not None:
            out["tool_choice"] = choice

    def _tool_choice(self, choice: Any, parallel: Any, has_tools: bool) -> dict[str, Any] | None:
        if not has_tools:
            if choice not in (None, "auto", "none"):
                self.drop("tool_choice")
            return None
        out: dict[str, Any]
        if choice == "none":
            return {"type": "none"}
        if choice is None or choice == "auto":
            out = {"type": "auto"}
        elif choice == "required":
            out = {"type": "any"}
        elif isinstance(choice, dict) and choice.get("type") == "function" and isinstance(choice.get("function"), dict):
            out = {"type": "tool", "name": str(choice["function"].get("name") or "")}
        else:
            self.drop("tool_choice")
            out = {"type": "auto"}
        if parallel is False:
            out["disable_parallel_tool_use"] = True
        elif choice is None:
            return None
        return out

    def _response_format(self, body: Mapping[str, Any], out: dict[str, Any]) -> None:
        fmt = body.get("response_format")
        kind = fmt.get("type") if isinstance(fmt, dict) else None
        if fmt is None or kind in (None, "text"):
            return
        assert isinstance(fmt, dict)
        if kind == "json_schema":
            spec = obj(fmt.get("json_schema"))
            schema = obj(spec.get("schema")) or {"type": "object"}
            if spec.get("strict"):
                out["output_config"] = {"format": {"type": "json_schema", "schema": dict(schema)}}
            else:
                self._json_tool(out, str(spec.get("name") or JSON_TOOL), schema, spec.get("description"))
        elif kind == "json_object":
            self._json_tool(out, JSON_TOOL, {"type": "object"}, None)
        else:
            self.drop("response_format")

    def _json_tool(self, out: dict[str, Any], name: str, schema: Mapping[str, Any], description: Any) -> None:
        """Add the tool whose input is the answer, and make the model call it (or a client tool)."""
        client_tools = out.get("tools") or []
        names = {t["name"] for t in client_tools}
        while name in names:
            name += "_response"
        if schema.get("type") != "object":
            schema = {"type": "object", "properties": {"value": dict(schema)}, "required": ["value"]}
            self.json_wrapped = True
        tool = {"name": name, "description": str(description or JSON_TOOL_DESCRIPTION), "input_schema": dict(schema)}
        out["tools"] = [*client_tools, tool]
        self.json_tool = name
        choice = out.get("tool_choice") or {"type": "auto"}
        if not client_tools or choice["type"] == "none":
            out["tool_choice"] = {"type": "tool", "name": name}
        elif choice["type"] == "auto":
            out["tool_choice"] = {**choice, "type": "any"}

    def _thinking(self, body: Mapping[str, Any], out: dict[str, Any]) -> None:
        thinking = body.get("thinking")
        effort = body.get("reasoning_effort")
        if thinking is None and isinstance(effort, str) and effort in THINKING_BUDGETS:
            budget = min(THINKING_BUDGETS[str(effort)], out["max_tokens"] - 1)
            if budget < MIN_THINKING_BUDGET:
                self.drop("reasoning_effort")  # max_tokens leaves no room for Anthropic's minimum budget
                return
            thinking = {"type": "enabled", "budget_tokens": budget}
        elif thinking is None and effort not in (None, "none", "minimal"):
            self.drop("reasoning_effort")
        if not isinstance(thinking, dict):
            return
        if thinking.get("type") != "disabled" and self.json_tool is not None:
            self.drop("thinking" if body.get("thinking") is not None else "reasoning_effort")  # no thinking with a forced tool
            return
        out["thinking"] = dict(thinking)
        if thinking.get("type") == "disabled":
            return
        if out.get("temperature") not in (None, 1):
            del out["temperature"]
            self.drop("temperature")  # thinking requires the default temperature
        if out.get("top_p") is not None and out["top_p"] < 0.95:
            del out["top_p"]
            self.drop("top_p")
        if "top_k" in out:
            del out["top_k"]
            self.drop("top_k")


def _data_url(url: str) -> tuple[str, str]:
    """(media type, base64 data) of a ``data:`` URL."""
    header, sep, data = url[5:].partition(",")
    params = header.split(";")
    if not sep or "base64" not in params[1:]:
        raise TranslationError("data URLs must be base64-encoded")
    return params[0] or "application/octet-stream", data


def _document(file: Any) -> dict[str, Any]:
    if not isinstance(file, dict) or not isinstance(file.get("file_data"), str):
        raise TranslationError("file parts need file_data: OpenAI file ids cannot be read by Anthropic")
    media_type, data = _data_url(file["file_data"]) if file["file_data"].startswith("data:") else ("application/pdf", file["file_data"])
    block: dict[str, Any]
    if media_type == "application/pdf":
        block = {"type": "document", "source": {"type": "base64", "media_type": media_type, "data": data}}
    elif media_type == "text/plain":
        try:
            text = base64.b64decode(data, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise TranslationError("a text/plain file part is not valid base64 UTF-8") from None
        block = {"type": "document", "source": {"type": "text", "media_type": media_type, "data": text}}
    else:
        raise TranslationError(f"file parts of type {media_type!r} have no Anthropic equivalent")
    if file.get("filename"):
        block["title"] = str(file["filename"])
    return block
