"""A fake OpenAI-compatible provider: a real aiohttp server that speaks the chat-completions and
embeddings wire formats (JSON and SSE, usage and error bodies), answers deterministically, and
has fault knobs (error statuses with retry-after, connection resets, slow answers, streams cut
mid-way or ending in an error).

It also speaks the Responses API (:mod:`fake_openai_responses`) and answers the endpoints a
sidecar passes through unrouted (:mod:`fake_openai_endpoints`: moderations, legacy completions,
images, audio, files, vector stores, models), and any other path with OpenAI's own 404
(``Invalid URL (POST /v1/xyz)``). ``speaks`` makes it a server of one API only: chat only, as
OpenAI-compatible servers without the Responses API (``/v1/responses`` is then an unknown URL), or
Responses only (every chat request gets OpenAI's 404 for models served only by ``v1/responses``;
``responses_only`` does that for some models).

Used by the tests, the demo and the benchmarks; run it alone with
``python -m modelroute.testing.fake_openai --port 9001``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from aiohttp import web

from modelroute.testing.fake_openai_endpoints import Endpoints, Hit, StoredFile, invalid_url
from modelroute.testing.fake_openai_responses import ResponsesAPI, Stored
from modelroute.testing.org_limits import HEADERS, OrgLimiter, add_headers, openai_headers, requested_output
from modelroute.testing.server import Received, ServerBase, next_fault, words_of

#: OpenAI's answer to a chat request for a model served only by the Responses API (404).
RESPONSES_ONLY = "This model is only supported in v1/responses and not in v1/chat/completions."


@dataclass
class Fault:
    """What to do instead of a normal answer, for the next ``times`` requests (None: every one)."""

    status: int | None = None  # answer with this status and an OpenAI error body
    code: str | None = None  # error code of that body (e.g. context_length_exceeded)
    retry_after: float | None = None
    delay: float = 0.0  # seconds before the answer starts
    reset: bool = False  # drop the connection without answering
    cut_after: int | None = None  # streams: drop the connection after this many chunks
    error_after: int | None = None  # streams: after this many chunks (events), end with the API's error event(s)
    chunk_delay: float = 0.0  # streams: pause between chunks
    stall_after: int | None = None  # streams: after this many chunks, go silent for `stall` seconds
    stall: float = 0.0
    times: int | None = None


@dataclass
class FakeOpenAI(ServerBase):
    api_key: str | None = None  # when set, other keys get 401
    context_windows: dict[str, int] = field(default_factory=dict)  # upstream model -> window
    cached_tokens: int = 0  # reported as prompt_tokens_details.cached_tokens
    faults: dict[str, list[Fault]] = field(default_factory=dict)  # upstream model or "*" -> faults
    requests: list[Received] = field(default_factory=list)
    record: bool = True
    mangle: Callable[[dict[str, Any]], Any] | None = None  # rewrites each answer and chunk payload before it is sent
    speaks: frozenset[str] = frozenset({"chat", "responses"})  # the APIs served ("chat", "responses")
    responses_only: set[str] = field(default_factory=set)  # models a chat request may not use
    responses: dict[str, Stored] = field(default_factory=dict)  # stored responses by id
    replies: list[list[dict[str, Any]]] = field(default_factory=list)  # scripted Responses outputs, next first
    hits: list[Hit] = field(default_factory=list)  # requests to the pass-through endpoints
    files: dict[str, StoredFile] = field(default_factory=dict)
    vector_stores: dict[str, dict[str, Any]] = field(default_factory=dict)
    models: set[str] | None = None  # ids GET /v1/models/{id} knows (None: any id)
    speech_bytes: int = 256 * 1024  # size of a /v1/audio/speech answer
    org: OrgLimiter | None = None  # the organisation's rpm/tpm limits, shared by every caller
    answer_words: int = 12  # prompt words an answer repeats (cycled when the prompt is shorter: long streams)

    def routes(self, app: web.Application) -> None:
        app.on_response_prepare.append(add_headers)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/embeddings", self._embeddings)
        ResponsesAPI(self).routes(app)
        Endpoints(self).routes(app)

    def unknown_path(self, request: web.Request) -> web.Response:
        return invalid_url(request)

    def authorized(self, request: web.Request) -> bool:
        return self.api_key is None or request.headers.get("Authorization") == f"Bearer {self.api_key}"

    def script(self, *outputs: list[dict[str, Any]]) -> None:
        """Queue Responses ``output`` item lists: the next requests answer with them, in order."""
        self.replies.extend(outputs)

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def fail(self, model: str = "*", **knobs: Any) -> Fault:
        fault = Fault(**knobs)
        self.faults.setdefault(model, []).append(fault)
        return fault

    def calls(self, model: str | None = None) -> list[Received]:
        return [r for r in self.requests if model is None or r.body.get("model") == model]

    def _fault(self, model: str) -> Fault | None:
        return next_fault(self.faults, model)

    async def _receive(self, request: web.Request, tokens: Callable[[dict[str, Any]], int] | None = None,
                       ) -> tuple[dict[str, Any], web.StreamResponse | None, Fault | None]:
        body = await request.json()
        if self.record:
            self.requests.append(Received(request.path, dict(request.headers), body))
        if not self.authorized(request):
            return body, _error(401, "Incorrect API key provided.", "invalid_api_key", "invalid_request_error"), None
        model = str(body.get("model"))
        fault = self._fault(model)
        if fault is not None:
            if fault.delay:
                await asyncio.sleep(fault.delay)
            if fault.reset:
                assert request.transport is not None
                request.transport.close()
                raise ConnectionResetError("fault: reset")
            if fault.status is not None:
                headers = {"retry-after": str(fault.retry_after)} if fault.retry_after is not None else {}
                kind = "rate_limit_error" if fault.status == 429 else "invalid_request_error" if fault.status < 500 else "server_error"
                return body, _error(fault.status, f"fault {fault.status}", fault.code, kind, headers), None
        if self.org is not None:
            limited = self._charge(request, body, model, (tokens or prompt_tokens)(body))
            if limited is not None:
                return body, limited, None
        window = self.context_windows.get(model)
        if window is not None and (tokens or prompt_tokens)(body) > window:
            return body, _error(400, f"This model's maximum context length is {window} tokens.", "context_length_exceeded",
                                "invalid_request_error"), None
        return body, None, fault

    def _charge(self, request: web.Request, body: dict[str, Any], model: str, input_tokens: int) -> web.Response | None:
        """Charge the organisation's buckets: None when the request fits (its answer will carry the
        figures), else OpenAI's 429."""
        assert self.org is not None
        verdict = self.org.charge(model, input_tokens, requested_output(body))
        if verdict is None:
            return None
        headers = openai_headers(verdict)
        if verdict.ok:
            request[HEADERS] = headers
            return None
        message = (f"Rate limit reached for {model} in organization org-fake on requests per min (RPM). "
                   f"Please try again in {verdict.retry_after:.3f}s.")
        return _error(429, message, "rate_limit_exceeded", "requests", headers)

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body, early, fault = await self._receive(request)
        if early is not None:
            return early
        if "chat" not in self.speaks or body.get("model") in self.responses_only:
            body_error = {"error": {"message": RESPONSES_ONLY, "type": "invalid_request_error", "param": "model", "code": None}}
            return web.json_response(body_error, status=404)
        message, finish = answer(body, self.answer_words)
        usage = self._usage(body, message)
        if body.get("stream"):
            return await self._stream(request, body, message, finish, usage, fault)
        return web.json_response(self._mangled({
            "id": "chatcmpl-" + _digest(body)[:20], "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model"), "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
            "usage": usage,
        }))

    def _mangled(self, payload: dict[str, Any]) -> Any:
        return self.mangle(payload) if self.mangle is not None else payload

    def _usage(self, body: dict[str, Any], message: dict[str, Any]) -> dict[str, Any]:
        prompt = prompt_tokens(body)
        completion = completion_tokens(message)
        return {
            "prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": min(self.cached_tokens, prompt)},
            "completion_tokens_details": {"reasoning_tokens": 0},
        }

    async def _stream(self, request: web.Request, body: dict[str, Any], message: dict[str, Any], finish: str,
                      usage: dict[str, Any], fault: Fault | None) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await resp.prepare(request)
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        base = {"id": "chatcmpl-" + _digest(body)[:20], "object": "chat.completion.chunk", "created": int(time.time()),
                "model": body.get("model"), "system_fingerprint": "fp_fake"}
        for n, delta in enumerate(_deltas(message, finish)):
            if fault is not None and fault.cut_after is not None and n >= fault.cut_after:
                assert request.transport is not None
                request.transport.close()
                return resp
            if fault is not None and fault.chunk_delay:
                await asyncio.sleep(fault.chunk_delay)
            if fault is not None and fault.stall_after == n:
                await asyncio.sleep(fault.stall)
            if fault is not None and fault.error_after is not None and n >= fault.error_after:
                failure = {"error": {"message": "The server had an error while processing your request.", "type": "server_error",
                                     "param": None, "code": None}}
                await resp.write(b"data: " + json.dumps(failure).encode() + b"\n\n")
                await resp.write_eof()
                return resp
            chunk = {**base, "choices": [delta]}
            if include_usage:
                chunk["usage"] = None
            await resp.write(b"data: " + json.dumps(self._mangled(chunk)).encode() + b"\n\n")
        if include_usage:
            await resp.write(b"data: " + json.dumps(self._mangled({**base, "choices": [], "usage": usage})).encode() + b"\n\n")
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp

    async def _embeddings(self, request: web.Request) -> web.StreamResponse:
        body, early, _ = await self._receive(request)
        if early is not None:
            return early
        inputs = body.get("input")
        texts = [inputs] if isinstance(inputs, str) else list(inputs or [])
        data = [{"object": "embedding", "index": i, "embedding": embedding(str(t))} for i, t in enumerate(texts)]
        tokens = sum(max(1, len(str(t)) // 4) for t in texts)
        return web.json_response({"object": "list", "data": data, "model": body.get("model"),
                                  "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})


def _error(status: int, message: str, code: str | None, kind: str, headers: dict[str, str] | None = None) -> web.Response:
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return web.json_response(body, status=status, headers=headers)


def _digest(body: Any) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def prompt_tokens(body: dict[str, Any]) -> int:
    """Deterministic stand-in for a tokenizer: one token per 4 characters, 4 per message."""
    messages = body.get("messages") or []
    chars = sum(len(_text(m.get("content"))) for m in messages if isinstance(m, dict))
    chars += len(json.dumps(body["tools"])) if body.get("tools") else 0
    return chars // 4 + 4 * len(messages)


def completion_tokens(message: dict[str, Any]) -> int:
    text = message.get("content") or ""
    for call in message.get("tool_calls") or []:
        text += call["function"]["arguments"]
    return max(1, len(text.split()))


def answer(body: dict[str, Any], limit: int = 12) -> tuple[dict[str, Any], str]:
    """The deterministic answer: (assistant message, finish_reason)."""
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    last = messages[-1] if messages else {}
    model = body.get("model")
    tools = body.get("tools") or []
    if last.get("role") == "tool":
        return {"role": "assistant", "content": f"[{model}] the tool said: {_text(last.get('content'))}"}, "stop"
    if tools and body.get("tool_choice") != "none":
        fn = tools[0].get("function", {})
        args = json.dumps({"query": _text(last.get("content"))[:40]})
        call = {"id": "call_" + _digest(body)[:12], "type": "function", "function": {"name": fn.get("name", "tool"), "arguments": args}}
        return {"role": "assistant", "content": None, "tool_calls": [call]}, "tool_calls"
    prompt = _text(last.get("content"))
    if (body.get("response_format") or {}).get("type") in ("json_object", "json_schema"):
        return {"role": "assistant", "content": json.dumps({"model": model, "echo": prompt[:40]})}, "stop"
    words = words_of(prompt, limit)
    content = f"[{model}] you said: {' '.join(words)}"
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    if isinstance(max_tokens, int) and max_tokens < len(content.split()):
        return {"role": "assistant", "content": " ".join(content.split()[:max_tokens])}, "length"
    return {"role": "assistant", "content": content}, "stop"


def _deltas(message: dict[str, Any], finish: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]
    if message.get("tool_calls"):
        for i, call in enumerate(message["tool_calls"]):
            args = call["function"]["arguments"]
            head = {"index": i, "id": call["id"], "type": "function", "function": {"name": call["function"]["name"], "arguments": ""}}
            out.append({"index": 0, "delta": {"tool_calls": [head]}, "finish_reason": None})
            for start in range(0, len(args), 8):
                piece = {"index": i, "function": {"arguments": args[start:start + 8]}}
                out.append({"index": 0, "delta": {"tool_calls": [piece]}, "finish_reason": None})
    else:
        words = (message.get("content") or "").split(" ")
        for i, word in enumerate(words):
            out.append({"index": 0, "delta": {"content": word if i == 0 else " " + word}, "finish_reason": None})
    out.append({"index": 0, "delta": {}, "finish_reason": finish})
    return out


def embedding(text: str, dims: int = 8) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    return [round((b - 128) / 128, 6) for b in digest[:dims]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--answer-words", type=int, default=12, help="words per answer (long streams for benchmarks)")
    args = parser.parse_args()
    fake = FakeOpenAI(host=args.host, port=args.port, record=False, answer_words=args.answer_words)
    fake.run_forever()


if __name__ == "__main__":
    main()
