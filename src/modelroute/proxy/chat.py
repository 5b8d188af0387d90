"""``POST /v1/chat/completions``: route, attempt, and answer whole or as a pass-through stream.

A stream that fails before its first chunk falls back invisibly (the first chunk is awaited inside
the attempt). After the first chunk the client has the headers, so a failure becomes a well-formed
SSE error event. The usage chunk the sidecar asked for is hidden from clients that did not.
"""

from __future__ import annotations

import asyncio
from modelroute import _json as json
import time
from decimal import Decimal
from typing import Any, AsyncIterator, Mapping

from aiohttp import web
from opentelemetry import trace

from modelroute.policy import ModelSpec
from modelroute.providers import ChunkStream, Completion, Provider, ProviderError
from modelroute.providers.sse import DONE
from modelroute.proxy.attempts import attempt_each
from modelroute.proxy.errors import BadRequest, ClientError, NotFound, error_response
from modelroute.proxy.exchange import Exchange
from modelroute.proxy.held import HeldStream, open_first
from modelroute.proxy.ingress import lower_headers, read_json, require_chat_fields
from modelroute.proxy.shapes import check_chat
from modelroute.proxy.state import SERVICES
from modelroute.routing import AUTO, Decision, Review, UnknownModel, build_view


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
        raise NotFound(f"the model {exc.args[0]!r} does not exist; available: {models}", param="model",
                       code="model_not_found") from None
    if not decision.candidates:
        reasons = "; ".join(f"{s.model}: {s.reason}" for s in decision.skipped)
        code = "context_length_exceeded" if all("context window" in s.reason for s in decision.skipped) else "no_eligible_model"
        raise BadRequest(f"no model of route {decision.route!r} can serve this request ({reasons})", code=code)
    return decision


async def handle(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES]
    body = await read_json(request, services.settings.max_body_bytes)
    require_chat_fields(body)
    check_chat(body)
    ex = Exchange(services, services.holder.current, "chat", lower_headers(request))
    try:
        ex.view = build_view(body, ex.incoming_headers)
        ex.decision = await decide(ex)
        if ex.hooks.admit:
            await ex.hooks.run_admit(ex)
        if ex.view.stream:
            return await _stream(request, ex)
        return await _complete(ex)
    except ClientError as exc:
        ex.settle(exc.outcome, exc.code or exc.type if exc.outcome == "error" else None)
        return error_response(exc, ex.response_headers(with_cost=False))
    finally:
        ex.settle("error", "internal")  # no-op when already settled


async def _complete(ex: Exchange) -> web.Response:
    view, decision = ex.view, ex.decision
    assert view is not None and decision is not None

    async def call(provider: Provider, spec: ModelSpec, timeout: float, headers: Mapping[str, str]) -> Completion:
        return await provider.chat(view.body, spec, timeout=timeout, headers=headers)

    async def review(model: str, completion: Completion) -> Review | None:
        assert decision.reviewer is not None
        verdict = await decision.reviewer.review(view, model, completion.body)
        ex.extra_cost += Decimal(str(verdict.cost_usd))
        return verdict

    outcome = await attempt_each(ex, call, usage_of=lambda c: c.usage, review=review if decision.reviewer else None)
    completion = outcome.result
    ex.served, ex.usage, ex.dropped, ex.answer = outcome.model, completion.usage, completion.dropped, completion.body
    ex.settle("ok")  # first: the cost is then computed once, for the header and the records
    headers = ex.response_headers(with_cost=True)
    raw = completion.raw if completion.raw is not None else json.dumps(completion.body)
    return web.Response(body=raw, content_type="application/json", headers=headers)


async def _open(ex: Exchange, provider: Provider, spec: ModelSpec, timeout: float,
                headers: Mapping[str, str]) -> HeldStream:
    """Open the upstream stream and wait for its first chunk, both within ``timeout``."""
    assert ex.view is not None
    body, idle = ex.view.body, ex.policy.timeouts.stream_idle_seconds

    async def start() -> tuple[ChunkStream, AsyncIterator[bytes]]:
        stream = await provider.chat_stream(body, spec, timeout=timeout, idle_timeout=idle, headers=headers)
        return stream, stream.__aiter__()

    stream, chunks, first = await open_first(f"{provider.name}/{spec.name}", timeout, start)
    return HeldStream(stream, chunks, first)


def _is_usage_only(chunk: bytes) -> bool:
    """The extra chunk carrying only usage (empty choices)."""
    if b'"choices":[]' not in chunk and b'"choices": []' not in chunk:
        return False
    try:
        data = json.loads(chunk)
    except ValueError:
        return False
    return isinstance(data, dict) and data.get("choices") == [] and data.get("usage") is not None


_INTERNAL = b"data: " + json.dumps({"error": {"message": "internal error in the modelroute sidecar", "type": "server_error",
                                               "param": None, "code": None}}) + b"\n\n"


def _sse_error(exc: ProviderError) -> bytes:
    error = {"error": {"message": "the upstream stream failed: " + exc.kind.value, "type": "upstream_error",
                       "param": None, "code": "stream_" + exc.kind.value}}
    return b"data: " + json.dumps(error) + b"\n\n"


async def _stream(request: web.Request, ex: Exchange) -> web.StreamResponse:
    call, review = _stream_attempt(ex)
    outcome = await attempt_each(ex, call, review=review)
    held = outcome.result
    ex.served, ex.first_chunk_at = outcome.model, time.monotonic()
    hide_usage = not (ex.view and ex.view.include_usage)
    sent: list[bytes] | None = [] if ex.collect_answer else None  # ex.answer reads them when a hook asks
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                                       **ex.response_headers(with_cost=False)})
    status, error_type = "ok", None
    out: list[bytes] = []  # events received together leave together, in one write
    started = False  # the headers went out: an error can only be told inside the stream now
    try:
        await resp.prepare(request)
        started = True
        while (chunk := await held.next()) is not None:
            if sent is not None:
                sent.append(chunk)
            if not (hide_usage and _is_usage_only(chunk)):
                out.append(b"data: " + chunk + b"\n\n")
            if out and not held.ready:
                await resp.write(b"".join(out))
                out.clear()
        out.append(DONE)
        await resp.write(b"".join(out))
        out.clear()
        await resp.write_eof()  # the client has it all: the bookkeeping below is not waited for
    except ProviderError as exc:
        status, error_type = "error", "stream_" + exc.kind.value
        await _write_quietly(resp, b"".join(out) + _sse_error(exc) + DONE)
    except (ConnectionResetError, asyncio.CancelledError):
        status, error_type = "client_closed", "client_closed"
        raise
    except Exception:
        if not started:
            status, error_type = "error", "internal"
            raise
        status, error_type = ex.failed_mid_stream()
        await _write_quietly(resp, b"".join(out) + _INTERNAL + DONE)
    finally:
        ex.usage = ex.attempts[-1].usage = held.stream.usage
        ex.dropped = held.stream.dropped
        ex.answer_chunks = sent
        await held.aclose()
        ex.settle(status, error_type)
    await resp.write_eof()
    return resp


def _stream_attempt(ex: Exchange) -> tuple[Any, Any]:
    """The attempt (open, and hold to a cascade's commit point) and its review, for attempt_each."""
    decision, view = ex.decision, ex.view
    assert decision is not None and view is not None
    commit = decision.annotations.get("cascade_commit") if decision.reviewer is not None else None

    async def call(provider: Provider, spec: ModelSpec, timeout: float, headers: Mapping[str, str]) -> HeldStream:
        held = await _open(ex, provider, spec, timeout, headers)
        if commit:
            await held.hold(int(commit["tokens"]), int(commit["ms"]))
        return held

    async def review(model: str, held: HeldStream) -> Review | None:
        assert decision.reviewer is not None
        verdict = await decision.reviewer.review(view, model, held.partial_answer())
        ex.extra_cost += Decimal(str(verdict.cost_usd))
        if not verdict.accept:  # escalate invisibly: the client has seen nothing of this stream
            ex.attempts[-1].usage = held.estimated_usage(view.input_tokens)
            await held.aclose()
        return verdict

    return call, review if commit else None


async def _write_quietly(resp: web.StreamResponse, data: bytes) -> None:
    try:
        await resp.write(data)
    except ConnectionResetError:
        pass
