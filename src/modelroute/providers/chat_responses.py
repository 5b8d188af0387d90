"""Chat Completions client, Responses API upstream: a chat request served by a Responses-only model,
and any Responses answer read as a chat completion.

:class:`ChatToResponses` is created per request. The request mapping lives in
:mod:`modelroute.providers.chat_responses_request`; this module turns a ``response`` object
(https://platform.openai.com/docs/api-reference/responses/object) or its semantic events
(https://platform.openai.com/docs/api-reference/responses-streaming) into ``chat.completion`` /
``chat.completion.chunk`` payloads (https://platform.openai.com/docs/api-reference/chat/object):

* ``message`` items: ``output_text`` -> ``content`` (``url_citation`` annotations carried),
  ``refusal`` -> ``refusal``; ``reasoning`` items -> ``reasoning_content`` (their reasoning text,
  else their summary); ``function_call`` items -> ``tool_calls`` (``call_id`` as the id, indexes
  in output order); items of built-in tools (web search, file search, ...) are dropped and named;
* ``status``: ``incomplete`` for ``max_output_tokens`` -> ``finish_reason: length``, for
  ``content_filter`` -> ``content_filter``; otherwise ``tool_calls`` when there are function calls,
  else ``stop``; ``failed`` (and a stream's ``error`` event) -> :class:`ProviderError` of the kind
  its code names (rate limit, server, bad request), never the upstream's text for server errors;
* usage (:mod:`responses_objects`), and a stream ends with a usage chunk (empty ``choices``), as
  OpenAI sends with ``stream_options.include_usage`` (the proxy hides it from clients that did not
  ask for it).

The pipeline also reads every Responses answer "as chat" this way (cascade reviews, quality hooks),
so reading tolerates what valid streams may omit: a text or arguments that arrive only in the
``.done`` event, the ``output_item.done`` or the final ``response.completed`` are emitted then.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Mapping

from modelroute.providers.base import ErrorKind, ProviderError
from modelroute.providers.chat_responses_request import ChatRequestMapper
from modelroute.providers.http import http_error
from modelroute.providers.responses_objects import chat_usage, usage_of
from modelroute.providers.translate import Event, Translator, obj

#: ``response.error.code`` -> the HTTP status it would have had (for the error's kind).
_CODE_STATUS = {"rate_limit_exceeded": 429, "server_error": 500, "vector_store_timeout": 504}


@dataclass(slots=True)
class _Seen:
    """What of one output item has reached the client, as pieces (joined only when a ``.done``
    event needs comparing: linear in the answer's length)."""

    kind: str
    tool_index: int = -1
    text: list[str] = field(default_factory=list)  # message: output text; function_call: arguments
    refusal: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)


def _rest(sent: list[str], final: str) -> str:
    """What of ``final`` was not sent yet (nothing when what was sent is not its start)."""
    so_far = "".join(sent)
    return final[len(so_far):] if final.startswith(so_far) else ""


class ChatToResponses(Translator):
    source = "chat"
    target = "responses"

    def __init__(self, where: str = "responses", *, created: int | None = None) -> None:
        super().__init__()
        self.where = where  # provider/model, for error messages
        self.created = created if created is not None else int(time.time())
        self._mapper = ChatRequestMapper(self.drop)
        self._id = ""
        self._model: Any = None
        self._started = False
        self._done = False
        self._items: dict[int, _Seen] = {}  # output_index -> what was sent of it
        self._tools = 0

    # -- request ---------------------------------------------------------------------------
    def request(self, body: Mapping[str, Any]) -> dict[str, Any]:
        self._model = body.get("model")
        return self._mapper.map(body)

    # -- whole answer ----------------------------------------------------------------------
    def response(self, body: Mapping[str, Any]) -> dict[str, Any]:
        self._check(body)
        texts: list[str] = []
        refusals: list[str] = []
        reasoning: list[str] = []
        notes: list[dict[str, Any]] = []
        calls: list[dict[str, Any]] = []
        for item in body.get("output") or ():
            kind = obj(item).get("type")
            if kind == "message":
                for part in item.get("content") or ():
                    if part.get("type") == "output_text":
                        notes.extend(self._notes(part.get("annotations"), sum(map(len, texts))))
                        texts.append(str(part.get("text") or ""))
                    elif part.get("type") == "refusal":
                        refusals.append(str(part.get("refusal") or ""))
            elif kind == "reasoning":
                reasoning.append(_reasoning_text(item))
            elif kind == "function_call":
                calls.append({"id": str(item.get("call_id") or ""), "type": "function",
                              "function": {"name": str(item.get("name") or ""), "arguments": str(item.get("arguments") or "")}})
            else:
                self.drop(f"output.{kind}")
        message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts else None,
                                   "refusal": "".join(refusals) if refusals else None}
        if calls:
            message["tool_calls"] = calls
        if any(reasoning):
            message["reasoning_content"] = "".join(reasoning)
        if notes:
            message["annotations"] = notes
        usage = chat_usage(body.get("usage"))
        self.usage = usage_of(body.get("usage"))
        answer: dict[str, Any] = {
            "id": str(body.get("id") or ""), "object": "chat.completion", "created": _int(body.get("created_at"), self.created),
            "model": body.get("model", self._model),
            "choices": [{"index": 0, "message": message, "finish_reason": _finish(body, bool(calls)), "logprobs": None}],
        }
        if usage is not None:
            answer["usage"] = usage
        return answer

    def _notes(self, annotations: Any, offset: int) -> list[dict[str, Any]]:
        out = []
        for note in annotations or ():
            if obj(note).get("type") == "url_citation":
                out.append({"type": "url_citation", "url_citation": {
                    "start_index": offset + _int(note.get("start_index"), 0), "end_index": offset + _int(note.get("end_index"), 0),
                    "title": str(note.get("title") or ""), "url": str(note.get("url") or "")}})
            else:
                self.drop("annotations")
        return out

    def _check(self, body: Mapping[str, Any]) -> None:
        """A failed (or unfinished) response is the upstream's failure, with the kind its code names."""
        status = body.get("status")
        if status in ("failed", "cancelled"):
            self._fail(obj(body.get("error")))
        if status in ("queued", "in_progress"):
            raise ProviderError(ErrorKind.PROTOCOL, f"{self.where}: the response is still {status}")

    def _fail(self, error: Mapping[str, Any]) -> None:
        code = str(error.get("code") or "server_error")
        status = _CODE_STATUS.get(code, 400 if code.startswith(("invalid_", "image_")) or "image" in code else 500)
        exc = http_error(self.where, "", status, {}, {"message": error.get("message"), "code": code, "param": error.get("param")})
        exc.message = f"{self.where}: the response failed ({code})"
        raise exc

    # -- stream ----------------------------------------------------------------------------
    @property
    def finished(self) -> bool:
        return self._done

    def event(self, name: str | None, data: Mapping[str, Any]) -> list[Event]:
        kind = str(data.get("type") or name)
        out: list[Event] = []
        if not self._started and kind in ("response.created", "response.queued", "response.in_progress"):
            response = obj(data.get("response"))
            self._id, self._model = str(response.get("id") or ""), response.get("model", self._model)
            self.created = _int(response.get("created_at"), self.created)
            self._started = True
            return [self._chunk({"role": "assistant", "content": ""})]
        if kind == "response.output_text.delta":
            return self._text(data, str(data.get("delta") or ""))
        if kind == "response.function_call_arguments.delta":
            return self._arguments(data.get("output_index"), str(data.get("delta") or ""))
        if kind in ("response.reasoning_text.delta", "response.reasoning_summary_text.delta"):
            seen = self._seen(data.get("output_index"), "reasoning")
            seen.reasoning.append(str(data.get("delta") or ""))
            return [self._chunk({"reasoning_content": seen.reasoning[-1]})]
        if kind == "response.refusal.delta":
            seen = self._seen(data.get("output_index"), "message")
            seen.refusal.append(str(data.get("delta") or ""))
            return [self._chunk({"refusal": seen.refusal[-1]})]
        if kind in ("response.output_item.added", "response.output_item.done"):
            return self._item(data.get("output_index"), obj(data.get("item")))
        if kind == "response.output_text.done":
            return self._text(data, "", final=str(data.get("text") or ""))
        if kind == "response.function_call_arguments.done":
            return self._arguments(data.get("output_index"), "", final=str(data.get("arguments") or ""))
        if kind in ("response.completed", "response.incomplete"):
            return self._end(obj(data.get("response")))
        if kind == "response.failed":
            self._fail(obj(obj(data.get("response")).get("error")))
        if kind == "error":
            self._fail(data)
        return out  # content_part.*, built-in tool progress, and event types added after this was written

    def end(self) -> list[Event]:
        return []

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> Event:
        return (None, {"id": self._id, "object": "chat.completion.chunk", "created": self.created, "model": self._model,
                       "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})

    def _seen(self, index: Any, kind: str) -> _Seen:
        key = index if isinstance(index, int) else -1
        seen = self._items.get(key)
        if seen is None:
            seen = self._items[key] = _Seen(kind)
        return seen

    def _text(self, data: Mapping[str, Any], delta: str, final: str | None = None) -> list[Event]:
        seen = self._seen(data.get("output_index"), "message")
        if final is not None:  # a .done: whatever of the text did not come as deltas
            delta = _rest(seen.text, final)
        if not delta:
            return []
        seen.text.append(delta)
        return [self._chunk({"content": delta})]

    def _arguments(self, index: Any, delta: str, final: str | None = None) -> list[Event]:
        seen = self._seen(index, "function_call")
        if seen.tool_index < 0:
            return []  # arguments of a call whose item never came: nothing to attach them to
        if final is not None:
            delta = _rest(seen.text, final)
        if not delta:
            return []
        seen.text.append(delta)
        return [self._chunk({"tool_calls": [{"index": seen.tool_index, "function": {"arguments": delta}}]})]

    def _item(self, index: Any, item: Mapping[str, Any]) -> list[Event]:
        kind = str(item.get("type"))
        if kind == "function_call":
            seen = self._seen(index, kind)
            out: list[Event] = []
            if seen.tool_index < 0:
                seen.tool_index, self._tools = self._tools, self._tools + 1
                call = {"index": seen.tool_index, "id": str(item.get("call_id") or ""), "type": "function",
                        "function": {"name": str(item.get("name") or ""), "arguments": ""}}
                out.append(self._chunk({"tool_calls": [call]}))
            return out + self._arguments(index, "", final=str(item.get("arguments") or ""))
        if kind == "message":
            seen = self._seen(index, kind)
            out = []
            texts = [str(p.get("text") or "") for p in item.get("content") or () if obj(p).get("type") == "output_text"]
            if texts:
                out.extend(self._text({"output_index": index}, "", final="".join(texts)))
            refusal = _rest(seen.refusal, "".join(str(p.get("refusal") or "") for p in item.get("content") or ()
                                                  if obj(p).get("type") == "refusal"))
            if refusal:
                seen.refusal.append(refusal)
                out.append(self._chunk({"refusal": refusal}))
            return out
        if kind == "reasoning":
            seen = self._seen(index, kind)
            rest = _rest(seen.reasoning, _reasoning_text(item))
            if rest:
                seen.reasoning.append(rest)
                return [self._chunk({"reasoning_content": rest})]
            return []
        self.drop(f"output.{kind}")
        return []

    def _end(self, response: Mapping[str, Any]) -> list[Event]:
        out: list[Event] = []
        for index, item in enumerate(response.get("output") or ()):
            out.extend(self._item(index, obj(item)))
        usage = chat_usage(response.get("usage"))
        self.usage = usage_of(response.get("usage"))
        out.append(self._chunk({}, _finish(response, self._tools > 0)))
        if usage is not None:
            out.append((None, {"id": self._id, "object": "chat.completion.chunk", "created": self.created, "model": self._model,
                               "choices": [], "usage": usage}))
        self._done = True
        return out


def _finish(response: Mapping[str, Any], called: bool) -> str:
    if response.get("status") == "incomplete":
        reason = obj(response.get("incomplete_details")).get("reason")
        return "content_filter" if reason == "content_filter" else "length"
    return "tool_calls" if called else "stop"


def _reasoning_text(item: Mapping[str, Any]) -> str:
    parts = [p for p in item.get("content") or () if obj(p).get("type") == "reasoning_text"]
    if not parts:
        parts = [p for p in item.get("summary") or () if obj(p).get("type") == "summary_text"]
    return "".join(str(p.get("text") or "") for p in parts)


def _int(value: Any, default: int) -> int:
    if isinstance(value, bool):
        return default
    if isinstance(value, (int, float)):
        return int(value)
    return default
