"""The small endpoints: models, embeddings, health, readiness and metrics."""

from __future__ import annotations

import time
from typing import Mapping

from aiohttp import web

from modelroute.policy import ModelSpec
from modelroute.providers import Completion, Provider
from modelroute.proxy.attempts import attempt_each
from modelroute.proxy.errors import BadRequest, ClientError, NotFound, error_response
from modelroute.proxy.exchange import Exchange
from modelroute.proxy.ingress import lower_headers, read_json
from modelroute.proxy.state import SERVICES
from modelroute.routing import AUTO, Decision

_STARTED = int(time.time())


async def models(request: web.Request) -> web.Response:
    policy = request.app[SERVICES].holder.current.policy
    data = [{"id": AUTO, "object": "model", "created": _STARTED, "owned_by": "modelroute"}]
    data += [{"id": name, "object": "model", "created": _STARTED, "owned_by": spec.provider} for name, spec in policy.models.items()]
    return web.json_response({"object": "list", "data": data})


async def embeddings(request: web.Request) -> web.Response:
    """Embeddings are served by the model asked for: vectors of two models are not interchangeable,
    so there is no fallback to another model."""
    services = request.app[SERVICES]
    body = await read_json(request, services.settings.max_body_bytes)
    if not isinstance(body.get("model"), str):
        raise BadRequest("you must provide a model parameter", param="model", code="missing_required_parameter")
    if "input" not in body:
        raise BadRequest("input is a required property", param="input", code="missing_required_parameter")
    ex = Exchange(services, services.holder.current, "embeddings", lower_headers(request))
    try:
        name = body["model"]
        if name not in ex.policy.models:
            raise NotFound(f"the model {name!r} does not exist", param="model", code="model_not_found")
        ex.decision = Decision(route="embeddings", strategy="direct", candidates=(name,), reason="the client named the model")

        async def call(provider: Provider, spec: ModelSpec, timeout: float, headers: Mapping[str, str]) -> Completion:
            return await provider.embeddings(body, spec, timeout=timeout, headers=headers)

        outcome = await attempt_each(ex, call, usage_of=lambda c: c.usage)
        ex.served, ex.usage = outcome.model, outcome.result.usage
        ex.settle("ok")
        headers = ex.response_headers(with_cost=True)
        raw = outcome.result.raw
        return web.Response(body=raw, content_type="application/json", headers=headers)
    except ClientError as exc:
        ex.settle("error", exc.code or exc.type)
        return error_response(exc, ex.response_headers(with_cost=False))
    finally:
        ex.settle("error", "internal")


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    holder = request.app[SERVICES].holder
    if not holder.ready:
        return web.json_response({"status": "waiting for a policy"}, status=503)
    policy = holder.current.policy
    return web.json_response({"status": "ready", "policy": policy.name, "version": policy.version})


async def metrics(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    services.hooks.flush()
    services.metrics.breaker_open.clear()
    for model in services.breakers.open_models():
        services.metrics.breaker_open.labels(model).set(1)
    body = services.metrics.render()
    return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})
