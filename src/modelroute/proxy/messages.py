"""``POST /v1/messages`` and ``/v1/messages/count_tokens``: the Anthropic Messages API, routed.

Apps written against the Anthropic SDK point ``base_url`` at the sidecar. The request is translated
once to the OpenAI shape (:class:`AnthropicToOpenAI`) so routing reads the same
:class:`RequestView` as for chat completions (``api="anthropic"``), then the same attempt loop runs:

* a candidate served by an Anthropic provider gets the client's own request (model renamed) and
  its answer passes through untouched, streamed events included;
* any other candidate gets the OpenAI-shaped request; its answer (or each streamed chunk) is
  translated back to a Messages answer (or event sequence).

Every error leaves in Anthropic's format (``{"type": "error", "error": {"type", "message"}}``), with
the error type Anthropic uses for the status; a stream that fails after its first event ends with
an ``error`` event. ``count_tokens`` is passed through to an Anthropic model, otherwise answered
with the sidecar's estimate.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, AsyncIterator, Mapping

from aiohttp import web

from modelroute import _json as json
from modelroute.policy import ModelSpec
from modelroute.providers import ChunkStream, Completion, ErrorKind, Provider, ProviderError
from modelroute.providers.anthropic import AnthropicProvider
from modelroute.providers.anthropic_errors import anthropic_error_body, error_type_for
from modelroute.providers.anthropic_openai import AnthropicToOpenAI
from modelroute.providers.openai_anthropic import OpenAIToAnthropic
from modelroute.providers.sse import encode
from modelroute.providers.translate import SHAPE_ERRORS, answer_errors
from modelroute.proxy.attempts import attempt_each
from modelroute.proxy.chat import decide
from modelroute.proxy.errors import BadRequest, ClientError
from modelroute.proxy.exchange import Exchange
from modelroute.proxy.held import open_first
from modelroute.routing.answers import AnswerBuilder
from modelroute.proxy.ingress import lower_headers, read_json
from modelroute.proxy.shapes import check_messages
from modelroute.proxy.state import SERVICES
from modelroute.routing import AUTO, Review, build_view

#: Client headers forwarded to an Anthropic upstream on native pass-through (beta features).
_FORWARDED = ("anthropic-beta",)


def error_response(exc: ClientError, headers: Mapping[str, str] | None = None) -> web.Response:
    """A ClientError in Anthropic's error format."""
    body = anthropic_error_body(exc.status, exc.message, error_type_for(exc.status))
    return web.Response(status=exc.status, body=json.dumps(body), content_type="application/json",
                        headers={**(headers or {}), **exc.headers})


def _require(body: Mapping[str, Any], count: bool) -> None:
    """400 for what Anthropic would refuse before anything else."""
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise BadRequest("model: Field required", param="model")
    if not count and (not isinstance(body.get("max_tokens"), int) or isinstance(body["max_tokens"], bool)):
        raise BadRequest("max_tokens: Field required", param="max_tokens")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages: Field required (a non-empty list)", param="messages")
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict) or msg.get("role") not in ("user", "assistant"):
            raise BadRequest(f"messages.{i}.role: Input should be 'user' or 'assistant'", param=f"messages.{i}")
        if msg.get("content") is None:
            raise BadRequest(f"messages.{i}.content: Field required", param=f"messages.{i}.content")
    if "stream" in body and not isinstance(body["stream"], (bool, type(None))):
        raise BadRequest("stream: Input should be a valid boolean", param="stream")
    check_messages(body)


@dataclass(slots=True)
class _Incoming:
    body: dict[str, Any]  # as the client sent it
    translator: AnthropicToOpenAI
    openai: dict[str, Any]  # in OpenAI's shape: what routing reads and OpenAI-compatible models get
    native_only: str | None  # content without an OpenAI equivalent: only Anthropic models can serve it


def _translate(body: dict[str, Any]) -> _Incoming:
    """The request in OpenAI's shape. Content with no OpenAI equivalent (server tool blocks, a
    document by URL) does not refuse the request: routing reads a copy without it, and only
    Anthropic models are candidates (the others are skipped with the reason)."""
    try:
        translator = AnthropicToOpenAI()
        return _Incoming(body, translator, translator.request(body), None)
    except ProviderError as exc:  # TranslationError
        why = exc.message
    try:
        translator = AnthropicToOpenAI(lenient=True)
        return _Incoming(body, translator, translator.request(body), why)
    except ProviderError as exc:
        raise BadRequest(exc.message, code="unsupported_content") from None


def _forwarded(ex: Exchange, headers: Mapping[str, str]) -> dict[str, str]:
    return {**headers, **{k: ex.incoming_headers[k] for k in _FORWARDED if k in ex.incoming_headers}}


async def _ingress(request: web.Request, *, count: bool) -> _Incoming:
    """The body of a Messages request, checked, and its translation to OpenAI's shape; a
    ClientError (counted in the errors metric) when there is no policy yet or the body is wrong."""
    services = request.app[SERVICES]
    try:
        if not services.holder.ready:
            raise ClientError("the sidecar has no policy yet", status=503)
        body = await read_json(request, services.settings.max_body_bytes)
        _require(body, count=count)
        return _translate(body)
    except ClientError as exc:
        services.metrics.errors.labels(exc.code or exc.type).inc()
        raise


async def handle(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES]
    try:
        incoming = await _ingress(request, count=False)
    except ClientError as exc:
        return error_response(exc)
    body, translator = incoming.body, incoming.translator
    ex = Exchange(services, services.holder.current, "chat", lower_headers(request))
    try:
        ex.view = build_view(incoming.openai, ex.incoming_headers, api="anthropic")
        ex.view.native_only = incoming.native_only
        ex.decision = await decide(ex)
        if ex.hooks.admit:
            await ex.hooks.run_admit(ex)
        if body.get("stream"):
            return await _stream(request, ex, body, translator)
        return await _complete(ex, body, translator)
    except ClientError as exc:
        ex.settle("error", exc.code or exc.type)
        return error_response(exc, {**ex.response_headers(with_cost=False), "request-id": ex.request_id})
    finally:
        ex.settle("error", "internal")  # no-op when already settled


@dataclass(slots=True)
class _Answer:
    message: Mapping[str, Any]  # the Messages answer for the client
    completion: Completion  # usage, raw bytes (native), dropped
    openai: Mapping[str, Any] | None  # the OpenAI-shaped answer when there was one (for reviews)


async def _complete(ex: Exchange, body: Mapping[str, Any], translator: AnthropicToOpenAI) -> web.Response:
    view, decision = ex.view, ex.decision
    assert view is not None and decision is not None

    async def call(provider: Provider, spec: ModelSpec, timeout: float, headers: Mapping[str, str]) -> _Answer:
        if isinstance(provider, AnthropicProvider):
            done = await provider.messages(body, spec, timeout=timeout, headers=_forwarded(ex, headers))
            return _Answer(done.body, done, _openai_copy(done.body, provider.name, spec, decision.reviewer is not None,
                                                         bool(ex.hooks.settled)))
        done = await provider.chat(view.body, spec, timeout=timeout, headers=headers)
        with answer_errors(f"{provider.name}/{spec.name}"):
            message = translator.response(done.body)
        dropped = (*translator.dropped, *done.dropped)
        return _Answer(message, Completion(message, done.usage, dropped=dropped), done.body)

    async def review(model: str, answer: _Answer) -> Review | None:
        assert decision.reviewer is not None and answer.openai is not None
        verdict = await decision.reviewer.review(view, model, answer.openai)
        ex.extra_cost += Decimal(str(verdict.cost_usd))
        return verdict

    outcome = await attempt_each(ex, call, usage_of=lambda a: a.completion.usage, review=review if decision.reviewer else None)
    answer = outcome.result
    ex.served, ex.usage, ex.dropped = outcome.model, answer.completion.usage, answer.completion.dropped
    if ex.hooks.settled:  # hooks read the answer in OpenAI's shape
        ex.answer = answer.openai
    ex.settle("ok")
    headers = {**ex.response_headers(with_cost=True), "request-id": ex.request_id}
    raw = answer.completion.raw if answer.completion.raw is not None else json.dumps(answer.message)
    return web.Response(body=raw, content_type="application/json", headers=headers)


def _openai_copy(message: Mapping[str, Any], provider: str, spec: ModelSpec, review: bool, hooks: bool) -> Mapping[str, Any] | None:
    """A native answer in OpenAI's shape, for a cascade's review or the hooks (None when neither
    reads it). A review cannot pass an answer it cannot read: the attempt fails as ``protocol``.
    The hooks only record, so for them an unreadable answer is left out and the client still gets it."""
    if review:
        with answer_errors(f"{provider}/{spec.name}"):
            return OpenAIToAnthropic(spec).response(message)
    if hooks:
        try:
            return OpenAIToAnthropic(spec).response(message)
        except SHAPE_ERRORS:
            return None
    return None


class _Frames:
    """The client's SSE frames from one attempt's stream: native frames as they are, or OpenAI
    chunks translated to Messages events by a translator of this attempt's own. With a
    ``builder`` the answer is also reassembled in OpenAI's shape for the hooks (native events are
    read through ``reader``)."""

    def __init__(self, where: str, stream: ChunkStream, translator: AnthropicToOpenAI | None, dropped: tuple[str, ...],
                 builder: AnswerBuilder | None = None, reader: OpenAIToAnthropic | None = None) -> None:
        self.where = where  # provider/model, for errors
        self.stream = stream
        self.translator = translator
        self.builder = builder
        self._reader = reader
        self._dropped = dropped

    @property
    def dropped(self) -> tuple[str, ...]:
        extra = tuple(self.translator.dropped) if self.translator is not None else ()
        return (*self._dropped, *self.stream.dropped, *extra)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if self.translator is None:
            async for frame in self.stream:
                if self.builder is not None:
                    try:
                        self._read_native(frame)
                    except SHAPE_ERRORS:  # only the hooks' copy is lost; the client's stream goes on
                        self.builder = None
                yield frame
            return
        async for chunk in self.stream:
            with answer_errors(self.where):
                frames = self._translated(chunk)
            for frame in frames:
                yield frame
        with answer_errors(self.where):
            frames = [encode(json.dumps(event), name) for name, event in self.translator.end()]
        for frame in frames:
            yield frame

    def _translated(self, chunk: bytes) -> list[bytes]:
        assert self.translator is not None
        data = json.loads(chunk)
        if self.builder is not None:
            self.builder.add(data)
        return [encode(json.dumps(event), name) for name, event in self.translator.event(None, data)]

    def _read_native(self, frame: bytes) -> None:
        assert self.builder is not None and self._reader is not None
        head, _, data = frame.partition(b"\ndata: ")
        name = head[7:].decode() if head.startswith(b"event: ") else None
        for _, chunk in self._reader.event(name, json.loads(data)):
            self.builder.add(chunk)


async def _open(ex: Exchange, body: Mapping[str, Any], provider: Provider, spec: ModelSpec, timeout: float,
                headers: Mapping[str, str], dropped: tuple[str, ...]) -> tuple[_Frames, AsyncIterator[bytes], bytes]:
    """Open the upstream stream and wait for its first frame, both within ``timeout``."""
    assert ex.view is not None
    idle = ex.policy.timeouts.stream_idle_seconds
    builder = AnswerBuilder() if ex.collect_answer else None
    frames: _Frames | None = None

    async def start() -> tuple[ChunkStream, AsyncIterator[bytes]]:
        nonlocal frames
        assert ex.view is not None
        if isinstance(provider, AnthropicProvider):
            stream = await provider.messages_stream(body, spec, timeout=timeout, idle_timeout=idle, headers=_forwarded(ex, headers))
            frames = _Frames(f"{provider.name}/{spec.name}", stream, None, (), builder,
                             OpenAIToAnthropic(spec) if builder is not None else None)
        else:
            stream = await provider.chat_stream(ex.view.body, spec, timeout=timeout, idle_timeout=idle, headers=headers)
            frames = _Frames(f"{provider.name}/{spec.name}", stream, AnthropicToOpenAI(), dropped, builder)
        return stream, frames.__aiter__()

    _, iterator, first = await open_first(f"{provider.name}/{spec.name}", timeout, start)
    assert frames is not None
    return frames, iterator, first


_INTERNAL = encode(json.dumps(anthropic_error_body(500, "internal error in the modelroute sidecar", "api_error")), "error")


def _error_event(exc: ProviderError) -> bytes:
    if exc.kind is ErrorKind.RATE_LIMITED:
        kind = "rate_limit_error"
    elif exc.kind is ErrorKind.TIMEOUT:
        kind = "timeout_error"
    else:
        kind = "overloaded_error" if exc.status == 529 else "api_error"
    body = anthropic_error_body(500, "the upstream stream failed: " + exc.kind.value, kind)
    return encode(json.dumps(body), "error")


async def _stream(request: web.Request, ex: Exchange, body: Mapping[str, Any], translator: AnthropicToOpenAI) -> web.StreamResponse:
    dropped = tuple(translator.dropped)

    async def call(provider: Provider, spec: ModelSpec, timeout: float, headers: Mapping[str, str]) -> Any:
        return await _open(ex, body, provider, spec, timeout, headers, dropped)

    outcome = await attempt_each(ex, call)
    frames, iterator, frame = outcome.result
    ex.served, ex.first_chunk_at = outcome.model, time.monotonic()
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                                       "request-id": ex.request_id, **ex.response_headers(with_cost=False)})
    status, error_type = "ok", None
    started = False  # the headers went out: an error can only be told inside the stream now
    try:
        await resp.prepare(request)
        started = True
        while True:
            await resp.write(frame)
            try:
                frame = await iterator.__anext__()
            except StopAsyncIteration:
                break
    except ProviderError as exc:
        status, error_type = "error", "stream_" + exc.kind.value
        try:
            await resp.write(_error_event(exc))
        except ConnectionResetError:
            pass
    except (ConnectionResetError, asyncio.CancelledError):
        status, error_type = "client_closed", "client_closed"
        raise
    except Exception:
        if not started:
            status, error_type = "error", "internal"
            raise
        status, error_type = ex.failed_mid_stream()
        try:
            await resp.write(_INTERNAL)
        except ConnectionResetError:
            pass
    finally:
        ex.usage = frames.stream.usage
        ex.attempts[-1].usage = frames.stream.usage
        ex.dropped = frames.dropped
        if frames.builder is not None:
            ex.answer = frames.builder.body()
        await frames.stream.aclose()
        ex.settle(status, error_type)
    await resp.write_eof()
    return resp


async def count_tokens(request: web.Request) -> web.Response:
    """Counted by the Anthropic model the request names (or the policy default for ``auto``);
    for a model of another provider, the sidecar's own estimate."""
    services = request.app[SERVICES]
    try:
        incoming = await _ingress(request, count=True)
    except ClientError as exc:
        return error_response(exc)
    body, openai_body = incoming.body, incoming.openai
    runtime = services.holder.current
    policy = runtime.policy
    name = body["model"] if body["model"] in policy.models else policy.default if body["model"] == AUTO else None
    if name is None:
        return error_response(ClientError(f"model: {body['model']!r} does not exist", status=404))
    provider = runtime.provider_for(name)
    headers = {"x-modelroute-model": name, "x-modelroute-policy-version": policy.version}
    if isinstance(provider, AnthropicProvider):
        try:
            counted = await provider.count_tokens(body, policy.models[name], timeout=policy.timeouts.attempt_seconds, headers={})
            return web.json_response(counted, headers=headers)
        except ProviderError as exc:
            if exc.kind is ErrorKind.BAD_REQUEST:
                return error_response(ClientError(str((exc.error or {}).get("message") or exc.message), status=exc.status or 400))
    view = build_view(openai_body, {}, api="anthropic")
    return web.json_response({"input_tokens": view.input_tokens}, headers={**headers, "x-modelroute-estimate": "true"})
