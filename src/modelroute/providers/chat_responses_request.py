"""A Chat Completions request as a Responses API request (used by :class:`ChatToResponses`).

For models that speak only the Responses API (OpenAI's ``*-pro`` and codex models). Follows the
two references (https://platform.openai.com/docs/api-reference/chat/create,
https://platform.openai.com/docs/api-reference/responses/create) and the SDK's parameter types:

* messages -> ``input`` items in order: ``system`` / ``developer`` / ``user`` messages keep their
  role (content parts ``text`` -> ``input_text``, ``image_url`` -> ``input_image`` with its
  detail, ``file`` -> ``input_file`` by data or id); assistant text (or refusal) -> an assistant
  message; ``tool_calls`` -> ``function_call`` items (the tool call id as ``call_id``); ``tool``
  messages -> ``function_call_output`` items. Audio input has no Responses equivalent: refused.
* ``tools`` (functions) -> function tools with ``strict`` as chat meant it (false unless set: the
  Responses API defaults to strict); ``tool_choice`` auto/none/required/a function/allowed_tools;
  ``parallel_tool_calls``.
* ``response_format`` -> ``text.format``; ``verbosity`` -> ``text.verbosity``; ``reasoning_effort``
  -> ``reasoning.effort``; ``max_completion_tokens`` / ``max_tokens`` -> ``max_output_tokens`` (raised to
  the API's minimum of 16, and named, when lower);
  ``temperature``, ``top_p``, ``user``, ``safety_identifier``, ``prompt_cache_key``, ``service_tier``,
  ``metadata`` as they are.
* ``store``: chat stores nothing unless asked, the Responses API stores unless told not to, so
  ``store`` is sent as chat meant it (false by default).
* ``stop``, ``n`` > 1, ``logprobs``, ``seed``, penalties, ``logit_bias``, audio output, predictions,
  custom tools, reasoning text of past turns and the legacy ``functions`` have no Responses
  equivalent: dropped and named.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from modelroute.providers.translate import TranslationError, obj

#: The least ``max_output_tokens`` the Responses API accepts (it answers 400 below).
MIN_OUTPUT_TOKENS = 16
_MAPPED = frozenset({
    "model", "messages", "tools", "tool_choice", "parallel_tool_calls", "response_format", "verbosity", "reasoning_effort",
    "max_completion_tokens", "max_tokens", "temperature", "top_p", "user", "safety_identifier", "prompt_cache_key",
    "service_tier", "metadata", "store", "stream", "stream_options",
})
#: Values that ask for nothing.
_DEFAULTS: dict[str, Any] = {"n": 1, "logprobs": False, "presence_penalty": 0, "frequency_penalty": 0, "stop": [],
                             "modalities": ["text"]}


class ChatRequestMapper:
    def __init__(self, drop: Callable[[str], None]) -> None:
        self.drop = drop

    def map(self, body: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"model": body.get("model"), "input": self._messages(body.get("messages"))}
        self._tools(body, out)
        self._text(body, out)
        limit = body.get("max_completion_tokens")
        limit = body.get("max_tokens") if limit is None else limit
        if isinstance(limit, int):
            if limit < MIN_OUTPUT_TOKENS:
                self.drop("max_output_tokens.minimum")  # the Responses API refuses less; the answer may be longer
            out["max_output_tokens"] = max(limit, MIN_OUTPUT_TOKENS)
        for key in ("temperature", "top_p", "user", "safety_identifier", "prompt_cache_key", "service_tier", "metadata"):
            if body.get(key) is not None:
                out[key] = body[key]
        out["store"] = body.get("store") is True
        if body.get("stream"):
            out["stream"] = True
        for key, value in body.items():
            if key not in _MAPPED and value is not None and value != {} and _DEFAULTS.get(key, ...) != value:
                self.drop(key)
        return out

    # -- messages ----------------------------------------------------------------------------
    def _messages(self, messages: Any) -> list[dict[str, Any]]:
        if not isinstance(messages, list):
            raise TranslationError("'messages' must be a list")
        items: list[dict[str, Any]] = []
        for msg in messages:
            if not isinstance(msg, dict):
                raise TranslationError("each message must be an object")
            role = msg.get("role")
            if msg.get("name"):
                self.drop("messages.name")
            if role in ("system", "developer", "user"):
                items.append({"type": "message", "role": role, "content": self._content(msg.get("content"), role)})
            elif role == "assistant":
                items.extend(self._assistant(msg))
            elif role == "tool":
                items.append({"type": "function_call_output", "call_id": str(msg.get("tool_call_id") or ""),
                              "output": self._tool_output(msg.get("content"))})
            else:
                raise TranslationError(f"messages with role {role!r} have no Responses API equivalent")
        return items

    def _content(self, content: Any, role: str) -> Any:
        if isinstance(content, str):
            return content
        if content is None:
            return ""
        if not isinstance(content, list):
            raise TranslationError("message content must be a string or a list of parts")
        return [self._part(p, role) for p in content if isinstance(p, dict)]

    def _part(self, part: Mapping[str, Any], role: str) -> dict[str, Any]:
        kind = part.get("type")
        if kind == "text":
            return {"type": "input_text", "text": str(part.get("text") or "")}
        if kind == "image_url" and role == "user":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            if not isinstance(url, str) or not url:
                raise TranslationError("an image_url part has no url")
            detail = image.get("detail") if isinstance(image, dict) else None
            return {"type": "input_image", "image_url": url, "detail": detail or "auto"}
        if kind == "file" and role == "user":
            file = obj(part.get("file"))
            out: dict[str, Any] = {"type": "input_file"}
            if isinstance(file.get("file_data"), str):
                out["file_data"] = file["file_data"]
            elif isinstance(file.get("file_id"), str):
                out["file_id"] = file["file_id"]
            else:
                raise TranslationError("a file part needs file_data or file_id")
            if file.get("filename"):
                out["filename"] = str(file["filename"])
            return out
        if kind == "input_audio":
            raise TranslationError("audio input has no equivalent in the Responses API")
        raise TranslationError(f"content part {kind!r} in a {role} message has no Responses API equivalent")

    def _assistant(self, msg: Mapping[str, Any]) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        content = msg.get("content")
        if isinstance(content, list):
            content = "".join(str(p.get("text") or p.get("refusal") or "") for p in content if isinstance(p, dict))
        text = content or msg.get("refusal")
        if text:
            items.append({"type": "message", "role": "assistant", "content": str(text)})
        for call in msg.get("tool_calls") or ():
            call = obj(call)
            if call.get("type", "function") != "function":
                self.drop("tools.custom")
                continue
            fn = obj(call.get("function"))
            items.append({"type": "function_call", "call_id": str(call.get("id") or ""), "name": str(fn.get("name") or ""),
                          "arguments": str(fn.get("arguments") or "")})
        for key, name in (("reasoning_content", "messages.reasoning_content"), ("thinking_blocks", "messages.reasoning_content"),
                          ("function_call", "messages.function_call"), ("audio", "messages.audio")):
            if msg.get(key):
                self.drop(name)
        return items

    def _tool_output(self, content: Any) -> Any:
        if isinstance(content, list):
            return [{"type": "input_text", "text": str(p.get("text") or "")} for p in content if isinstance(p, dict)]
        return str(content or "")

    # -- parameters --------------------------------------------------------------------------
    def _tools(self, body: Mapping[str, Any], out: dict[str, Any]) -> None:
        tools = []
        for tool in body.get("tools") or ():
            kind = tool.get("type", "function") if isinstance(tool, dict) else None
            if kind != "function":
                self.drop(f"tools.{kind}")
                continue
            fn = obj(tool.get("function"))
            mapped: dict[str, Any] = {"type": "function", "name": str(fn.get("name") or "")}
            if fn.get("description"):
                mapped["description"] = fn["description"]
            mapped["parameters"] = fn.get("parameters") or {"type": "object", "properties": {}}
            mapped["strict"] = fn.get("strict") is True
            tools.append(mapped)
        if not tools:
            if body.get("tool_choice") not in (None, "auto", "none"):
                self.drop("tool_choice")
            return
        out["tools"] = tools
        choice = body.get("tool_choice")
        if choice in ("auto", "none", "required"):
            out["tool_choice"] = choice
        elif isinstance(choice, dict) and choice.get("type") == "function":
            out["tool_choice"] = {"type": "function", "name": str(obj(choice.get("function")).get("name") or "")}
        elif isinstance(choice, dict) and choice.get("type") == "allowed_tools":
            allowed = obj(choice.get("allowed_tools"))
            named = [{"type": "function", "name": str(obj(t.get("function")).get("name") or "")}
                     for t in allowed.get("tools") or () if isinstance(t, dict) and t.get("type") == "function"]
            out["tool_choice"] = {"type": "allowed_tools", "mode": allowed.get("mode", "auto"), "tools": named}
        elif choice is not None:
            self.drop("tool_choice")
        if isinstance(body.get("parallel_tool_calls"), bool):
            out["parallel_tool_calls"] = body["parallel_tool_calls"]

    def _text(self, body: Mapping[str, Any], out: dict[str, Any]) -> None:
        text: dict[str, Any] = {}
        fmt = obj(body.get("response_format"))
        if fmt.get("type") == "json_schema":
            spec = obj(fmt.get("json_schema"))
            schema: dict[str, Any] = {"type": "json_schema", "name": str(spec.get("name") or "response"),
                                      "schema": obj(spec.get("schema"))}
            if spec.get("description"):
                schema["description"] = spec["description"]
            if spec.get("strict") is not None:
                schema["strict"] = bool(spec["strict"])
            text["format"] = schema
        elif fmt.get("type") == "json_object":
            text["format"] = {"type": "json_object"}
        elif fmt.get("type") not in (None, "text"):
            self.drop("response_format")
        if body.get("verbosity") is not None:
            text["verbosity"] = body["verbosity"]
        if text:
            out["text"] = text
        if body.get("reasoning_effort") is not None:
            out["reasoning"] = {"effort": body["reasoning_effort"]}
