"""Anthropic client, OpenAI-compatible upstream: Messages request -> chat-completions request, answer back.

Serves ``POST /v1/messages`` when the policy routes an Anthropic SDK app to an OpenAI-compatible
model (and builds the OpenAI-shaped body routing reads in every case).

* ``system`` -> a system message; ``tool_result`` blocks -> ``tool`` messages (ids kept) placed
  before the rest of their user turn; text, image (base64 -> data URL, url) and PDF documents ->
  content parts; ``tool_use`` -> ``tool_calls`` with JSON-string arguments.
* ``tools`` (custom tools) -> functions; ``tool_choice`` auto/any/tool/none -> auto/required/named/none,
  ``disable_parallel_tool_use`` -> ``parallel_tool_calls: false``; ``output_config.format`` ->
  ``response_format`` json_schema (strict: Anthropic's format is a guarantee too).
* ``max_tokens`` -> ``max_completion_tokens`` (OpenAI's current name); ``stop_sequences`` -> ``stop``;
  ``metadata.user_id`` -> ``user``; streams ask for usage (``stream_options.include_usage``).
* Thinking (requested or in past turns), ``top_k``, server tools, ``cache_control`` and the other
  Anthropic-only parameters have no OpenAI equivalent: dropped and named.

Answers: ``content`` / ``refusal`` -> text blocks, ``tool_calls`` -> ``tool_use`` blocks,
``finish_reason`` -> ``stop_reason``, usage with cache reads (Anthropic's ``input_tokens`` excludes
them). Streams: OpenAI chunks -> ``message_start``, ``ping``, ``content_block_*`` (``text_delta``,
``input_json_delta``), ``message_delta`` (stop reason, usage), ``message_stop``.
"""

from __future__ import annotations

from typing import Any, Mapping

from modelroute import _json
from modelroute.providers.base import Usage
from modelroute.providers.translate import Event, TranslationError, Translator, obj

STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "function_call": "tool_use",
                "content_filter": "refusal"}
#: OpenAI accepts at most this many stop sequences.
MAX_STOP = 4
_MAPPED = frozenset({"model", "messages", "system", "max_tokens", "temperature", "top_p", "stop_sequences", "metadata",
                     "stream", "tools", "tool_choice", "output_config", "thinking"})


def anthropic_usage(usage: Mapping[str, Any] | None) -> dict[str, int]:
    """OpenAI usage -> Anthropic usage (``input_tokens`` without the cached part)."""
    usage = usage or {}
    details = usage.get("prompt_tokens_details") or {}
    read = int(details.get("cached_tokens") or 0)
    written = int(details.get("cache_creation_tokens") or 0)
    return {"input_tokens": max(0, int(usage.get("prompt_tokens") or 0) - read - written),
            "cache_creation_input_tokens": written, "cache_read_input_tokens": read,
            "output_tokens": int(usage.get("completion_tokens") or 0)}


class AnthropicToOpenAI(Translator):
    source = "anthropic"
    target = "openai"

    def __init__(self, lenient: bool = False) -> None:
        super().__init__()
        self.lenient = lenient  # content with no OpenAI equivalent is dropped (and named) instead of refused
        self._started = False
        self._done = False
        self._id = ""
        self._model = ""
        self._open: int | None = None  # index of the open content block
        self._open_kind = ""
        self._blocks = 0
        self._tool_blocks: dict[int, int] = {}  # OpenAI tool call index -> content block index
        self._stop = "end_turn"
        self._usage: Mapping[str, Any] | None = None

    # -- request ---------------------------------------------------------------------------
    def request(self, body: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"model": body.get("model"), "messages": self._system(body.get("system"))}
        for msg in body.get("messages") or ():
            if not isinstance(msg, dict):
                raise TranslationError("each message must be an object")
            if msg.get("role") == "assistant":
                out["messages"].append(self._assistant(msg.get("content")))
            else:
                out["messages"].extend(self._user(msg.get("content")))
        if isinstance(body.get("max_tokens"), int):
            out["max_completion_tokens"] = body["max_tokens"]
        for key in ("temperature", "top_p"):
            if body.get(key) is not None:
                out[key] = body[key]
        self._stop_and_user(body, out)
        self._tools(body, out)
        self._output(body, out)
        if body.get("stream"):
            out["stream"] = True
            out["stream_options"] = {"include_usage": True}
        for key, value in body.items():
            if key not in _MAPPED and value is not None:
                self.drop(key)
        return out

    def _system(self, system: Any) -> list[dict[str, Any]]:
        if isinstance(system, str):
            return [{"role": "system", "content": system}] if system else []
        if not isinstance(system, list) or not system:
            return []
        texts = [self._cached(b) for b in system if isinstance(b, dict)]
        parts = [{"type": "text", "text": str(b.get("text") or "")} for b in texts if b.get("type") == "text"]
        if len(parts) == 1:
            return [{"role": "system", "content": parts[0]["text"]}]
        return [{"role": "system", "content": parts}] if parts else []

    def _cached(self, block: Mapping[str, Any]) -> Mapping[str, Any]:
        if block.get("cache_control") is not None:
            self.drop("cache_control")  # OpenAI-compatible providers cache by prefix on their own
        return block

    def _user(self, content: Any) -> list[dict[str, Any]]:
        if isinstance(content, str):
            return [{"role": "user", "content": content}]
        if not isinstance(content, list):
            raise TranslationError("message content must be a string or a list of content blocks")
        results: list[dict[str, Any]] = []
        parts: list[dict[str, Any]] = []
        for block in content:
            if not isinstance(block, dict):
                continue
            self._cached(block)
            if block.get("type") == "tool_result":
                results.append(self._tool_result(block))
            elif (part := self._part(block)) is not None:
                parts.append(part)
        if not parts:
            return results
        if all(p["type"] == "text" for p in parts) and len(parts) == 1:
            return [*results, {"role": "user", "content": parts[0]["text"]}]
        return [*results, {"role": "user", "content": parts}]

    def _part(self, block: Mapping[str, Any]) -> dict[str, Any] | None:
        kind = block.get("type")
        source = obj(block.get("source"))
        if kind == "text":
            if block.get("citations"):
                self.drop("citations")
            return {"type": "text", "text": str(block.get("text") or "")}
        if kind == "image" and source.get("type") == "base64":
            return {"type": "image_url", "image_url": {"url": f"data:{source.get('media_type')};base64,{source.get('data')}"}}
        if kind == "image" and source.get("type") == "url":
            return {"type": "image_url", "image_url": {"url": str(source.get("url"))}}
        if kind == "document" and source.get("type") == "base64" and source.get("media_type") == "application/pdf":
            name = str(block.get("title") or "document.pdf")
            return {"type": "file", "file": {"filename": name, "file_data": f"data:application/pdf;base64,{source.get('data')}"}}
        if kind == "document" and source.get("type") == "text":
            if block.get("title"):
                self.drop("document.title")
            return {"type": "text", "text": str(source.get("data") or "")}
        detail = f"{kind} ({source.get('type')})" if source else repr(kind)
        self._untranslatable(f"content.{kind}", f"content block {detail} has no equivalent in the OpenAI chat completions API")
        return None

    def _untranslatable(self, name: str, message: str) -> None:
        if not self.lenient:
            raise TranslationError(message)
        self.drop(name)

    def _tool_result(self, block: Mapping[str, Any]) -> dict[str, Any]:
        content = block.get("content")
        if block.get("is_error"):
            self.drop("tool_result.is_error")
        if isinstance(content, list):
            parts = []
            for inner in content:
                if isinstance(inner, dict) and inner.get("type") == "text":
                    parts.append({"type": "text", "text": str(inner.get("text") or "")})
                else:
                    self.drop("tool_result.non_text")  # OpenAI tool messages carry text only
            content = parts[0]["text"] if len(parts) == 1 else parts
        return {"role": "tool", "tool_call_id": str(block.get("tool_use_id") or ""), "content": content or ""}

    def _assistant(self, content: Any) -> dict[str, Any]:
        if isinstance(content, str):
            return {"role": "assistant", "content": content}
        texts: list[str] = []
        calls: list[dict[str, Any]] = []
        for block in content or ():
            kind = block.get("type") if isinstance(block, dict) else None
            if kind == "text":
                texts.append(str(block.get("text") or ""))
            elif kind == "tool_use":
                args = _json.dumps(block.get("input") or {}).decode()
                calls.append({"id": str(block.get("id") or ""), "type": "function",
                              "function": {"name": str(block.get("name") or ""), "arguments": args}})
            elif kind in ("thinking", "redacted_thinking"):
                self.drop("thinking")
            else:
                self._untranslatable(f"content.{kind}", f"assistant content block {kind!r} has no OpenAI equivalent")
        out: dict[str, Any] = {"role": "assistant", "content": "".join(texts) or None}
        if calls:
            out["tool_calls"] = calls
        return out

    def _stop_and_user(self, body: Mapping[str, Any], out: dict[str, Any]) -> None:
        stops = body.get("stop_sequences")
        if isinstance(stops, list) and stops:
            if len(stops) > MAX_STOP:
                self.drop("stop_sequences.beyond_4")
            out["stop"] = [str(s) for s in stops[:MAX_STOP]]
        metadata = body.get("metadata")
        if isinstance(metadata, dict) and metadata.get("user_id"):
            out["user"] = str(metadata["user_id"])

    def _tools(self, body: Mapping[str, Any], out: dict[str, Any]) -> None:
        tools = []
        for tool in body.get("tools") or ():
            if not isinstance(tool, dict) or tool.get("type") not in (None, "custom"):
                self.drop(f"tools.{tool.get('type') if isinstance(tool, dict) else 'invalid'}")
                continue
            self._cached(tool)
            fn: dict[str, Any] = {"name": str(tool.get("name") or ""),
                                  "parameters": tool.get("input_schema") or {"type": "object", "properties": {}}}
            if tool.get("description"):
                fn["description"] = tool["description"]
            if tool.get("strict"):
                fn["strict"] = True
            tools.append({"type": "function", "function": fn})
        if tools:
            out["tools"] = tools
        choice = body.get("tool_choice")
        if not isinstance(choice, dict) or not tools:
            return
        kind = choice.get("type")
        mapped: Any = {"auto": "auto", "any": "required", "none": "none"}.get(str(kind))
        if kind == "tool":
            mapped = {"type": "function", "function": {"name": str(choice.get("name") or "")}}
        if mapped is not None:
            out["tool_choice"] = mapped
        if choice.get("disable_parallel_tool_use"):
            out["parallel_tool_calls"] = False

    def _output(self, body: Mapping[str, Any], out: dict[str, Any]) -> None:
        thinking = body.get("thinking")
        if isinstance(thinking, dict) and thinking.get("type") != "disabled":
            self.drop("thinking")
        config = body.get("output_config")
        if not isinstance(config, dict):
            return
        fmt = config.get("format")
        if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
            out["response_format"] = {"type": "json_schema",
                                      "json_schema": {"name": "response", "schema": fmt.get("schema") or {}, "strict": True}}
        for key, value in config.items():
            if key != "format" and value is not None:
                self.drop(f"output_config.{key}")

    # -- whole answer ----------------------------------------------------------------------
    def response(self, body: Mapping[str, Any]) -> dict[str, Any]:
        choices = body.get("choices") or [{}]
        choice = choices[0] if isinstance(choices[0], dict) else {}
        message = choice.get("message") or {}
        content: list[dict[str, Any]] = []
        text = message.get("content")
        if isinstance(text, list):
            text = "".join(str(p.get("text") or "") for p in text if isinstance(p, dict))
        if text:
            content.append({"type": "text", "text": text})
        if message.get("refusal"):
            content.append({"type": "text", "text": str(message["refusal"])})
        for call in message.get("tool_calls") or ():
            fn = call.get("function") or {}
            content.append({"type": "tool_use", "id": str(call.get("id") or ""), "name": str(fn.get("name") or ""),
                            "input": self._arguments(fn.get("arguments"))})
        if message.get("reasoning_content"):
            self.drop("reasoning_content")
        stop = "refusal" if message.get("refusal") else STOP_REASONS.get(str(choice.get("finish_reason")), "end_turn")
        usage = anthropic_usage(body.get("usage"))
        self._set_usage(body.get("usage"))
        return {"id": str(body.get("id") or ""), "type": "message", "role": "assistant", "model": body.get("model"),
                "content": content, "stop_reason": stop, "stop_sequence": None, "usage": usage}

    def _arguments(self, raw: Any) -> dict[str, Any]:
        try:
            value = _json.loads(raw) if isinstance(raw, str) and raw.strip() else {}
        except ValueError:
            value = None
        if not isinstance(value, dict):
            self.drop("tool_calls.arguments")
            return {}
        return value

    def _set_usage(self, usage: Any) -> None:
        self.usage = Usage.from_openai(usage)

    # -- stream ----------------------------------------------------------------------------
    @property
    def finished(self) -> bool:
        return self._done

    def event(self, name: str | None, data: Mapping[str, Any]) -> list[Event]:
        out: list[Event] = [] if self._started else self._start(data)
        if isinstance(data.get("usage"), dict):
            self._usage = data["usage"]
            self._set_usage(data["usage"])
        for choice in data.get("choices") or ():
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            for key in ("content", "refusal"):
                if delta.get(key):
                    out.extend(self._text(str(delta[key])))
            for call in delta.get("tool_calls") or ():
                out.extend(self._tool_delta(call))
            if delta.get("reasoning_content"):
                self.drop("reasoning_content")
            if choice.get("finish_reason"):
                self._stop = STOP_REASONS.get(str(choice["finish_reason"]), "end_turn")
            if delta.get("refusal"):
                self._stop = "refusal"
        return out

    def end(self) -> list[Event]:
        out: list[Event] = [] if self._started else self._start({})
        out.extend(self._close())
        usage = anthropic_usage(self._usage)
        out.append(("message_delta", {"type": "message_delta", "delta": {"stop_reason": self._stop, "stop_sequence": None},
                                      "usage": usage}))
        out.append(("message_stop", {"type": "message_stop"}))
        self._done = True
        return out

    def _start(self, chunk: Mapping[str, Any]) -> list[Event]:
        self._started = True
        self._id, self._model = str(chunk.get("id") or ""), str(chunk.get("model") or "")
        message: dict[str, Any] = {"id": self._id, "type": "message", "role": "assistant", "model": self._model, "content": [],
                   "stop_reason": None, "stop_sequence": None, "usage": anthropic_usage(None)}
        return [("message_start", {"type": "message_start", "message": message}), ("ping", {"type": "ping"})]

    def _close(self) -> list[Event]:
        if self._open is None:
            return []
        index, self._open = self._open, None
        return [("content_block_stop", {"type": "content_block_stop", "index": index})]

    def _open_block(self, kind: str, block: dict[str, Any]) -> list[Event]:
        out = self._close()
        self._open, self._open_kind = self._blocks, kind
        self._blocks += 1
        out.append(("content_block_start", {"type": "content_block_start", "index": self._open, "content_block": block}))
        return out

    def _text(self, text: str) -> list[Event]:
        out = [] if self._open is not None and self._open_kind == "text" else self._open_block("text", {"type": "text", "text": ""})
        out.append(("content_block_delta", {"type": "content_block_delta", "index": self._open,
                                            "delta": {"type": "text_delta", "text": text}}))
        return out

    def _tool_delta(self, call: Mapping[str, Any]) -> list[Event]:
        index = int(call.get("index") or 0)
        fn = call.get("function") or {}
        out: list[Event] = []
        if index not in self._tool_blocks:
            block = {"type": "tool_use", "id": str(call.get("id") or ""), "name": str(fn.get("name") or ""), "input": {}}
            out = self._open_block("tool", block)
            self._tool_blocks[index] = self._blocks - 1
        arguments = fn.get("arguments")
        if arguments:
            if self._tool_blocks[index] != self._open:
                self.drop("tool_calls.interleaved")  # Anthropic blocks cannot be reopened
                return out
            out.append(("content_block_delta", {"type": "content_block_delta", "index": self._open,
                                                "delta": {"type": "input_json_delta", "partial_json": str(arguments)}}))
        return out
