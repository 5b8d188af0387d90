"""Pass-through: every path the sidecar does not route goes, unrouted, to the policy's provider for it.

Once the sidecar is injected, every call an app makes reaches it, so an endpoint it does not route
(moderations, audio, images, legacy completions, files and vector stores, Anthropic paths...) must
still work. Such a request goes to the ``passthrough`` provider of its API family (Anthropic clients
are told by their ``anthropic-version`` header or a ``/v1/messages`` path; everything else is an
OpenAI client) as it came: the client's credentials dropped and the provider's key put in, bodies
streamed both ways as they arrive (a 200 MB upload is never held whole), the answer's bytes
unchanged, except that an error body has any key the sidecar holds redacted (an upstream that
echoes a key must not leak it).

Each is counted (``modelroute_passthrough_total{provider, path, status}``, the path with ids
replaced, from a bounded set), recorded as a span of route ``passthrough`` and logged at info the
first time its path is seen. With no provider for the family, the answer is that API's own 404 for
an unknown URL, counted in ``modelroute_errors_total{type="not_found"}`` with its path.
"""

from __future__ import annotations

import logging
import re
import time
from typing import AsyncIterator

import aiohttp
from aiohttp import web
from opentelemetry.trace import SpanKind, Status, StatusCode

from modelroute import _json as json
from modelroute.providers import ErrorKind, Provider, ProviderError
from modelroute.providers.anthropic_errors import anthropic_error_body
from modelroute.contract.http import CREDENTIAL_HEADERS
from modelroute.proxy.state import SERVICES, Services

log = logging.getLogger("modelroute.passthrough")

#: Headers that belong to one connection, never forwarded (RFC 9110 7.6.1), and those rewritten.
_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade", "host",
                  "accept-encoding"})
_NOT_BACK = frozenset({"connection", "keep-alive", "transfer-encoding", "trailer", "upgrade", "content-length"})
#: Largest error body read whole to redact keys from it.
_ERROR_BODY_LIMIT = 1024 * 1024
#: Resources of the OpenAI and Anthropic APIs: the first path segment after /v1 that names a path
#: label; any other is "other", so the label set stays bounded whatever clients call.
RESOURCES = frozenset({
    "models", "completions", "chat", "embeddings", "moderations", "images", "audio", "files", "uploads", "batches",
    "vector_stores", "assistants", "threads", "fine_tuning", "responses", "realtime", "containers", "conversations",
    "evals", "organization", "messages", "complete", "skills", "videos", "chatkit",
})
_WORD = re.compile(r"^[a-z_]{1,30}$")
_seen: set[str] = set()


def family_of(request: web.Request) -> str:
    """``anthropic`` for an Anthropic client's request, else ``openai``."""
    if "anthropic-version" in request.headers or request.path.startswith("/v1/messages"):
        return "anthropic"
    return "openai"


def path_label(path: str) -> str:
    """``path`` with ids replaced by ``{id}``, from a bounded set: ``/v1/files/{id}/content``."""
    parts = [p for p in path.split("/") if p][:5]
    if len(parts) < 2 or parts[0] != "v1" or parts[1] not in RESOURCES:
        return "/v1/{other}" if parts[:1] == ["v1"] else "/{other}"
    return "/v1/" + "/".join(p if _WORD.match(p) else "{id}" for p in parts[1:])


def not_found(family: str, method: str, path: str) -> web.Response:
    """The API's own answer to a URL it does not know."""
    if family == "anthropic":
        body = anthropic_error_body(404, "Not Found", "not_found_error")
    else:
        body = {"error": {"message": f"Invalid URL ({method} {path})", "type": "invalid_request_error", "param": None, "code": None}}
    return web.Response(status=404, body=json.dumps(body), content_type="application/json")


def upstream_url(provider: Provider, family: str, request: web.Request) -> str:
    """The provider's URL for the client's path: OpenAI base URLs end in ``/v1``, Anthropic's do not."""
    path = request.rel_url.raw_path
    if family == "openai" and path.startswith("/v1/"):
        path = path[3:]
    query = request.rel_url.raw_query_string
    return provider.url(path) + (f"?{query}" if query else "")


async def handle(request: web.Request) -> web.StreamResponse:
    return await forward(request)


async def forward(request: web.Request, prefix: bytes = b"") -> web.StreamResponse:
    """Pass ``request`` through (``prefix``: body bytes a handler already read to decide it is not
    its own; they go first, then the rest as it arrives)."""
    services = request.app[SERVICES]
    family = family_of(request)
    label = path_label(request.path)
    name = services.holder.current.policy.passthrough.get(family) if services.holder.ready else ""
    if not name:
        policy = services.holder.current.policy.name if services.holder.ready else "none"
        services.metrics.child(services.metrics.errors, "not_found").inc()
        services.metrics.child(services.metrics.passthrough, policy, "none", label, "404").inc()
        return not_found(family, request.method, request.path)
    provider = services.holder.current.providers[name]
    if label not in _seen and len(_seen) < 1024:
        _seen.add(label)
        log.info("passing %s %s through to provider %s", request.method, label, name)
    span = services.tracer.start_span(f"passthrough {label}", kind=SpanKind.SERVER)
    started = time.monotonic()
    status = "error"
    try:
        resp = await _forward(request, services, provider, family, prefix)
        status = str(resp.status)
        return resp
    except ProviderError as exc:
        status = exc.kind.value
        span.set_status(Status(StatusCode.ERROR, exc.kind.value))
        return _failed(family, exc)
    finally:
        services.metrics.child(services.metrics.passthrough, services.holder.current.policy.name, name, label, status).inc()
        if span.is_recording():
            span.set_attributes({"modelroute.route": "passthrough", "modelroute.provider": name, "url.path": label,
                                 "http.request.method": request.method, "http.response.status_code": status,
                                 "modelroute.duration_ms": round((time.monotonic() - started) * 1000, 3)})
        span.end()


def _headers(request: web.Request, provider: Provider) -> dict[str, str]:
    out = {k: v for k, v in request.headers.items() if k.lower() not in _HOP and k.lower() not in CREDENTIAL_HEADERS}
    auth = provider.auth_headers()  # raises NO_KEY, naming where the key is expected
    if "anthropic-version" in request.headers:
        auth.pop("anthropic-version", None)  # the client's own version shapes what it reads
    out.update(provider.spec.headers)
    out.update(auth)
    out["Accept-Encoding"] = "identity"  # the bytes go back as they come
    return out


async def _body(request: web.Request, prefix: bytes) -> AsyncIterator[bytes]:
    if prefix:
        yield prefix
    async for chunk in request.content.iter_chunked(256 * 1024):
        yield chunk


async def _forward(request: web.Request, services: Services, provider: Provider, family: str, prefix: bytes) -> web.StreamResponse:
    assert services.session is not None
    url = upstream_url(provider, family, request)
    headers = _headers(request, provider)
    data = _body(request, prefix) if request.can_read_body or prefix else None
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=services.holder.current.policy.timeouts.connect_seconds,
                                    sock_read=services.holder.current.policy.timeouts.attempt_seconds)
    try:
        upstream = await services.session.request(request.method, url, headers=headers, data=data, timeout=timeout,
                                                  auto_decompress=False, allow_redirects=False)
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise ProviderError(ErrorKind.CONNECT, f"{provider.name}: {type(exc).__name__}") from None
    async with upstream:
        back = {k: v for k, v in upstream.headers.items() if k.lower() not in _NOT_BACK}
        if upstream.status >= 400:
            raw = await upstream.content.read(_ERROR_BODY_LIMIT)
            return web.Response(status=upstream.status, body=redact(raw, services, provider), headers=back)
        resp = web.StreamResponse(status=upstream.status, reason=upstream.reason, headers=back)
        if upstream.content_length is not None:
            resp.content_length = upstream.content_length
        await resp.prepare(request)
        async for chunk in upstream.content.iter_any():
            await resp.write(chunk)
        await resp.write_eof()
        return resp


def redact(raw: bytes, services: Services, provider: Provider) -> bytes:
    """``raw`` with every key the sidecar holds for the policy's providers replaced."""
    for other in services.holder.current.providers.values():
        try:
            key = other.key()
        except ProviderError:
            continue
        if key and len(key) >= 8 and key.encode() in raw:
            raw = raw.replace(key.encode(), b"[redacted]")
    return raw


def _failed(family: str, exc: ProviderError) -> web.Response:
    status = 502 if exc.status is None else exc.status
    message = exc.message
    if family == "anthropic":
        body = anthropic_error_body(status, message, "api_error")
    else:
        body = {"error": {"message": message, "type": "upstream_error", "param": None, "code": exc.kind.value}}
    return web.Response(status=status, body=json.dumps(body), content_type="application/json")
