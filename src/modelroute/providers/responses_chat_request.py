"""A Responses API request as a Chat Completions request (used by :class:`ResponsesToChat`).

Follows OpenAI's reference for ``POST /v1/responses`` (https://platform.openai.com/docs/api-reference/responses/create)
and the SDK's ``response_create_params.py`` / ``response_input_item_param.py``, mapped onto
``POST /v1/chat/completions`` (https://platform.openai.com/docs/api-reference/chat/create):

* ``instructions`` -> a first ``system`` message; ``input`` as a string -> one user message.
* ``message`` items: ``user`` content parts ``input_text`` -> ``text``, ``input_image`` (URL or data
  URL) -> ``image_url`` (``detail`` kept), ``input_file`` (``file_data`` or ``file_id``) -> ``file``;
  ``system`` and ``developer`` -> ``system`` messages (the role every chat server knows; OpenAI
  treats them alike); ``assistant`` ``output_text`` -> content, ``refusal`` -> ``refusal``.
* ``function_call`` items -> ``tool_calls`` of one assistant message (merged with the assistant
  message before them, as the API lists one turn's items), ``call_id`` kept as the tool call id;
  ``function_call_output`` -> ``tool`` messages.
* ``reasoning`` items -> dropped (``input.reasoning``): chat has no way to send reasoning back.
* ``item_reference`` -> the referenced item, when the caller can resolve it (``resolve``).
* ``tools`` (function tools) -> chat functions; ``tool_choice`` (auto, none, required, a function,
  ``allowed_tools``) and ``parallel_tool_calls`` (only with tools: chat refuses it alone).
* ``text.format`` json_schema / json_object -> ``response_format``; ``text.verbosity`` -> ``verbosity``;
  ``reasoning.effort`` -> ``reasoning_effort`` (``summary`` dropped); ``max_output_tokens`` ->
  ``max_completion_tokens``; ``temperature``, ``top_p``, ``user``, ``safety_identifier``,
  ``prompt_cache_key``, ``service_tier`` as they are.
* ``metadata``, ``store`` and ``previous_response_id`` are not sent: they concern the response
  object (echoed to the client) and the sidecar's store; the caller expands ``previous_response_id``
  into ``input`` before translating. ``truncation: auto`` is dropped (chat fails on overflow).

Built-in tools (web search, file search, code interpreter, computer use, MCP, image generation,
shell, custom tools) and the items they leave in a conversation, file URLs and image file ids,
``background``, ``conversation`` and ``prompt`` exist only in the Responses API: the request is
refused with a :class:`TranslationError` naming them (only providers that speak the Responses API
natively can serve it), or, when ``lenient``, they are left out and named in ``dropped`` (what
routing reads while native providers serve the request).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from modelroute.providers.translate import TranslationError, obj

#: Resolves an ``item_reference`` id to the item (None: unknown).
Resolver = Callable[[str], Mapping[str, Any] | None]

NATIVE_ONLY = "only providers that speak the Responses API natively can serve it"

#: Parameters the mapping reads (everything else with a value is dropped and named).
_MAPPED = frozenset({
    "model", "input", "instructions", "tools", "tool_choice", "parallel_tool_calls", "text", "reasoning",
    "max_output_tokens", "temperature", "top_p", "user", "safety_identifier", "prompt_cache_key", "service_tier",
    "stream", "stream_options", "metadata", "store", "previous_response_id", "truncation", "background",
    "conversation", "prompt",
})
#: Values that ask for nothing (nothing is lost by leaving them out).
_DEFAULTS: dict[str, Any] = {"top_logprobs": 0, "include": [], "max_tool_calls": None, "context_management": []}


class ResponsesRequestMapper:
    """One request's mapping; ``drop`` records what could not be carried."""

    def __init__(self, drop: Callable[[str], None], lenient: bool, resolve: Resolver | None) -> None:
        self.drop = drop
        self.lenient = lenient
        self.resolve = resolve

    def untranslatable(self, name: str, what: str) -> None:
        """``what`` has no Chat Completions equivalent: refuse, or (lenient) drop it and say so."""
        if not self.lenient:
            raise TranslationError(f"{what} has no Chat Completions equivalent: {NATIVE_ONLY}")
        self.drop(name)

    def map(self, body: Mapping[str, Any]) -> dict[str, Any]:
        messages: list[dict[str, Any]] = []
        instructions = body.get("instructions")
        if isinstance(instructions, str) and instructions:
            messages.append({"role": "system", "content": instructions})
        out: dict[str, Any] = {"model": body.get("model"), "messages": self._input(body.get("input"), messages)}
        self._tools(body, out)
        self._text(body, out)
        if isinstance(body.get("max_output_tokens"), int):
            out["max_completion_tokens"] = body["max_output_tokens"]
        for key in ("temperature", "top_p", "user", "safety_identifier", "prompt_cache_key", "service_tier"):
            if body.get(key) is not None:
                out[key] = body[key]
        if body.get("truncation") == "auto":
            self.drop("truncation")
        for key in ("background", "conversation", "prompt"):
            if body.get(key):
                self.untranslatable(key, f"'{key}'")
        if body.get("stream"):
            out["stream"] = True
            out["stream_options"] = {"include_usage": True}
        for key, value in body.items():
            if key not in _MAPPED and value is not None and _DEFAULTS.get(key, ...) != value:
                self.drop(key)
        return out

    # -- input -------------------------------------------------------------------------------
    def _input(self, items: Any, out: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if isinstance(items, str):
            out.append({"role": "user", "content": items})
            return out
        if not isinstance(items, list):
            raise TranslationError("'input' must be a string or a list of items")
        for item in items:
            if not isinstance(item, dict):
                raise TranslationError("each input item must be an object")
            self._item(item, out, resolved=False)
        return out

    def _item(self, item: Mapping[str, Any], out: list[dict[str, Any]], resolved: bool) -> None:
        kind = item.get("type", "message" if "role" in item else None)
        if kind == "message":
            self._message(item, out)
        elif kind == "function_call":
            call = {"id": str(item.get("call_id") or ""), "type": "function",
                    "function": {"name": str(item.get("name") or ""), "arguments": str(item.get("arguments") or "")}}
            last = out[-1] if out else None
            if last is not None and last["role"] == "assistant":
                last.setdefault("tool_calls", []).append(call)
            else:
                out.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            out.append({"role": "tool", "tool_call_id": str(item.get("call_id") or ""), "content": self._output(item.get("output"))})
        elif kind == "reasoning":
            self.drop("input.reasoning")
        elif kind == "item_reference" and not resolved:
            self._reference(str(item.get("id") or ""), out)
        else:
            self.untranslatable(f"input.{kind}", f"input item {kind!r}")

    def _reference(self, id: str, out: list[dict[str, Any]]) -> None:
        item = self.resolve(id) if self.resolve is not None else None
        if item is None:
            self.untranslatable("input.item_reference", f"item_reference {id!r} (an item this sidecar does not hold)")
            return
        self._item(item, out, resolved=True)

    def _message(self, item: Mapping[str, Any], out: list[dict[str, Any]]) -> None:
        role = item.get("role")
        content = item.get("content")
        if item.get("phase") is not None:
            self.drop("phase")
        if role == "assistant":
            out.append(self._assistant(content))
        elif role in ("system", "developer"):
            out.append({"role": "system", "content": self._system(content)})
        elif role == "user":
            out.append({"role": "user", "content": self._user(content)})
        else:
            raise TranslationError(f"input messages with role {role!r} do not exist in the Responses API")

    def _parts(self, content: Any) -> list[Mapping[str, Any]]:
        if isinstance(content, str):
            return [{"type": "input_text", "text": content}]
        if not isinstance(content, list):
            raise TranslationError("message content must be a string or a list of content parts")
        return [p for p in content if isinstance(p, dict)]

    def _system(self, content: Any) -> str:
        texts = []
        for part in self._parts(content):
            if part.get("type") not in ("input_text", "output_text", "text"):
                raise TranslationError(f"content part {part.get('type')!r} cannot stand in a system or developer message")
            texts.append(str(part.get("text") or ""))
        return "".join(texts)

    def _user(self, content: Any) -> Any:
        if isinstance(content, str):
            return content
        parts = [p for p in (self._part(part) for part in self._parts(content)) if p is not None]
        if len(parts) == 1 and parts[0]["type"] == "text":
            return parts[0]["text"]
        return parts

    def _part(self, part: Mapping[str, Any]) -> dict[str, Any] | None:
        kind = part.get("type")
        if kind in ("input_text", "text"):
            return {"type": "text", "text": str(part.get("text") or "")}
        if kind == "input_image":
            url = part.get("image_url")
            if not isinstance(url, str) or not url:
                self.untranslatable("input_image.file_id", "an input_image given by file_id")
                return None
            image: dict[str, Any] = {"url": url}
            if part.get("detail") not in (None, "auto"):
                image["detail"] = part["detail"]
            return {"type": "image_url", "image_url": image}
        if kind == "input_file":
            return self._file(part)
        if kind == "input_audio":
            return {"type": "input_audio", "input_audio": obj(part.get("input_audio"))}
        raise TranslationError(f"content part {kind!r} cannot stand in a user message")

    def _file(self, part: Mapping[str, Any]) -> dict[str, Any] | None:
        file: dict[str, Any] = {}
        if isinstance(part.get("file_data"), str):
            file["file_data"] = part["file_data"]
        elif isinstance(part.get("file_id"), str):
            file["file_id"] = part["file_id"]
        else:
            self.untranslatable("input_file.file_url", "an input_file given by file_url")
            return None
        if part.get("filename"):
            file["filename"] = str(part["filename"])
        return {"type": "file", "file": file}

    def _assistant(self, content: Any) -> dict[str, Any]:
        texts: list[str] = []
        refusals: list[str] = []
        for part in self._parts(content):
            kind = part.get("type")
            if kind in ("output_text", "input_text", "text"):
                texts.append(str(part.get("text") or ""))
                if part.get("annotations"):
                    self.drop("annotations")
            elif kind == "refusal":
                refusals.append(str(part.get("refusal") or ""))
            else:
                raise TranslationError(f"content part {kind!r} cannot stand in an assistant message")
        message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts else None}
        if refusals:
            message["refusal"] = "".join(refusals)
        return message

    def _output(self, output: Any) -> Any:
        """A function call's output: a string, or text parts (chat tool messages carry only text)."""
        if isinstance(output, str):
            return output
        if not isinstance(output, list):
            raise TranslationError("a function_call_output's output must be a string or a list of content parts")
        parts = []
        for part in output:
            kind = part.get("type") if isinstance(part, dict) else None
            if kind in ("input_text", "output_text", "text"):
                parts.append({"type": "text", "text": str(part.get("text") or "")})
            else:
                self.untranslatable("function_call_output.non_text", f"a function_call_output holding {kind!r}")
        if not parts:
            return ""
        return parts[0]["text"] if len(parts) == 1 else parts

    # -- parameters --------------------------------------------------------------------------
    def _tools(self, body: Mapping[str, Any], out: dict[str, Any]) -> None:
        tools: list[dict[str, Any]] = []
        for tool in body.get("tools") or ():
            kind = tool.get("type") if isinstance(tool, dict) else None
            if kind != "function":
                self.untranslatable(f"tools.{kind}", f"the built-in tool {kind!r}")
                continue
            fn: dict[str, Any] = {"name": str(tool.get("name") or "")}
            if tool.get("description"):
                fn["description"] = tool["description"]
            fn["parameters"] = tool.get("parameters") or {"type": "object", "properties": {}}
            if tool.get("strict") is not None:
                fn["strict"] = bool(tool["strict"])
            tools.append({"type": "function", "function": fn})
        if not tools:
            if body.get("tool_choice") not in (None, "auto", "none"):
                self.drop("tool_choice")
            return
        out["tools"] = tools
        choice = self._tool_choice(body.get("tool_choice"))
        if choice is not None:
            out["tool_choice"] = choice
        if isinstance(body.get("parallel_tool_calls"), bool):
            out["parallel_tool_calls"] = body["parallel_tool_calls"]

    def _tool_choice(self, choice: Any) -> Any:
        if choice is None or choice in ("auto", "none", "required"):
            return choice
        kind = choice.get("type") if isinstance(choice, dict) else None
        if kind == "function":
            return {"type": "function", "function": {"name": str(choice.get("name") or "")}}
        if kind == "allowed_tools":
            named = [{"type": "function", "function": {"name": str(t.get("name") or "")}}
                     for t in choice.get("tools") or () if isinstance(t, dict) and t.get("type") == "function"]
            return {"type": "allowed_tools", "allowed_tools": {"mode": choice.get("mode", "auto"), "tools": named}}
        self.untranslatable("tool_choice", f"tool_choice {kind!r}")
        return None

    def _text(self, body: Mapping[str, Any], out: dict[str, Any]) -> None:
        text = obj(body.get("text"))
        fmt = obj(text.get("format"))
        kind = fmt.get("type")
        if kind == "json_schema":
            spec: dict[str, Any] = {"name": str(fmt.get("name") or "response"), "schema": obj(fmt.get("schema"))}
            if fmt.get("description"):
                spec["description"] = fmt["description"]
            if fmt.get("strict") is not None:
                spec["strict"] = bool(fmt["strict"])
            out["response_format"] = {"type": "json_schema", "json_schema": spec}
        elif kind == "json_object":
            out["response_format"] = {"type": "json_object"}
        elif kind not in (None, "text"):
            self.drop("text.format")
        if text.get("verbosity") is not None:
            out["verbosity"] = text["verbosity"]
        reasoning = obj(body.get("reasoning"))
        if reasoning.get("effort") is not None:
            out["reasoning_effort"] = reasoning["effort"]
        for key in ("summary", "generate_summary"):
            if reasoning.get(key) is not None:
                self.drop("reasoning.summary")
        for key in ("context", "mode"):
            if reasoning.get(key) is not None:
                self.drop(f"reasoning.{key}")
