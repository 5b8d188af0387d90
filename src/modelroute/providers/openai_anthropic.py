"""OpenAI client, Anthropic upstream: chat-completions request -> Messages request, answer back.

:class:`OpenAIToAnthropic` is created per request. The request mapping (messages, content parts,
tools, response format, sampling, thinking) lives in :mod:`modelroute.providers.openai_anthropic_request`;
this module turns the Messages answer, whole or as its SSE events, into OpenAI's shape:

* text blocks -> ``message.content``; ``tool_use`` -> ``tool_calls`` with JSON-string arguments;
* thinking blocks -> ``message.reasoning_content`` (the text) and ``message.thinking_blocks``
  (the blocks with their signatures, to be sent back on the next turn), never answer text;
* ``stop_reason`` -> ``finish_reason``; usage with cache reads and writes, where OpenAI's
  ``prompt_tokens`` counts every input token (Anthropic's ``input_tokens`` excludes cached ones);
* a stream becomes ``chat.completion.chunk`` payloads, chunk by chunk, with a final usage chunk
  (empty ``choices``) at ``message_stop``; an ``error`` event raises :class:`ProviderError`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Mapping

from modelroute import _json
from modelroute.policy import ModelSpec
from modelroute.providers.openai_anthropic_request import RequestMapper
from modelroute.providers.anthropic_errors import stream_error
from modelroute.providers.base import Usage
from modelroute.providers.translate import Event, Translator, obj

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
_USAGE_KEYS = ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")


def openai_usage(usage: Mapping[str, Any]) -> dict[str, Any]:
    """Anthropic usage -> OpenAI usage; ``prompt_tokens`` includes cache reads and writes."""
    read = int(usage.get("cache_read_input_tokens") or 0)
    written = int(usage.get("cache_creation_input_tokens") or 0)
    prompt = int(usage.get("input_tokens") or 0) + read + written
    completion = int(usage.get("output_tokens") or 0)
    out: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": read, "cache_creation_tokens": written},
    }
    details = usage.get("output_tokens_details")
    if isinstance(details, dict) and details.get("thinking_tokens") is not None:
        out["completion_tokens_details"] = {"reasoning_tokens": int(details["thinking_tokens"])}
    return out


@dataclass(slots=True)
class _Block:
    kind: str  # text | tool | json | thinking | redacted | other
    tool_index: int = -1
    text: str = ""  # thinking text, or a wrapped JSON answer being buffered
    signature: str = ""


class OpenAIToAnthropic(Translator):
    source = "openai"
    target = "anthropic"

    @classmethod
    def for_model(cls, model: ModelSpec) -> OpenAIToAnthropic:
        return cls(model)

    def __init__(self, model: ModelSpec, *, created: int | None = None) -> None:
        super().__init__()
        self.model = model
        self.created = created if created is not None else int(time.time())
        self._mapper = RequestMapper(model, self.drop)
        self._id = ""
        self._upstream_model = model.upstream_model
        self._usage: dict[str, Any] = {}
        self._blocks: dict[int, _Block] = {}
        self._tools = 0
        self._done = False

    # -- request ---------------------------------------------------------------------------
    def request(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return self._mapper.map(body)

    # -- whole answer ----------------------------------------------------------------------
    def response(self, body: Mapping[str, Any]) -> dict[str, Any]:
        texts: list[str] = []
        calls: list[dict[str, Any]] = []
        thinking: list[dict[str, Any]] = []
        answer: str | None = None
        for block in body.get("content") or ():
            kind = block.get("type")
            if kind == "text":
                texts.append(str(block.get("text") or ""))
                if block.get("citations"):
                    self.drop("citations")
            elif kind == "tool_use" and block.get("name") == self._mapper.json_tool:
                answer = self._mapper.json_answer(block.get("input"))
            elif kind == "tool_use":
                calls.append(_tool_call(block))
            elif kind == "thinking":
                thinking.append({"type": "thinking", "thinking": block.get("thinking", ""), "signature": block.get("signature", "")})
            elif kind == "redacted_thinking":
                thinking.append({"type": "redacted_thinking", "data": block.get("data", "")})
            else:
                self.drop(f"content.{kind}")
        if answer is not None and any(texts):
            self.drop("content.text_outside_json")
        message: dict[str, Any] = {"role": "assistant", "content": answer if answer is not None else ("".join(texts) or None)}
        if calls:
            message["tool_calls"] = calls
        if thinking:
            message["reasoning_content"] = "".join(b.get("thinking", "") for b in thinking)
            message["thinking_blocks"] = thinking
        oa_usage = openai_usage(obj(body.get("usage")))
        self.usage = Usage.from_openai(oa_usage)
        return {
            "id": body.get("id", ""),
            "object": "chat.completion",
            "created": self.created,
            "model": body.get("model", self.model.upstream_model),
            "choices": [{"index": 0, "message": message, "finish_reason": self._finish(body.get("stop_reason"), bool(calls)), "logprobs": None}],
            "usage": oa_usage,
        }

    def _finish(self, stop_reason: Any, called: bool) -> str:
        """OpenAI's finish reason; a forced JSON-answer tool is an answer, not a tool call."""
        if stop_reason == "tool_use" and not called and self._mapper.json_tool is not None:
            return "stop"
        return FINISH_REASONS.get(str(stop_reason), "stop")

    # -- stream ----------------------------------------------------------------------------
    @property
    def finished(self) -> bool:
        return self._done

    def event(self, name: str | None, data: Mapping[str, Any]) -> list[Event]:
        kind = data.get("type")
        if kind == "content_block_delta":
            return self._delta(data)
        if kind == "content_block_start":
            return self._block_start(data)
        if kind == "content_block_stop":
            return self._block_stop(data)
        if kind == "message_start":
            message = data.get("message") or {}
            self._id = str(message.get("id") or "")
            self._upstream_model = str(message.get("model") or self._upstream_model)
            self._merge_usage(message.get("usage"))
            return [self._chunk({"role": "assistant", "content": ""})]
        if kind == "message_delta":
            self._merge_usage(data.get("usage"))
            delta = data.get("delta") or {}
            return [self._chunk({}, self._finish(delta.get("stop_reason"), self._tools > 0))]
        if kind == "message_stop":
            self._done = True
            usage = openai_usage(self._usage)
            self.usage = Usage.from_openai(usage)
            return [(None, {"id": self._id, "object": "chat.completion.chunk", "created": self.created,
                            "model": self._upstream_model, "choices": [], "usage": usage})]
        if kind == "error":
            raise stream_error(data.get("error"), self.model.provider, self.model.name)
        return []  # ping, and event types added after this was written

    def end(self) -> list[Event]:
        return []

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> Event:
        return (None, {"id": self._id, "object": "chat.completion.chunk", "created": self.created, "model": self._upstream_model,
                       "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})

    def _merge_usage(self, usage: Any) -> None:
        if isinstance(usage, dict):
            for key in _USAGE_KEYS:
                if usage.get(key) is not None:
                    self._usage[key] = usage[key]
            if isinstance(usage.get("output_tokens_details"), dict):
                self._usage["output_tokens_details"] = usage["output_tokens_details"]

    def _block_start(self, data: Mapping[str, Any]) -> list[Event]:
        block = data.get("content_block") or {}
        kind = block.get("type")
        index = int(data.get("index", 0))
        if kind == "text":
            self._blocks[index] = _Block("text")
            return [self._chunk({"content": block["text"]})] if block.get("text") else []
        if kind == "tool_use" and block.get("name") == self._mapper.json_tool:
            self._blocks[index] = _Block("json")
            return []
        if kind == "tool_use":
            self._blocks[index] = _Block("tool", tool_index=self._tools)
            self._tools += 1
            call = {"index": self._tools - 1, "id": block.get("id", ""), "type": "function",
                    "function": {"name": block.get("name", ""), "arguments": ""}}
            return [self._chunk({"tool_calls": [call]})]
        if kind == "thinking":
            self._blocks[index] = _Block("thinking", text=str(block.get("thinking") or ""))
            return [self._chunk({"reasoning_content": block["thinking"]})] if block.get("thinking") else []
        if kind == "redacted_thinking":
            self._blocks[index] = _Block("redacted")
            return [self._chunk({"thinking_blocks": [{"type": "redacted_thinking", "data": block.get("data", "")}]})]
        self._blocks[index] = _Block("other")
        self.drop(f"content.{kind}")
        return []

    def _delta(self, data: Mapping[str, Any]) -> list[Event]:
        delta = data.get("delta") or {}
        block = self._blocks.get(int(data.get("index", 0))) or _Block("other")
        kind = delta.get("type")
        if kind == "text_delta":
            return [self._chunk({"content": delta.get("text", "")})]
        if kind == "input_json_delta":
            part = str(delta.get("partial_json") or "")
            if not part:
                return []
            if block.kind == "tool":
                return [self._chunk({"tool_calls": [{"index": block.tool_index, "function": {"arguments": part}}]})]
            if block.kind == "json":
                if self._mapper.json_wrapped:
                    block.text += part
                    return []
                return [self._chunk({"content": part})]
            return []
        if kind == "thinking_delta":
            block.text += str(delta.get("thinking") or "")
            return [self._chunk({"reasoning_content": delta.get("thinking", "")})]
        if kind == "signature_delta":
            block.signature += str(delta.get("signature") or "")
        elif kind == "citations_delta":
            self.drop("citations")
        return []

    def _block_stop(self, data: Mapping[str, Any]) -> list[Event]:
        block = self._blocks.get(int(data.get("index", 0)))
        if block is None:
            return []
        if block.kind == "thinking":
            full = {"type": "thinking", "thinking": block.text, "signature": block.signature}
            return [self._chunk({"thinking_blocks": [full]})]
        if block.kind == "json" and self._mapper.json_wrapped:
            try:
                value = _json.loads(block.text) if block.text else {}
            except ValueError:
                value = {}
            return [self._chunk({"content": self._mapper.json_answer(value)})]
        return []


def _tool_call(block: Mapping[str, Any]) -> dict[str, Any]:
    arguments = _json.dumps(block.get("input") if block.get("input") is not None else {}).decode()
    return {"id": block.get("id", ""), "type": "function", "function": {"name": block.get("name", ""), "arguments": arguments}}
