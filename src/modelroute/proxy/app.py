"""The sidecar's aiohttp application: routes, error middleware, and start-up/shutdown of its parts."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, AsyncIterator, Awaitable, Callable, Iterable

import aiohttp
from aiohttp import web

from modelroute.policy import CompiledPolicy
from modelroute.proxy import chat, endpoints, feedback, messages, spend_endpoints
from modelroute.proxy.breaker import Breakers
from modelroute.proxy.errors import ClientError, NotFound, error_response
from modelroute.proxy.hooks import Hooks, RequestHook
from modelroute.proxy.model_client import ProxyModelClient
from modelroute.proxy.state import SERVICES, PolicyHolder, Runtime, Services, Settings, running
from modelroute.providers import Transport, build_providers
from modelroute.routing import Router
from modelroute.telemetry import Metrics, get_tracer

log = logging.getLogger("modelroute.proxy")

Background = Callable[[web.Application], AsyncIterator[None]]


@web.middleware
async def openai_errors(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    """Every error leaves in the OpenAI error format (Anthropic's under ``/v1/messages``); the sidecar stays up."""
    render = messages.error_response if request.path.startswith("/v1/messages") else error_response
    try:
        return await handler(request)
    except ClientError as exc:
        request.app[SERVICES].metrics.errors.labels(exc.code or exc.type).inc()
        return render(exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        message = f"{request.method} {request.path}: {exc.reason}"
        code = "not_found" if exc.status == 404 else "method_not_allowed" if exc.status == 405 else None
        return render(ClientError(message, status=exc.status, code=code, type="invalid_request_error"))
    except Exception:
        log.exception("unexpected error in %s %s", request.method, request.path)
        request.app[SERVICES].metrics.errors.labels("internal").inc()
        return render(ClientError("internal error in the modelroute sidecar", status=500, type="server_error"))


def _runtime_factory(services: Services) -> Callable[[CompiledPolicy], Runtime]:
    def build(policy: CompiledPolicy) -> Runtime:
        assert services.session is not None
        providers = build_providers(policy, services.session, services.settings.keys, services.transport)
        router = Router(policy, ProxyModelClient(policy, providers, services.tracer))
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


def default_hooks() -> list[RequestHook]:
    """The hooks every sidecar runs; each does nothing for a policy without its spec section."""
    from modelroute.batch.deferred import BatchService  # spend and batch import the proxy package: not at the top
    from modelroute.quality.hook import MeasurementHook
    from modelroute.spend import SpendHook

    return [SpendHook(), BatchService(), MeasurementHook()]


def build_app(holder: PolicyHolder, settings: Settings | None = None, background: Iterable[Background] = ()) -> web.Application:
    """The sidecar app. ``background`` tasks (a policy file watcher, an operator subscription) run
    as cleanup contexts after the HTTP session and the first policy are ready."""
    settings = settings or Settings()
    holder.drain_seconds = settings.drain_seconds
    app = web.Application(middlewares=[openai_errors], client_max_size=settings.max_body_bytes + 1)
    app[SERVICES] = Services(
        settings=settings, holder=holder, metrics=Metrics(), tracer=get_tracer(settings.tracer_provider), breakers=Breakers(),
        hooks=Hooks([*default_hooks(), *settings.hooks]),
    )
    app.cleanup_ctx.append(_session_ctx)
    if settings.meter_provider is not None:
        app.cleanup_ctx.append(_otel_metrics_ctx(settings.meter_provider))
    app.cleanup_ctx.extend(background)
    app.router.add_post("/v1/chat/completions", _ready(chat.handle))
    app.router.add_post("/v1/embeddings", _ready(endpoints.embeddings))
    app.router.add_post("/v1/messages", messages.handle)  # Anthropic clients: errors in their format
    app.router.add_post("/v1/messages/count_tokens", messages.count_tokens)
    app.router.add_get("/v1/models", _ready(endpoints.models))
    app.router.add_post("/v1/feedback", _ready(feedback.handle))
    app.router.add_get("/healthz", endpoints.healthz)
    app.router.add_get("/readyz", endpoints.readyz)
    app.router.add_get("/metrics", endpoints.metrics)
    spend_endpoints.register(app)  # /v1/budgets, /v1/files, /v1/batches, /v1/modelroute/deferred
    return app


def _otel_metrics_ctx(provider: Any) -> Background:
    """Mirror the Prometheus metrics into OpenTelemetry for the app's life; flush at shutdown."""
    from modelroute.telemetry.otel_metrics import PrometheusBridge

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        async with running(PrometheusBridge(app[SERVICES].metrics.registry, provider).run()):
            yield
        app[SERVICES].hooks.flush()  # the last answers' figures go out with the final export
        await asyncio.to_thread(provider.shutdown)

    return ctx


def _ready(handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def guarded(request: web.Request) -> web.StreamResponse:
        if not request.app[SERVICES].holder.ready:
            raise ClientError("the sidecar has no policy yet", status=503, type="server_error", code="no_policy")
        return await handler(request)

    guarded.__name__ = handler.__name__
    return guarded


__all__ = ["Background", "NotFound", "build_app"]
