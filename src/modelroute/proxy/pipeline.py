"""The one request path, whatever API the client speaks: read, route, admit, attempt, respond, settle.

A :class:`~modelroute.proxy.codecs.ClientCodec` parameterises it for the client's API (Chat
Completions, Messages, Responses). Every behaviour lives here once: routing, admission (budgets,
rate limits, deferral), attempts with fallbacks and a cascade's reviews (before the first byte, and
at a stream's commit point), answers whole or streamed, errors in the client's format, cost, spans,
metrics and the hooks' settled phase.

For each candidate the attempt calls its provider in the wire format :func:`wire_for` picks (the
client's own when the provider speaks it: pass-through) through the translator the table names for
(client API, wire format).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Mapping

from aiohttp import web
from opentelemetry import trace

from modelroute import _json as json
from modelroute.policy import ModelSpec
from modelroute.policy.model import CHAT
from modelroute.providers import Provider, ProviderError, Usage
from modelroute.providers.translators import translator, wire_for
from modelroute.providers.translate import answer_errors, SHAPE_ERRORS
from modelroute.proxy.attempts import attempt_each
from modelroute.proxy.codecs import ClientCodec, Incoming
from modelroute.contract.errors import BadRequest, ClientError, NotFound
from modelroute.proxy.exchange import Exchange
from modelroute.contract.http import lower_headers, read_json
from modelroute.proxy.relay import ChatTap, Relay
from modelroute.proxy.state import SERVICES
from modelroute.routing import AUTO, Decision, Review, UnknownModel, build_view

#: The request key holding the codec of the request, for errors raised before its handler answers.
CODEC = web.RequestKey("modelroute_codec", ClientCodec)


class NoPolicy(ClientError):
    status = 503
    type = "server_error"

    def __init__(self) -> None:
        super().__init__("the sidecar has no policy yet", code="no_policy")


def handler(codec: ClientCodec) -> Any:
    """The aiohttp handler serving ``codec``'s endpoint through the pipeline."""

    async def handle(request: web.Request) -> web.StreamResponse:
        request[CODEC] = codec
        return await serve(request, codec)

    handle.__name__ = f"serve_{codec.api}"
    return handle


async def serve(request: web.Request, codec: ClientCodec) -> web.StreamResponse:
    services = request.app[SERVICES]
    if not services.holder.ready:
        raise NoPolicy()
    body = await read_json(request, services.settings.max_body_bytes)
    incoming = codec.parse(body)
    codec = incoming.codec or codec
    ex = Exchange(services, services.holder.current, codec.operation, lower_headers(request), codec=codec, incoming=incoming)
    try:
        ex.view = build_view(incoming.chat, ex.incoming_headers, api=codec.api)
        ex.view.native_only = incoming.native_only
        ex.decision = await decide(ex)
        if ex.hooks.admit:
            await ex.hooks.run_admit(ex)
        if incoming.stream:
            return await _stream(request, ex, codec, incoming)
        return await _whole(ex, codec, incoming)
    except ClientError as exc:
        ex.settle(exc.outcome, exc.code or exc.type if exc.outcome == "error" else None)
        return codec.error_response(exc, ex.response_headers(with_cost=False))
    finally:
        ex.settle("error", "internal")  # no-op when already settled


async def decide(ex: Exchange) -> Decision:
    """The router's decision, or the client error when there is no model to try. Model calls the
    strategies make while deciding are children of the request's span."""
    runtime, view = ex.runtime, ex.view
    assert view is not None
    try:
        if runtime.router.calls_models:
            with trace.use_span(ex.span, end_on_exit=False):
                decision = await runtime.router.decide(view)
        else:
            decision = await runtime.router.decide(view)
    except UnknownModel as exc:
        models = ", ".join([AUTO, *runtime.policy.models])
        raise NotFound(f"The model {exc.args[0]!r} does not exist or you do not have access to it; available: {models}",
                       param="model", code="model_not_found") from None
    if not decision.candidates:
        reasons = "; ".join(f"{s.model}: {s.reason}" for s in decision.skipped)
        code = "context_length_exceeded" if all("context window" in s.reason for s in decision.skipped) else "no_eligible_model"
        raise BadRequest(f"no model of route {decision.route!r} can serve this request ({reasons})", code=code)
    return decision


def _forwarded(ex: Exchange, codec: ClientCodec, wire: str, headers: Mapping[str, str]) -> Mapping[str, str]:
    """Trace headers, plus the client's own API headers when the request passes through natively."""
    if wire != codec.api or not codec.forwarded:
        return headers
    return {**headers, **{k: ex.incoming_headers[k] for k in codec.forwarded if k in ex.incoming_headers}}


# -- whole answers ---------------------------------------------------------------------------------


@dataclass(slots=True)
class Whole:
    """One attempt's whole answer: the client's body, and where it came from."""

    client: Mapping[str, Any]
    raw: bytes | None  # the upstream's bytes, when they are the client's body (pass-through)
    usage: Usage | None
    dropped: tuple[str, ...]
    wire: str
    upstream: Mapping[str, Any]
    spec: ModelSpec
    headers: Mapping[str, str]  # the upstream's response headers

    def as_chat(self, client: str) -> Mapping[str, Any]:
        """The answer in chat's shape (a review, the quality hooks); raises a shape error when unreadable."""
        if client == CHAT:
            return self.client
        if self.wire == CHAT:
            return self.upstream
        reader = translator(CHAT, self.wire, self.spec)
        assert reader is not None
        return reader.response(self.upstream)


async def _whole(ex: Exchange, codec: ClientCodec, incoming: Incoming) -> web.Response:
    decision = ex.decision
    assert ex.view is not None and decision is not None
    view = ex.view

    async def call(provider: Provider, spec: ModelSpec, timeout: float, headers: Mapping[str, str]) -> Whole:
        wire = wire_for(codec.api, provider.apis)
        t = translator(codec.api, wire, spec)
        headers = _forwarded(ex, codec, wire, headers)
        if t is None:
            done = await provider.call(wire, incoming.body, spec, timeout=timeout, headers=headers)
            return Whole(done.body, done.raw, done.usage, done.dropped, wire, done.body, spec, done.headers)
        done = await provider.call(wire, t.request(incoming.body), spec, timeout=timeout, headers=headers)
        with answer_errors(f"{provider.name}/{spec.name}"):
            answer = t.response(done.body)
        return Whole(answer, None, done.usage, tuple(t.dropped), wire, done.body, spec, done.headers)

    async def review(model: str, whole: Whole) -> Review | None:
        assert decision.reviewer is not None
        with answer_errors(f"{model}"):  # a review cannot pass an answer it cannot read
            answer = whole.as_chat(codec.api)
        verdict = await decision.reviewer.review(view, model, answer)
        ex.extra_cost += Decimal(str(verdict.cost_usd))
        return verdict

    outcome = await attempt_each(ex, call, usage_of=lambda w: w.usage, review=review if decision.reviewer else None,
                                 headers_of=lambda w: w.headers)
    whole = outcome.result
    ex.served, ex.usage, ex.dropped = outcome.model, whole.usage, whole.dropped
    if ex.collect_answer or ex.hooks.settled:
        ex.answer_from = lambda: _readable(whole, codec.api)
    ex.settle("ok")  # first: the cost is then computed once, for the header and the records
    codec.answered(ex, whole.client)
    headers = ex.response_headers(with_cost=True)
    raw = whole.raw if whole.raw is not None else json.dumps(whole.client)
    return web.Response(body=raw, content_type="application/json", headers=headers)


def _readable(whole: Whole, client: str) -> Mapping[str, Any] | None:
    """The answer in chat's shape for the hooks, which only record: an unreadable one is left out."""
    try:
        return whole.as_chat(client)
    except SHAPE_ERRORS:
        return None


# -- streams -----------------------------------------------------------------------------------------


async def _stream(request: web.Request, ex: Exchange, codec: ClientCodec, incoming: Incoming) -> web.StreamResponse:
    decision, view = ex.decision, ex.view
    assert decision is not None and view is not None
    commit = decision.annotations.get("cascade_commit") if decision.reviewer is not None else None
    idle = ex.policy.timeouts.stream_idle_seconds

    async def call(provider: Provider, spec: ModelSpec, timeout: float, headers: Mapping[str, str]) -> Relay:
        wire = wire_for(codec.api, provider.apis)
        t = translator(codec.api, wire, spec)
        body = t.request(incoming.body) if t is not None else incoming.body
        events = await provider.stream(wire, body, spec, timeout=timeout, idle_timeout=idle,
                                       headers=_forwarded(ex, codec, wire, headers))
        tap = ChatTap(codec.api, wire, spec, strict=bool(commit)) if ex.collect_answer or commit else None
        relay = Relay(events, t, codec, tap)
        try:
            await relay.first(timeout)
            if commit:
                await relay.hold(int(commit["tokens"]), int(commit["ms"]))
        except BaseException:
            await relay.aclose()
            raise
        return relay

    async def review(model: str, relay: Relay) -> Review | None:
        assert decision.reviewer is not None
        verdict = await decision.reviewer.review(view, model, relay.partial_answer())
        ex.extra_cost += Decimal(str(verdict.cost_usd))
        if not verdict.accept:  # escalate invisibly: the client has seen nothing of this stream
            ex.attempts[-1].usage = relay.estimated_usage(view.input_tokens)
            await relay.aclose()
        return verdict

    outcome = await attempt_each(ex, call, review=review if commit else None, headers_of=lambda r: r.events.headers)
    return await _relay(request, ex, codec, outcome.model, outcome.result)


async def _relay(request: web.Request, ex: Exchange, codec: ClientCodec, served: str, relay: Relay) -> web.StreamResponse:
    """Write the served stream to the client; settle whatever happens (a client that leaves early
    pays for what was generated, estimated, and the upstream is closed)."""
    ex.served, ex.first_chunk_at = served, time.monotonic()
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                                       **ex.response_headers(with_cost=False)})
    status, error_type = "ok", None
    started = False  # the headers went out: an error can only be told inside the stream now
    try:
        await resp.prepare(request)
        started = True
        while (frames := await relay.next()) is not None:
            await resp.write(frames[0] if len(frames) == 1 else b"".join(frames))
        await resp.write(relay.ending())
        await resp.write_eof()  # the client has it all: the bookkeeping below is not waited for
    except ProviderError as exc:
        status, error_type = "error", "stream_" + exc.kind.value
        await _write_quietly(resp, codec.stream_error(exc))
    except (ConnectionResetError, asyncio.CancelledError):
        status, error_type = "client_closed", "client_closed"
        raise
    except Exception:
        if not started:
            status, error_type = "error", "internal"
            raise
        status, error_type = ex.failed_mid_stream()
        await _write_quietly(resp, codec.internal_event)
    finally:
        usage = relay.events.usage
        if usage is None and status == "client_closed" and ex.view is not None:
            usage, ex.usage_estimated = relay.estimated_usage(ex.view.input_tokens), True
        ex.usage = ex.attempts[-1].usage = usage
        ex.dropped = relay.dropped
        if relay.tap is not None:
            tap = relay.tap
            ex.answer_chunks = tap.raw_chunks()
            if ex.answer_chunks is None:
                ex.answer_from = tap.answer
        await relay.aclose()
        ex.settle(status, error_type)
        if status == "ok":
            codec.answered(ex, None)
    await resp.write_eof()
    return resp


async def _write_quietly(resp: web.StreamResponse, data: bytes) -> None:
    try:
        await resp.write(data)
    except ConnectionResetError:
        pass


__all__ = ["CODEC", "NoPolicy", "decide", "handler", "serve"]
