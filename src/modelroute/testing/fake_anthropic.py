"""A fake Anthropic provider: a real aiohttp server speaking the Messages API.

``POST /v1/messages`` answers as JSON or as the documented SSE sequence (``message_start``,
``ping``, ``content_block_start`` / ``content_block_delta`` (``text_delta``, ``input_json_delta``,
``thinking_delta``, ``signature_delta``) / ``content_block_stop``, ``message_delta``,
``message_stop``); ``POST /v1/messages/count_tokens`` counts. Usage carries cache reads and writes
(knobs). Requests are checked the way Anthropic checks them (required headers and fields, unknown
parameters, alternating roles, ``tool_result`` blocks answering the previous turn's ``tool_use``,
temperature range, thinking budget), so a translation slip fails loudly as a 400. Errors come as
Anthropic error bodies with Anthropic's statuses (529 overloaded included), and fault knobs break
answers on purpose (statuses, resets, delays, streams cut or ending in an ``error`` event).

Answers are deterministic: a scripted :class:`Reply` when one is queued, otherwise an echo, a call
of the first (or the forced) tool, a summary of tool results, or JSON matching
``output_config.format``. Message Batches and Models live in :mod:`fake_anthropic_batches`; any
other path gets Anthropic's 404 (``not_found_error``). Run alone with
``python -m modelroute.testing.fake_anthropic --port 9002``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Callable

from aiohttp import web

from modelroute.providers.anthropic_errors import anthropic_error_body
from modelroute.testing.fake_anthropic_batches import MessageBatches
from modelroute.testing.fake_anthropic_rules import check_request, sample, text_of
from modelroute.testing.org_limits import HEADERS, OrgLimiter, add_headers, anthropic_headers, requested_output
from modelroute.testing.server import Received, ServerBase, next_fault, words_of


@dataclass
class Fault:
    """What to do instead of a normal answer, for the next ``times`` requests (None: every one)."""

    status: int | None = None  # answer with this status and an Anthropic error body
    error_type: str | None = None  # that body's type (default: Anthropic's type for the status)
    retry_after: float | None = None
    delay: float = 0.0  # seconds before the answer starts
    reset: bool = False  # drop the connection without answering
    cut_after: int | None = None  # streams: drop the connection after this many events
    error_after: int | None = None  # streams: send an ``error`` event after this many events
    event_delay: float = 0.0  # streams: pause between events
    times: int | None = None


@dataclass
class Reply:
    """A scripted answer for the next request: content blocks as Anthropic returns them."""

    content: list[dict[str, Any]]
    stop_reason: str = "end_turn"
    stop_sequence: str | None = None
    usage: dict[str, Any] | None = None  # default: computed like the deterministic answers


@dataclass
class FakeAnthropic(ServerBase):
    api_key: str | None = None  # when set, other x-api-key values get 401
    cache_read_tokens: int = 0  # reported as usage.cache_read_input_tokens
    cache_creation_tokens: int = 0  # reported as usage.cache_creation_input_tokens
    context_windows: dict[str, int] = field(default_factory=dict)  # upstream model -> window
    faults: dict[str, list[Fault]] = field(default_factory=dict)  # upstream model or "*" -> faults
    replies: list[Reply] = field(default_factory=list)
    requests: list[Received] = field(default_factory=list)
    record: bool = True
    mangle: Callable[[dict[str, Any]], Any] | None = None  # rewrites each answer and event payload before it is sent
    batches: dict[str, dict[str, Any]] = field(default_factory=dict)  # message_batch objects by id
    batch_requests: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    batch_results: dict[str, bytes] = field(default_factory=dict)  # JSONL, once ended
    batch_polls: dict[str, int] = field(default_factory=dict)
    polls_to_end: int = 1  # retrievals of a batch before it ends
    expire: set[str] = field(default_factory=set)  # custom ids whose batch requests expire
    models: set[str] = field(default_factory=lambda: {"claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-4-1"})
    org: OrgLimiter | None = None  # the organisation's rpm / itpm / otpm limits, shared by every caller
    answer_words: int = 12  # prompt words an answer repeats (cycled: long streams)

    def routes(self, app: web.Application) -> None:
        app.on_response_prepare.append(add_headers)
        app.router.add_post("/v1/messages", self._messages)
        app.router.add_post("/v1/messages/count_tokens", self._count_tokens)
        MessageBatches(self).routes(app)

    def end_batches(self) -> None:
        """End every batch now (its requests processed, or canceled when it was being canceled)."""
        MessageBatches(self).end_all()

    def authorized(self, request: web.Request) -> bool:
        """The key as ``x-api-key``, or as a bearer token (how current Anthropic SDKs send an API key)."""
        if self.api_key is None:
            return True
        return self.api_key in (request.headers.get("x-api-key"), request.headers.get("Authorization", "").removeprefix("Bearer "))

    def unknown_path(self, request: web.Request) -> web.Response:
        return _error(404, "Not Found", "not_found_error")

    def answer_message(self, body: dict[str, Any]) -> dict[str, Any]:
        """The Messages answer the fake gives ``body`` (a scripted reply first), as a batch result too."""
        return self._answer(body)

    @property
    def base_url(self) -> str:
        """The API root without /v1, as Anthropic SDKs and ``type: anthropic`` providers take it."""
        return self.url

    def fail(self, model: str = "*", **knobs: Any) -> Fault:
        fault = Fault(**knobs)
        self.faults.setdefault(model, []).append(fault)
        return fault

    def script(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    def calls(self, model: str | None = None) -> list[Received]:
        return [r for r in self.requests if r.path == "/v1/messages" and (model is None or r.body.get("model") == model)]

    def unreadable(self, message: str) -> web.Response:
        return _error(400, message, "invalid_request_error")

    def _fault(self, model: str) -> Fault | None:
        return next_fault(self.faults, model)

    async def _receive(self, request: web.Request, count: bool) -> tuple[dict[str, Any], web.Response | None, Fault | None]:
        try:
            body = await request.json()
        except ValueError:
            return {}, _error(400, "There was an error parsing the body of your request."), None
        if self.record:
            self.requests.append(Received(request.path, dict(request.headers), body if isinstance(body, dict) else {}))
        if not self.authorized(request):
            return body, _error(401, "invalid x-api-key"), None
        if not request.headers.get("anthropic-version"):
            return body, _error(400, "anthropic-version: header is required"), None
        problem = check_request(body, count)
        if problem is not None:
            return body, _error(400, problem), None
        fault = self._fault(str(body.get("model")))
        if fault is not None:
            early = await _apply(request, fault)
            if early is not None:
                return body, early, None
        window = self.context_windows.get(str(body.get("model")))
        tokens = prompt_tokens(body)
        if self.org is not None and not count:
            verdict = self.org.charge(str(body.get("model")), tokens, requested_output(body))
            if verdict is not None:
                headers = anthropic_headers(verdict)
                if not verdict.ok:
                    return body, _error(429, "Number of request tokens has exceeded your per-minute rate limit", "rate_limit_error",
                                        headers), None
                request[HEADERS] = headers
        if window is not None and tokens > window:
            return body, _error(400, f"prompt is too long: {tokens} tokens > {window} maximum"), None
        return body, None, fault

    async def _count_tokens(self, request: web.Request) -> web.StreamResponse:
        body, early, _ = await self._receive(request, count=True)
        return early or web.json_response({"input_tokens": prompt_tokens(body)})

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        body, early, fault = await self._receive(request, count=False)
        if early is not None:
            return early
        message = self._answer(body)
        if body.get("stream"):
            return await self._stream(request, message, fault)
        return web.json_response(self._mangled(message), headers={"request-id": "req_" + _digest(body)[:16]})

    def _mangled(self, payload: dict[str, Any]) -> Any:
        return self.mangle(payload) if self.mangle is not None else payload

    def _usage(self, body: dict[str, Any], content: list[dict[str, Any]]) -> dict[str, Any]:
        total = prompt_tokens(body)
        read = min(self.cache_read_tokens, total)
        written = min(self.cache_creation_tokens, total - read)
        return {"input_tokens": total - read - written, "cache_creation_input_tokens": written,
                "cache_read_input_tokens": read, "output_tokens": output_tokens(content)}

    def _answer(self, body: dict[str, Any]) -> dict[str, Any]:
        if self.replies:
            reply = self.replies.pop(0)
            content, stop, sequence, usage = reply.content, reply.stop_reason, reply.stop_sequence, reply.usage
        else:
            content, stop, sequence = answer(body, self.answer_words)
            usage = None
        return {"id": "msg_" + _digest(body)[:24], "type": "message", "role": "assistant", "model": body.get("model"),
                "content": content, "stop_reason": stop, "stop_sequence": sequence,
                "usage": usage or self._usage(body, content)}

    async def _stream(self, request: web.Request, message: dict[str, Any], fault: Fault | None) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await resp.prepare(request)
        for n, (name, data) in enumerate(stream_events(message)):
            if fault is not None and fault.cut_after is not None and n >= fault.cut_after:
                assert request.transport is not None
                request.transport.close()
                return resp
            if fault is not None and fault.error_after is not None and n >= fault.error_after:
                error = anthropic_error_body(529, "Overloaded", fault.error_type or "overloaded_error")
                await resp.write(_sse("error", error))
                break
            if fault is not None and fault.event_delay:
                await asyncio.sleep(fault.event_delay)
            await resp.write(_sse(name, self._mangled(data)))
        await resp.write_eof()
        return resp


async def _apply(request: web.Request, fault: Fault) -> web.Response | None:
    if fault.delay:
        await asyncio.sleep(fault.delay)
    if fault.reset:
        assert request.transport is not None
        request.transport.close()
        raise ConnectionResetError("fault: reset")
    if fault.status is not None:
        headers = {"retry-after": str(fault.retry_after)} if fault.retry_after is not None else {}
        message = "Overloaded" if fault.status == 529 else f"fault {fault.status}"
        return _error(fault.status, message, fault.error_type, headers)
    return None


def _error(status: int, message: str, error_type: str | None = None, headers: dict[str, str] | None = None) -> web.Response:
    body = {**anthropic_error_body(status, message, error_type), "request_id": "req_fake"}
    return web.json_response(body, status=status, headers=headers)


def _sse(name: str, data: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + json.dumps(data).encode() + b"\n\n"


def _digest(body: Any) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def prompt_tokens(body: dict[str, Any]) -> int:
    """Deterministic stand-in for a tokenizer: one token per 4 characters, 4 per message."""
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    chars = len(text_of(body.get("system"))) + sum(len(text_of(m.get("content"))) for m in messages)
    chars += len(json.dumps(body["tools"])) if body.get("tools") else 0
    return chars // 4 + 4 * len(messages)


def output_tokens(content: list[dict[str, Any]]) -> int:
    words = 0
    for block in content:
        if block.get("type") == "text":
            words += len(str(block.get("text", "")).split())
        elif block.get("type") == "thinking":
            words += len(str(block.get("thinking", "")).split())
        elif block.get("type") == "tool_use":
            words += max(1, len(json.dumps(block.get("input"))) // 4)
    return max(1, words)


def answer(body: dict[str, Any], limit: int = 12) -> tuple[list[dict[str, Any]], str, str | None]:
    """The deterministic answer: (content blocks, stop_reason, stop_sequence)."""
    model = body.get("model")
    last = (body.get("messages") or [{}])[-1]
    content = last.get("content")
    blocks = content if isinstance(content, list) else []
    prompt = text_of(content)
    out: list[dict[str, Any]] = []
    thinking = body.get("thinking") or {}
    if thinking.get("type") in ("enabled", "adaptive"):
        out.append({"type": "thinking", "thinking": f"The user wrote: {prompt[:40]}",
                    "signature": "sig_" + hashlib.sha256(prompt.encode()).hexdigest()[:32]})
    results = [b for b in blocks if b.get("type") == "tool_result"]
    tools = body.get("tools") or []
    choice = body.get("tool_choice") or {"type": "auto"}
    fmt = (body.get("output_config") or {}).get("format")
    if results:
        said = "; ".join(text_of(r.get("content")) for r in results)
        out.append({"type": "text", "text": f"[{model}] the tool said: {said}"})
        return out, "end_turn", None
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        out.append({"type": "text", "text": json.dumps(sample(fmt.get("schema") or {}, prompt))})
        return out, "end_turn", None
    if tools and choice.get("type") != "none":
        tool = next((t for t in tools if t.get("name") == choice.get("name")), tools[0])
        out.append({"type": "tool_use", "id": "toolu_" + _digest(body)[:20], "name": tool.get("name"),
                    "input": sample(tool.get("input_schema") or {}, prompt)})
        return out, "tool_use", None
    return _text_answer(body, out, f"[{model}] you said: {' '.join(words_of(prompt, limit))}")


def _text_answer(body: dict[str, Any], out: list[dict[str, Any]], text: str) -> tuple[list[dict[str, Any]], str, str | None]:
    for stop in body.get("stop_sequences") or []:
        if stop in text:
            out.append({"type": "text", "text": text[: text.index(stop)]})
            return out, "stop_sequence", stop
    words = text.split(" ")
    if len(words) > body["max_tokens"]:
        out.append({"type": "text", "text": " ".join(words[: body["max_tokens"]])})
        return out, "max_tokens", None
    out.append({"type": "text", "text": text})
    return out, "end_turn", None


def stream_events(message: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The SSE events of ``message`` in Anthropic's documented order."""
    usage = message["usage"]
    start = {**message, "content": [], "stop_reason": None, "stop_sequence": None, "usage": {**usage, "output_tokens": 1}}
    events: list[tuple[str, dict[str, Any]]] = [("message_start", {"type": "message_start", "message": start}),
                                                ("ping", {"type": "ping"})]
    for index, block in enumerate(message["content"]):
        events.extend(_block_events(index, block))
    events.append(("message_delta", {"type": "message_delta", "usage": usage,
                                     "delta": {"stop_reason": message["stop_reason"], "stop_sequence": message["stop_sequence"]}}))
    events.append(("message_stop", {"type": "message_stop"}))
    return events


def _block_events(index: int, block: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    kind = block.get("type")
    deltas: list[dict[str, Any]] = []
    if kind == "text":
        start: dict[str, Any] = {"type": "text", "text": ""}
        words = str(block.get("text", "")).split(" ")
        deltas = [{"type": "text_delta", "text": w if i == 0 else " " + w} for i, w in enumerate(words)]
    elif kind == "tool_use":
        start = {**block, "input": {}}
        args = json.dumps(block.get("input") or {})
        deltas = [{"type": "input_json_delta", "partial_json": ""}]
        deltas += [{"type": "input_json_delta", "partial_json": args[i:i + 8]} for i in range(0, len(args), 8)]
    elif kind == "thinking":
        start = {"type": "thinking", "thinking": "", "signature": ""}
        words = str(block.get("thinking", "")).split(" ")
        deltas = [{"type": "thinking_delta", "thinking": w if i == 0 else " " + w} for i, w in enumerate(words)]
        deltas.append({"type": "signature_delta", "signature": block.get("signature", "")})
    else:
        start = block
    events = [("content_block_start", {"type": "content_block_start", "index": index, "content_block": start})]
    events += [("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d}) for d in deltas]
    events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    return events


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--api-key", default=None)
    parser.add_argument("--answer-words", type=int, default=12, help="words per answer (long streams for benchmarks)")
    args = parser.parse_args()
    FakeAnthropic(host=args.host, port=args.port, api_key=args.api_key, record=False, answer_words=args.answer_words).run_forever()


if __name__ == "__main__":
    main()
