"""Responses client, Chat Completions upstream: a ``POST /v1/responses`` served by a chat model.

:class:`ResponsesToChat` is created per request. The request mapping lives in
:mod:`modelroute.providers.responses_chat_request`; this module turns the chat answer into the
Responses API's, following OpenAI's reference (https://platform.openai.com/docs/api-reference/responses/object,
https://platform.openai.com/docs/api-reference/responses-streaming) and the SDK's types
(``openai/types/responses/response_*_event.py``):

* ``reasoning_content`` -> a ``reasoning`` item (``reasoning_text`` content) first; ``content`` ->
  an assistant ``message`` item with an ``output_text`` part (annotations carried), ``refusal`` ->
  a ``refusal`` part; ``tool_calls`` -> ``function_call`` items (``call_id`` is the chat tool
  call id, the item id a new ``fc_`` id);
* ``finish_reason`` -> ``status``: ``length`` is ``incomplete`` with ``incomplete_details.reason:
  max_output_tokens``, ``content_filter`` is ``incomplete`` with ``content_filter``;
* usage with cached, cache-write and reasoning tokens (:mod:`responses_objects`).

Streams become the semantic events, each with its ``sequence_number`` from 0: ``response.created``,
``response.in_progress``, then per item ``response.output_item.added``, ``response.content_part.added``,
``response.output_text.delta`` ... ``.done`` (``response.refusal.*``, ``response.reasoning_text.*``),
``response.content_part.done``, ``response.function_call_arguments.delta`` ... ``.done``,
``response.output_item.done``, and last ``response.completed`` (or ``response.incomplete``) with
the whole response and its usage. Function calls are items of their own, so tool-call argument
deltas that an upstream interleaves are reassembled by their chat index into their own item: a
``function_call`` is never closed before its upstream call is, and never carries another's
arguments. When the upstream fails mid-stream, :meth:`ResponsesToChat.failed` gives the closing
``error`` and ``response.failed`` events, numbered on.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Mapping

from modelroute.providers.base import ErrorKind
from modelroute.providers.responses_chat_request import Resolver, ResponsesRequestMapper
from modelroute.providers.responses_objects import (
    STATUS_OF_FINISH, IdMaker, function_call_item, message_item, new_id, reasoning_item, refusal_part, response_object,
    responses_usage, text_part, usage_of,
)
from modelroute.providers.translate import Event, Translator, obj


@dataclass(slots=True)
class _Item:
    """An output item being streamed. The text of its open part (a message's text or refusal,
    the reasoning text, the arguments) is kept as pieces, joined once when it closes: a long
    answer costs linear time, not quadratic."""

    index: int  # output_index
    kind: str  # message | function_call | reasoning
    id: str
    call_id: str = ""
    name: str = ""
    parts: list[dict[str, Any]] = field(default_factory=list)  # a message's closed parts
    open: str | None = None  # the type of a message's open part (output_text | refusal)
    pieces: list[str] = field(default_factory=list)
    done: bool = False

    @property
    def text(self) -> str:
        return "".join(self.pieces)

    def all_parts(self) -> list[dict[str, Any]]:
        """A message's parts, the open one with its text so far."""
        if self.open is None:
            return [dict(p) for p in self.parts]
        return [*(dict(p) for p in self.parts), _part(self.open, self.text)]


def _part(kind: str, text: str) -> dict[str, Any]:
    return text_part(text) if kind == "output_text" else refusal_part(text)


class ResponsesToChat(Translator):
    source = "responses"
    target = "chat"

    def __init__(self, *, lenient: bool = False, resolve: Resolver | None = None, response_id: str | None = None,
                 created: int | None = None, ids: IdMaker = new_id) -> None:
        super().__init__()
        self.lenient = lenient  # Responses-only content is dropped (and named) instead of refused
        self._mapper = ResponsesRequestMapper(self.drop, lenient, resolve)
        self._ids = ids
        self.response_id = response_id or ids("resp")
        self.created = created if created is not None else int(time.time())
        self._request: Mapping[str, Any] = {}
        self._model: Any = None
        self._seq = 0
        self._started = False
        self._done = False
        self._items: list[_Item] = []
        self._current: _Item | None = None  # the open message or reasoning item
        self._calls: dict[int, _Item] = {}  # chat tool call index -> its function_call item
        self._finish: str | None = None
        self._usage: dict[str, Any] | None = None

    # -- request ---------------------------------------------------------------------------
    def request(self, body: Mapping[str, Any]) -> dict[str, Any]:
        self._request = body
        self._model = body.get("model")
        return self._mapper.map(body)

    # -- whole answer ----------------------------------------------------------------------
    def response(self, body: Mapping[str, Any]) -> dict[str, Any]:
        choices = body.get("choices") or [{}]
        choice = obj(choices[0])
        message = obj(choice.get("message"))
        status, reason = STATUS_OF_FINISH.get(str(choice.get("finish_reason")), ("completed", None))
        output: list[dict[str, Any]] = []
        if message.get("reasoning_content"):
            output.append(reasoning_item(self._ids("rs"), "completed", str(message["reasoning_content"])))
        if message.get("thinking_blocks"):
            self.drop("thinking_blocks")  # signatures cannot be carried in a reasoning item
        parts = []
        text = _text(message.get("content"))
        if text:
            part = text_part(text)
            part["annotations"] = self._annotations(message.get("annotations"))
            parts.append(part)
        if message.get("refusal"):
            parts.append(refusal_part(str(message["refusal"])))
        if parts:
            output.append(message_item(self._ids("msg"), "completed" if status == "completed" else "incomplete", parts))
        for call in message.get("tool_calls") or ():
            fn = obj(obj(call).get("function"))
            output.append(function_call_item(self._ids("fc"), "completed", str(call.get("id") or ""), str(fn.get("name") or ""),
                                             str(fn.get("arguments") or "")))
        usage = responses_usage(body.get("usage"))
        self.usage = usage_of(usage)
        return response_object(self._request, id=self.response_id, model=body.get("model", self._model),
                               created_at=_created(body, self.created), status=status, output=output, usage=usage,
                               incomplete=reason)

    def _annotations(self, annotations: Any) -> list[dict[str, Any]]:
        out = []
        for note in annotations or ():
            cite = obj(obj(note).get("url_citation"))
            if note.get("type") == "url_citation" and cite:
                out.append({"type": "url_citation", "start_index": cite.get("start_index", 0),
                            "end_index": cite.get("end_index", 0), "title": cite.get("title", ""), "url": cite.get("url", "")})
            else:
                self.drop("annotations")
        return out

    # -- stream ----------------------------------------------------------------------------
    @property
    def finished(self) -> bool:
        return self._done

    def event(self, name: str | None, data: Mapping[str, Any]) -> list[Event]:
        out: list[Event] = [] if self._started else self._start(data)
        if isinstance(data.get("usage"), dict):
            self._usage = data["usage"]
        for choice in data.get("choices") or ():
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = obj(choice.get("delta"))
            if delta.get("reasoning_content"):
                out.extend(self._reasoning(str(delta["reasoning_content"])))
            if delta.get("content"):
                out.extend(self._text("output_text", _text(delta["content"])))
            if delta.get("refusal"):
                out.extend(self._text("refusal", str(delta["refusal"])))
            for call in delta.get("tool_calls") or ():
                out.extend(self._tool_delta(obj(call)))
            if delta.get("thinking_blocks"):
                self.drop("thinking_blocks")
            if choice.get("finish_reason"):
                self._finish = str(choice["finish_reason"])
                out.extend(self._close_all())
        return out

    def end(self) -> list[Event]:
        out: list[Event] = [] if self._started else self._start({})
        out.extend(self._close_all())
        status, reason = STATUS_OF_FINISH.get(str(self._finish), ("completed", None))
        usage = responses_usage(self._usage)
        self.usage = usage_of(usage)
        name = "response.completed" if status == "completed" else "response.incomplete"
        out.append(self._emit(name, {"response": self._snapshot(status, usage, reason)}))
        self._done = True
        return out

    def failed(self, kind: ErrorKind, message: str = "The model failed to generate a response.") -> list[Event]:
        """The events that end the client's stream when the upstream broke after it started: an
        ``error`` event, then ``response.failed`` with what was produced so far. ``message`` must
        be the sidecar's own words (an upstream's text may hold secrets)."""
        out: list[Event] = [] if self._started else self._start({})
        code = "rate_limit_exceeded" if kind is ErrorKind.RATE_LIMITED else "server_error"
        out.append(self._emit("error", {"code": code, "message": message, "param": None}))
        error = {"code": code, "message": message}
        out.append(self._emit("response.failed", {"response": {**self._snapshot("failed", None, None), "error": error}}))
        self._done = True
        return out

    def _emit(self, name: str, payload: dict[str, Any]) -> Event:
        event = (name, {"type": name, "sequence_number": self._seq, **payload})
        self._seq += 1
        return event

    def _snapshot(self, status: str, usage: dict[str, Any] | None, reason: str | None) -> dict[str, Any]:
        output = [self._final(item, status) for item in self._items]
        return response_object(self._request, id=self.response_id, model=self._model, created_at=self.created,
                               status=status, output=output, usage=usage, incomplete=reason)

    def _final(self, item: _Item, status: str) -> dict[str, Any]:
        """The item as it stands; ``status`` is the response's (an item left open by a failed or
        cut-short response is incomplete)."""
        if item.done:
            state = "incomplete" if status == "incomplete" else "completed"
        else:
            state = "incomplete" if status in ("incomplete", "failed") else "in_progress"
        if item.kind == "message":
            return message_item(item.id, state, item.all_parts())
        if item.kind == "reasoning":
            reasoning = reasoning_item(item.id, state, item.text)
            if state == "in_progress" and not item.text:
                reasoning["content"] = []  # its reasoning_text part is added by content_part.added
            return reasoning
        return function_call_item(item.id, state, item.call_id, item.name, item.text)

    def _start(self, chunk: Mapping[str, Any]) -> list[Event]:
        self._started = True
        self._model = chunk.get("model") or self._model
        self.created = _created(chunk, self.created)
        snapshot = self._snapshot("in_progress", None, None)
        return [self._emit("response.created", {"response": snapshot}),
                self._emit("response.in_progress", {"response": snapshot})]

    def _open(self, kind: str, id_prefix: str, call_id: str = "", name: str = "") -> tuple[_Item, list[Event]]:
        item = _Item(len(self._items), kind, self._ids(id_prefix), call_id=call_id, name=name)
        self._items.append(item)
        return item, [self._emit("response.output_item.added", {"output_index": item.index, "item": self._final(item, "")})]

    def _reasoning(self, text: str) -> list[Event]:
        out: list[Event] = []
        item = self._current
        if item is None or item.kind != "reasoning":
            out.extend(self._close_current())
            item, added = self._open("reasoning", "rs")
            self._current = item
            part = {"type": "reasoning_text", "text": ""}
            out += [*added, self._emit("response.content_part.added", {"item_id": item.id, "output_index": item.index,
                                                                       "content_index": 0, "part": part})]
        item.pieces.append(text)
        out.append(self._emit("response.reasoning_text.delta", {"item_id": item.id, "output_index": item.index,
                                                                "content_index": 0, "delta": text}))
        return out

    def _text(self, kind: str, text: str) -> list[Event]:
        out: list[Event] = []
        item = self._current
        if item is None or item.kind != "message":
            out.extend(self._close_current())
            item, added = self._open("message", "msg")
            self._current = item
            out.extend(added)
        where = {"item_id": item.id, "output_index": item.index, "content_index": len(item.parts)}
        if item.open != kind:
            out.extend(self._close_part(item))
            item.open = kind
            where["content_index"] = len(item.parts)
            out.append(self._emit("response.content_part.added", {**where, "part": _part(kind, "")}))
        item.pieces.append(text)
        if kind == "output_text":
            out.append(self._emit("response.output_text.delta", {**where, "delta": text, "logprobs": []}))
        else:
            out.append(self._emit("response.refusal.delta", {**where, "delta": text}))
        return out

    def _tool_delta(self, call: Mapping[str, Any]) -> list[Event]:
        index = call.get("index", 0)
        fn = obj(call.get("function"))
        out: list[Event] = []
        item = self._calls.get(index)
        if item is None:
            out.extend(self._close_current())
            item, added = self._open("function_call", "fc", str(call.get("id") or ""), str(fn.get("name") or ""))
            self._calls[index] = item
            out.extend(added)
        arguments = fn.get("arguments")
        if arguments and not item.done:
            item.pieces.append(str(arguments))
            out.append(self._emit("response.function_call_arguments.delta",
                                  {"item_id": item.id, "output_index": item.index, "delta": str(arguments)}))
        return out

    def _close_part(self, item: _Item) -> list[Event]:
        if item.open is None:
            return []
        text = item.text
        part = _part(item.open, text)
        where = {"item_id": item.id, "output_index": item.index, "content_index": len(item.parts)}
        item.parts.append(part)
        item.open, item.pieces = None, []
        if part["type"] == "output_text":
            done = self._emit("response.output_text.done", {**where, "text": text, "logprobs": []})
        else:
            done = self._emit("response.refusal.done", {**where, "refusal": text})
        return [done, self._emit("response.content_part.done", {**where, "part": dict(part)})]

    def _close_current(self) -> list[Event]:
        item, self._current = self._current, None
        if item is None:
            return []
        return self._close(item)

    def _close(self, item: _Item) -> list[Event]:
        out: list[Event] = []
        if item.kind == "message":
            out.extend(self._close_part(item))
        elif item.kind == "reasoning":
            text = item.text
            where = {"item_id": item.id, "output_index": item.index, "content_index": 0}
            out += [self._emit("response.reasoning_text.done", {**where, "text": text}),
                    self._emit("response.content_part.done", {**where, "part": {"type": "reasoning_text", "text": text}})]
        else:
            out.append(self._emit("response.function_call_arguments.done",
                                  {"item_id": item.id, "output_index": item.index, "arguments": item.text}))
        item.done = True
        status = STATUS_OF_FINISH.get(str(self._finish), ("completed", None))[0]
        out.append(self._emit("response.output_item.done", {"output_index": item.index, "item": self._final(item, status)}))
        return out

    def _close_all(self) -> list[Event]:
        out = self._close_current()
        for item in self._items:
            if not item.done:
                out.extend(self._close(item))
        return out


def _text(content: Any) -> str:
    if isinstance(content, list):
        return "".join(str(p.get("text") or "") for p in content if isinstance(p, dict))
    return str(content) if content else ""


def _created(chunk: Mapping[str, Any], default: int) -> int:
    created = chunk.get("created")
    return created if isinstance(created, int) and not isinstance(created, bool) else default
