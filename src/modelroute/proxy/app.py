"""The sidecar's aiohttp application: routes, error middleware, and start-up/shutdown of its parts.

Every client API is served by the one request pipeline (:mod:`.pipeline`) with the API's codec;
any path no endpoint owns goes to pass-through (:mod:`.passthrough`). Errors leave in the format of
the client's API, which the route's codec knows, or, for a path no codec owns, its API family.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, AsyncIterator, Awaitable, Callable, Iterable, Sequence

import aiohttp
from aiohttp import web

from modelroute.policy import CompiledPolicy
from modelroute.providers import ProviderError, Transport, build_providers
from modelroute.contract.features import Feature
from modelroute.proxy import endpoints, passthrough
from modelroute.proxy.breaker import Breakers
from modelroute.proxy.codecs import ClientCodec
from modelroute.proxy.codecs.chat import CHAT
from modelroute.proxy.codecs import responses
from modelroute.proxy.codecs.messages import MESSAGES
from modelroute.contract.errors import ClientError, NotFound
from modelroute.contract.hooks import Hooks
from modelroute.proxy.host import ProxyHost
from modelroute.proxy.model_client import ProxyModelClient
from modelroute.proxy.pipeline import CODEC, handler
from modelroute.proxy.state import SERVICES, PolicyHolder, Runtime, Services, Settings, running
from modelroute.routing import Router
from modelroute.telemetry import Metrics, get_tracer

log = logging.getLogger("modelroute.proxy")

Background = Callable[[web.Application], AsyncIterator[None]]
#: The codec of each family, for errors on paths no codec owns.
FAMILY_CODEC: dict[str, ClientCodec] = {"openai": CHAT, "anthropic": MESSAGES}


def codec_of(request: web.Request) -> ClientCodec:
    return request.get(CODEC) or FAMILY_CODEC[passthrough.family_of(request)]


@web.middleware
async def api_errors(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    """Every error leaves in the client's API's error format; the sidecar stays up. A client
    that goes away is counted, not logged as an error."""
    try:
        return await handler(request)
    except ClientError as exc:
        request.app[SERVICES].metrics.child(request.app[SERVICES].metrics.errors, exc.code or exc.type).inc()
        return codec_of(request).error_response(exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        message = f"{request.method} {request.path}: {exc.reason}"
        code = "method_not_allowed" if exc.status == 405 else None
        request.app[SERVICES].metrics.child(request.app[SERVICES].metrics.errors, code or str(exc.status)).inc()
        return codec_of(request).error_response(ClientError(message, status=exc.status, code=code, type="invalid_request_error"))
    except (ConnectionResetError, asyncio.CancelledError):
        request.app[SERVICES].metrics.child(request.app[SERVICES].metrics.errors, "client_closed").inc()
        raise
    except Exception:
        log.exception("unexpected error in %s %s", request.method, request.path)
        request.app[SERVICES].metrics.child(request.app[SERVICES].metrics.errors, "internal").inc()
        return codec_of(request).error_response(ClientError("internal error in the modelroute sidecar", status=500, type="server_error"))


def _runtime_factory(services: Services) -> Callable[[CompiledPolicy], Runtime]:
    def build(policy: CompiledPolicy) -> Runtime:
        assert services.session is not None
        providers = build_providers(policy, services.session, services.settings.keys, services.transport)
        router = Router(policy, ProxyModelClient(policy, providers, services.tracer))
        for name, provider in providers.items():
            try:
                provider.key()
            except ProviderError as exc:  # said at every start and reload; requests needing it say it again
                log.warning("policy %s: %s", policy.name, exc.message)
        return Runtime(policy=policy, router=router, providers=providers)

    return build


async def _session_ctx(app: web.Application) -> AsyncIterator[None]:
    services = app[SERVICES]
    connector = aiohttp.TCPConnector(limit=0, limit_per_host=0, ttl_dns_cache=300, keepalive_timeout=60)
    services.session = aiohttp.ClientSession(connector=connector, auto_decompress=True, trust_env=False)
    services.transport = Transport()
    services.holder.on_change(lambda rt: services.metrics.set_policy(rt.policy.name, rt.policy.version))
    services.holder.bind(_runtime_factory(services))
    if services.holder.ready:
        policy = services.holder.current.policy
        services.metrics.set_policy(policy.name, policy.version)
    yield
    await services.holder.close()
    await services.transport.close()
    await services.session.close()


def build_app(holder: PolicyHolder, settings: Settings | None = None, background: Iterable[Background] = (),
              features: Sequence[Feature] = ()) -> web.Application:
    """The sidecar app with ``features`` plugged in (their hooks and routes; the composition root,
    :mod:`modelroute.cli.compose`, says which). ``background`` tasks (a policy file watcher, an
    operator subscription) run as cleanup contexts after the HTTP session and the first policy
    are ready."""
    settings = settings or Settings()
    holder.drain_seconds = settings.drain_seconds
    app = web.Application(middlewares=[api_errors], client_max_size=settings.max_body_bytes + 1)
    app[SERVICES] = Services(
        settings=settings, holder=holder, metrics=Metrics(), tracer=get_tracer(settings.tracer_provider), breakers=Breakers(),
        hooks=Hooks([*(hook for feature in features for hook in feature.hooks), *settings.hooks]),
    )
    app.cleanup_ctx.append(_session_ctx)
    app.cleanup_ctx.append(_features_ctx(features))
    if settings.meter_provider is not None:
        app.cleanup_ctx.append(_otel_metrics_ctx(settings.meter_provider))
    app.cleanup_ctx.extend(background)
    app.router.add_post("/v1/chat/completions", handler(CHAT))
    app.router.add_post("/v1/messages", handler(MESSAGES))
    store = app[SERVICES].responses
    app.router.add_post("/v1/responses", handler(responses.ResponsesCodec(store)))
    app.router.add_get("/v1/responses/{id}", responses.retrieve(store))
    app.router.add_delete("/v1/responses/{id}", responses.delete(store))
    app.router.add_get("/v1/responses/{id}/input_items", responses.input_items(store))
    app.router.add_post("/v1/messages/count_tokens", endpoints.count_tokens)
    app.router.add_post("/v1/embeddings", endpoints.embeddings)
    app.router.add_get("/v1/models", endpoints.models)
    app.router.add_get("/v1/models/{id}", endpoints.model)
    app.router.add_get("/healthz", endpoints.healthz)
    app.router.add_get("/readyz", endpoints.readyz)
    app.router.add_get("/metrics", endpoints.metrics)
    for feature in features:
        for route in feature.routes():
            app.router.add_route(route.method, route.path, route.handler)
    app.router.add_route("*", "/{tail:.*}", passthrough.handle)  # last: every path nothing above owns
    return app


def _features_ctx(features: Sequence[Feature]) -> Background:
    """Start the features once the HTTP client and the first policy are ready; stop them at shutdown."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        host = ProxyHost(app)
        for feature in features:
            await feature.start(host)
        yield
        for feature in reversed(features):
            await feature.stop()

    return ctx


def _otel_metrics_ctx(provider: Any) -> Background:
    """Mirror the Prometheus metrics into OpenTelemetry for the app's life; flush at shutdown."""
    from modelroute.telemetry.otel_metrics import PrometheusBridge

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        async with running(PrometheusBridge(app[SERVICES].metrics.registry, provider).run()):
            yield
        app[SERVICES].hooks.flush()  # the last answers' figures go out with the final export
        await asyncio.to_thread(provider.shutdown)

    return ctx


__all__ = ["Background", "NotFound", "build_app"]
