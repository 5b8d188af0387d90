"""The Responses API of the fake OpenAI provider (:class:`~modelroute.testing.fake_openai.FakeOpenAI`).

``POST /v1/responses`` answers whole or streamed, in the shapes of OpenAI's reference
(https://platform.openai.com/docs/api-reference/responses, ``/responses/object``,
``/responses-streaming``) and the ``openai`` SDK's types: a ``response`` object with every field
(``object: "response"``, ``status``, ``output`` items, ``usage`` with its details; no ``output_text``,
which only SDKs add), or the semantic events in order, each with its ``sequence_number``
(``response.created``, ``response.in_progress``, ``response.output_item.added``,
``response.content_part.added``, ``response.output_text.delta`` / ``.done``,
``response.content_part.done``, ``response.function_call_arguments.delta`` / ``.done``,
``response.output_item.done``, ``response.completed`` or ``response.incomplete``; ``error`` and
``response.failed`` when a fault breaks a stream). No ``[DONE]``: the Responses API ends with its
terminal event.

Answers are deterministic and like the chat fake's: ``[model] you said: ...`` (the first 40 words of
the last user text, cut at ``max_output_tokens`` words with status ``incomplete``), ``[model] the tool
said: ...`` after a function call output, a call of the forced or first function tool with arguments
sampled from its schema, JSON sampled from a ``text.format`` json_schema (``{"model", "echo"}`` for
json_object), a ``web_search_call`` before the answer when a web search tool is given, and a
reasoning item (reasoning tokens in usage) when ``reasoning.effort`` asks for one. Scripted outputs
(:meth:`~modelroute.testing.fake_openai.FakeOpenAI.script`) replace the deterministic answer.

State as the API keeps it: responses are stored unless ``store: false``; ``previous_response_id``
continues a stored one (400 ``previous_response_not_found`` otherwise, as OpenAI answers);
``GET`` / ``DELETE /v1/responses/{id}``, ``GET /v1/responses/{id}/input_items`` (newest first by
default) and ``item_reference`` items read the store. Requests are checked as the API checks them
(:mod:`fake_openai_responses_rules`).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from modelroute.testing.fake_anthropic_rules import sample
from modelroute.testing.fake_openai_responses_rules import Problem, check
from modelroute.testing.server import words_of

if TYPE_CHECKING:
    from modelroute.testing.fake_openai import FakeOpenAI, Fault

#: Reasoning tokens the fake reports per effort.
REASONING_TOKENS = {"minimal": 4, "low": 8, "medium": 16, "high": 32, "xhigh": 64}


@dataclass
class Stored:
    """A stored response: the object, and the items of its conversation (history + input + output)."""

    response: dict[str, Any]
    input_items: list[dict[str, Any]]  # this request's input items, with ids
    conversation: list[dict[str, Any]] = field(default_factory=list)


def error(status: int, message: str, param: str | None = None, code: str | None = None,
          kind: str = "invalid_request_error", headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": {"message": message, "type": kind, "param": param, "code": code}},
                             status=status, headers=headers)


class ResponsesAPI:
    """The ``/v1/responses`` routes of one fake, reading and writing its state."""

    def __init__(self, fake: FakeOpenAI) -> None:
        self.fake = fake

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/responses", self._create)
        app.router.add_get("/v1/responses/{id}", self._get)
        app.router.add_delete("/v1/responses/{id}", self._delete)
        app.router.add_get("/v1/responses/{id}/input_items", self._input_items)

    @staticmethod
    def new_id(prefix: str) -> str:
        """Unique like OpenAI's (ids of two fakes never collide: a sidecar may hold both)."""
        return f"{prefix}_{secrets.token_hex(24)}"

    # -- create ------------------------------------------------------------------------------
    async def _create(self, request: web.Request) -> web.StreamResponse:
        fake = self.fake
        if "responses" not in fake.speaks:
            return error(404, f"Invalid URL (POST {request.path})")
        body, early, fault = await fake._receive(request, input_tokens)
        if early is not None:
            return early
        history: list[dict[str, Any]] = []
        previous = body.get("previous_response_id")
        if previous:
            stored = fake.responses.get(str(previous))
            if stored is None:
                return error(400, f"Previous response with id '{previous}' not found.", "previous_response_id",
                             "previous_response_not_found")
            history = stored.conversation
        items, missing = self._resolve(body.get("input"))
        if missing is not None:
            return error(404, f"Item with id '{missing}' not found.", "input")
        problem: Problem | None = check({**body, "input": items}, history)
        if problem is not None:
            return error(400, problem.message, problem.param, problem.code)
        response = self._answer(body, items if isinstance(items, list) else [], history)
        if body.get("store") is not False:
            inputs = self._with_ids(items)
            fake.responses[response["id"]] = Stored(response, inputs, [*history, *inputs, *response["output"]])
        if body.get("stream"):
            return await self._stream(request, response, fault)
        return web.json_response(fake._mangled(response))

    def _resolve(self, items: Any) -> tuple[Any, str | None]:
        """``input`` with ``item_reference`` items replaced by the stored items they name."""
        if not isinstance(items, list):
            return items, None
        known = {i.get("id"): i for s in self.fake.responses.values() for i in s.conversation if isinstance(i, dict)}
        out = []
        for item in items:
            if isinstance(item, dict) and item.get("type") == "item_reference":
                if item.get("id") not in known:
                    return items, str(item.get("id"))
                item = known[item["id"]]
            out.append(item)
        return out, None

    def _with_ids(self, items: Any) -> list[dict[str, Any]]:
        """Input items as the API lists them: with ids, message content as parts."""
        if isinstance(items, str):
            items = [{"role": "user", "content": items}]
        out = []
        for item in items or ():
            kind = item.get("type", "message")
            item = {**item, "type": kind}
            if kind == "message":
                content = item.get("content")
                if isinstance(content, str):
                    part = "output_text" if item.get("role") == "assistant" else "input_text"
                    item["content"] = [{"type": part, "text": content}]
                item.setdefault("status", "completed")
            item.setdefault("id", self.new_id({"message": "msg", "function_call": "fc", "function_call_output": "fco"}.get(kind, "item")))
            out.append(item)
        return out

    # -- the answer --------------------------------------------------------------------------
    def _answer(self, body: dict[str, Any], items: list[Any], history: list[dict[str, Any]]) -> dict[str, Any]:
        model = body.get("model")
        output = self.fake.replies.pop(0) if self.fake.replies else self._output(body, [*history, *items])
        status, incomplete = "completed", None
        limit = body.get("max_output_tokens")
        for item in output:
            if item.get("type") == "message" and isinstance(limit, int):
                for part in item["content"]:
                    words = str(part.get("text", "")).split(" ")
                    if part.get("type") == "output_text" and len(words) > limit:
                        part["text"] = " ".join(words[:limit])
                        status, incomplete, item["status"] = "incomplete", {"reason": "max_output_tokens"}, "incomplete"
        reasoning = REASONING_TOKENS.get(str((body.get("reasoning") or {}).get("effort")), 0)
        prompt = prompt_tokens(body, [*history, *items])
        cached = min(self.fake.cached_tokens, prompt)
        completion = output_tokens(output) + reasoning
        now = int(time.time())
        echo = {k: body.get(k) for k in ("instructions", "max_output_tokens", "max_tool_calls", "previous_response_id",
                                         "prompt_cache_key", "safety_identifier", "user")}
        return {
            "id": self.new_id("resp"), "object": "response", "created_at": now, "status": status, "background": False,
            "error": None, "incomplete_details": incomplete, **echo, "model": model, "output": output,
            "parallel_tool_calls": body.get("parallel_tool_calls", True),
            "reasoning": {"effort": None, "summary": None, **(body.get("reasoning") or {})},
            "service_tier": "default", "store": body.get("store", True), "temperature": body.get("temperature", 1.0),
            "text": {"format": {"type": "text"}, "verbosity": "medium", **(body.get("text") or {})},
            "tool_choice": body.get("tool_choice", "auto"), "tools": body.get("tools") or [],
            "top_logprobs": body.get("top_logprobs", 0), "top_p": body.get("top_p", 1.0),
            "truncation": body.get("truncation", "disabled"),
            "usage": {"input_tokens": prompt, "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": 0},
                      "output_tokens": completion, "output_tokens_details": {"reasoning_tokens": reasoning},
                      "total_tokens": prompt + completion},
            "metadata": body.get("metadata") or {}, "completed_at": now if status == "completed" else None,
        }

    def _output(self, body: dict[str, Any], conversation: list[Any]) -> list[dict[str, Any]]:
        model = body.get("model")
        if isinstance(body.get("input"), str):
            conversation = [*conversation, {"role": "user", "content": body["input"]}]
        last = conversation[-1] if conversation else {}
        prompt = text_of(last.get("content")) if isinstance(last, dict) else ""
        out: list[dict[str, Any]] = []
        effort = (body.get("reasoning") or {}).get("effort")
        if effort in REASONING_TOKENS:
            summary = [{"type": "summary_text", "text": f"The user wrote: {prompt[:40]}"}] if (body.get("reasoning") or {}).get("summary") else []
            encrypted = "enc_" + str(len(prompt)) if "reasoning.encrypted_content" in (body.get("include") or []) else None
            out.append({"id": self.new_id("rs"), "type": "reasoning", "summary": summary, "encrypted_content": encrypted})
        tools = [t for t in body.get("tools") or () if isinstance(t, dict)]
        functions = [t for t in tools if t.get("type") == "function"]
        choice = body.get("tool_choice", "auto")
        if isinstance(last, dict) and last.get("type") == "function_call_output":
            said = last.get("output") if isinstance(last.get("output"), str) else text_of(last.get("output"))
            return [*out, self._message(f"[{model}] the tool said: {said}")]
        if functions and choice != "none":
            name = choice.get("name") if isinstance(choice, dict) and choice.get("type") == "function" else functions[0]["name"]
            tool = next((t for t in functions if t["name"] == name), functions[0])
            args = json.dumps(sample(tool.get("parameters") or {"type": "object", "properties": {"query": {"type": "string"}}}, prompt))
            out.append({"id": self.new_id("fc"), "type": "function_call", "status": "completed", "arguments": args,
                        "call_id": self.new_id("call")[:29], "name": tool["name"]})
            return out
        if any(str(t.get("type")).startswith("web_search") for t in tools):
            out.append({"id": self.new_id("ws"), "type": "web_search_call", "status": "completed",
                        "action": {"type": "search", "query": prompt[:40]}})
        fmt = ((body.get("text") or {}).get("format") or {})
        if fmt.get("type") == "json_schema":
            return [*out, self._message(json.dumps(sample(fmt.get("schema") or {}, prompt)))]
        if fmt.get("type") == "json_object":
            return [*out, self._message(json.dumps({"model": model, "echo": prompt[:40]}))]
        words = words_of(prompt, max(40, self.fake.answer_words)) if self.fake.answer_words > 12 else prompt.split()[:40]
        return [*out, self._message(f"[{model}] you said: {' '.join(words)}")]

    def _message(self, text: str) -> dict[str, Any]:
        return {"id": self.new_id("msg"), "type": "message", "status": "completed", "role": "assistant",
                "content": [{"type": "output_text", "annotations": [], "logprobs": [], "text": text}]}

    # -- streaming ---------------------------------------------------------------------------
    async def _stream(self, request: web.Request, response: dict[str, Any], fault: Fault | None) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await resp.prepare(request)
        events = stream_events(response)
        for n, (name, data) in enumerate(events):
            if fault is not None and fault.cut_after is not None and n >= fault.cut_after:
                assert request.transport is not None
                request.transport.close()
                return resp
            if fault is not None and fault.error_after is not None and n >= fault.error_after:
                for name, data in failure_events(response, n):
                    await resp.write(_sse(name, data))
                break
            if fault is not None and fault.chunk_delay:
                await asyncio.sleep(fault.chunk_delay)
            await resp.write(_sse(name, self.fake._mangled(data)))
        await resp.write_eof()
        return resp

    # -- reading the store -------------------------------------------------------------------
    def _stored(self, request: web.Request) -> Stored | web.Response:
        if "responses" not in self.fake.speaks:
            return error(404, f"Invalid URL ({request.method} {request.path})")
        if not self.fake.authorized(request):
            return error(401, "Incorrect API key provided.", None, "invalid_api_key")
        id = request.match_info["id"]
        stored = self.fake.responses.get(id)
        return stored if stored is not None else error(404, f"Response with id '{id}' not found.")

    async def _get(self, request: web.Request) -> web.Response:
        stored = self._stored(request)
        return stored if isinstance(stored, web.Response) else web.json_response(stored.response)

    async def _delete(self, request: web.Request) -> web.Response:
        stored = self._stored(request)
        if isinstance(stored, web.Response):
            return stored
        del self.fake.responses[stored.response["id"]]
        return web.json_response({"id": stored.response["id"], "object": "response.deleted", "deleted": True})

    async def _input_items(self, request: web.Request) -> web.Response:
        stored = self._stored(request)
        if isinstance(stored, web.Response):
            return stored
        items = list(stored.input_items)
        if request.query.get("order", "desc") == "desc":
            items.reverse()
        after = request.query.get("after")
        if after:
            ids = [i["id"] for i in items]
            items = items[ids.index(after) + 1:] if after in ids else []
        limit = int(request.query.get("limit", "20"))
        page = items[:limit]
        return web.json_response({"object": "list", "data": page, "first_id": page[0]["id"] if page else None,
                                  "last_id": page[-1]["id"] if page else None, "has_more": len(items) > limit})


def stream_events(response: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The semantic events of a whole ``response``, in the API's order, numbered from 0."""
    start = {**response, "status": "in_progress", "output": [], "usage": None, "incomplete_details": None,
             "completed_at": None}
    raw: list[tuple[str, dict[str, Any]]] = [("response.created", {"response": start}), ("response.in_progress", {"response": start})]
    for index, item in enumerate(response["output"]):
        raw.extend(_item_events(index, item))
    raw.append(("response.completed" if response["status"] == "completed" else "response.incomplete", {"response": response}))
    return [(name, {"type": name, "sequence_number": n, **data}) for n, (name, data) in enumerate(raw)]


def failure_events(response: dict[str, Any], sequence: int) -> list[tuple[str, dict[str, Any]]]:
    """How a stream ends when the model fails after it began: ``error``, then ``response.failed``."""
    failed = {**response, "status": "failed", "output": [], "usage": None, "completed_at": None,
              "error": {"code": "server_error", "message": "The model failed to generate a response."}}
    return [("error", {"type": "error", "sequence_number": sequence, "code": "server_error",
                       "message": "The model failed to generate a response.", "param": None}),
            ("response.failed", {"type": "response.failed", "sequence_number": sequence + 1, "response": failed})]


def _item_events(index: int, item: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    kind = item["type"]
    where = {"item_id": item["id"], "output_index": index}
    events: list[tuple[str, dict[str, Any]]] = []
    if kind == "message":
        events.append(("response.output_item.added", {"output_index": index, "item": {**item, "status": "in_progress", "content": []}}))
        for j, part in enumerate(item["content"]):
            at = {**where, "content_index": j}
            if part["type"] == "output_text":
                events.append(("response.content_part.added", {**at, "part": {**part, "text": ""}}))
                words = part["text"].split(" ")
                events += [("response.output_text.delta", {**at, "delta": w if i == 0 else " " + w, "logprobs": []})
                           for i, w in enumerate(words)]
                events.append(("response.output_text.done", {**at, "text": part["text"], "logprobs": []}))
            else:
                events.append(("response.content_part.added", {**at, "part": {**part, "refusal": ""}}))
                events.append(("response.refusal.delta", {**at, "delta": part["refusal"]}))
                events.append(("response.refusal.done", {**at, "refusal": part["refusal"]}))
            events.append(("response.content_part.done", {**at, "part": part}))
    elif kind == "function_call":
        events.append(("response.output_item.added", {"output_index": index, "item": {**item, "status": "in_progress", "arguments": ""}}))
        args = item["arguments"]
        events += [("response.function_call_arguments.delta", {**where, "delta": args[i:i + 8]}) for i in range(0, len(args), 8)]
        events.append(("response.function_call_arguments.done", {**where, "arguments": args}))
    elif kind == "reasoning":
        events.append(("response.output_item.added", {"output_index": index, "item": {**item, "summary": []}}))
        for j, part in enumerate(item.get("summary") or ()):
            at = {**where, "summary_index": j}
            events.append(("response.reasoning_summary_part.added", {**at, "part": {**part, "text": ""}}))
            events.append(("response.reasoning_summary_text.delta", {**at, "delta": part["text"]}))
            events.append(("response.reasoning_summary_text.done", {**at, "text": part["text"]}))
            events.append(("response.reasoning_summary_part.done", {**at, "part": part}))
    else:
        events.append(("response.output_item.added", {"output_index": index, "item": {**item, "status": "in_progress"}}))
        if kind == "web_search_call":
            events += [(f"response.web_search_call.{step}", dict(where)) for step in ("in_progress", "searching", "completed")]
    events.append(("response.output_item.done", {"output_index": index, "item": item}))
    return events


def _sse(name: str, data: Any) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + json.dumps(data).encode() + b"\n\n"


def text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("text"))
    return ""


def prompt_tokens(body: dict[str, Any], conversation: list[Any]) -> int:
    """One token per 4 characters, 4 per item (as the chat fake counts messages)."""
    items = [i for i in conversation if isinstance(i, dict)]
    chars = len(str(body.get("instructions") or ""))
    chars += sum(len(text_of(i.get("content")) or str(i.get("output") or i.get("arguments") or "")) for i in items)
    if isinstance(body.get("input"), str):
        chars, items = chars + len(body["input"]), [*items, {}]
    chars += len(json.dumps(body["tools"])) if body.get("tools") else 0
    return chars // 4 + 4 * len(items)


def input_tokens(body: dict[str, Any]) -> int:
    """The input tokens of a request without its conversation's history."""
    items = body.get("input")
    return prompt_tokens(body, items if isinstance(items, list) else [])


def output_tokens(output: list[dict[str, Any]]) -> int:
    words = 0
    for item in output:
        if item.get("type") == "message":
            words += sum(len(str(p.get("text") or p.get("refusal") or "").split()) for p in item["content"])
        elif item.get("type") == "function_call":
            words += max(1, len(item["arguments"]) // 4)
    return max(1, words)
