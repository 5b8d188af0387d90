"""The small endpoints: models, embeddings, token counting, health, readiness and metrics."""

from __future__ import annotations

import logging
import time
from datetime import datetime, timezone
from typing import Any, Mapping

from aiohttp import web

from modelroute.policy import CompiledPolicy, ModelSpec
from modelroute.policy.model import MESSAGES
from modelroute.providers import Completion, ErrorKind, Provider, ProviderError
from modelroute.proxy.attempts import attempt_each
from modelroute.contract.messages import require
from modelroute.proxy.codecs.messages import MESSAGES as MESSAGES_CODEC, error_response as anthropic_error
from modelroute.contract.errors import BadRequest, ClientError, NotFound
from modelroute.proxy.errors import error_response
from modelroute.proxy.exchange import Exchange
from modelroute.contract.http import lower_headers, read_json
from modelroute.proxy.passthrough import family_of
from modelroute.proxy.pipeline import NoPolicy
from modelroute.proxy.state import SERVICES
from modelroute.routing import AUTO, Decision, build_view

log = logging.getLogger("modelroute.proxy")
_STARTED = int(time.time())


def _policy(request: web.Request) -> CompiledPolicy:
    holder = request.app[SERVICES].holder
    if not holder.ready:
        raise NoPolicy()
    return holder.current.policy


def _openai_model(name: str, owner: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": _STARTED, "owned_by": owner}


def _anthropic_model(name: str) -> dict[str, Any]:
    created = datetime.fromtimestamp(_STARTED, timezone.utc).isoformat().replace("+00:00", "Z")
    return {"type": "model", "id": name, "display_name": name, "created_at": created}


async def models(request: web.Request) -> web.Response:
    """``auto`` and the registry, in the shape of the client's API."""
    policy = _policy(request)
    if family_of(request) == "anthropic":
        data = [_anthropic_model(n) for n in [AUTO, *policy.models]]
        return web.json_response({"data": data, "has_more": False, "first_id": data[0]["id"], "last_id": data[-1]["id"]})
    rows = [_openai_model(AUTO, "modelroute")] + [_openai_model(n, s.provider) for n, s in policy.models.items()]
    return web.json_response({"object": "list", "data": rows})


async def model(request: web.Request) -> web.Response:
    """One model: a registry name, an alias, a provider's id, or ``auto``."""
    policy = _policy(request)
    asked = request.match_info["id"]
    name = AUTO if asked == AUTO else policy.resolve(asked)
    anthropic = family_of(request) == "anthropic"
    if name is None:
        exc = NotFound(f"The model '{asked}' does not exist or you do not have access to it.", param="model", code="model_not_found")
        request.app[SERVICES].metrics.child(request.app[SERVICES].metrics.errors, "model_not_found").inc()
        return anthropic_error(exc) if anthropic else error_response(exc)
    if anthropic:
        return web.json_response(_anthropic_model(asked))
    return web.json_response(_openai_model(asked, "modelroute" if name == AUTO else policy.models[name].provider))


async def embeddings(request: web.Request) -> web.Response:
    """Served by the model asked for: vectors of two models are not interchangeable, so there is
    no fallback to another model."""
    services = request.app[SERVICES]
    policy = _policy(request)
    body = await read_json(request, services.settings.max_body_bytes)
    if not isinstance(body.get("model"), str):
        raise BadRequest("you must provide a model parameter", param="model", code="missing_required_parameter")
    if "input" not in body:
        raise BadRequest("input is a required property", param="input", code="missing_required_parameter")
    ex = Exchange(services, services.holder.current, "embeddings", lower_headers(request))
    try:
        name = policy.resolve(body["model"])
        if name is None:
            raise NotFound(f"The model '{body['model']}' does not exist or you do not have access to it.", param="model",
                           code="model_not_found")
        ex.decision = Decision(route="embeddings", strategy="direct", candidates=(name,), reason="the client named the model")

        async def call(provider: Provider, spec: ModelSpec, timeout: float, headers: Mapping[str, str]) -> Completion:
            return await provider.embeddings(body, spec, timeout=timeout, headers=headers)

        outcome = await attempt_each(ex, call, usage_of=lambda c: c.usage, headers_of=lambda c: c.headers)
        ex.served, ex.usage = outcome.model, outcome.result.usage
        ex.settle("ok")
        return web.Response(body=outcome.result.raw, content_type="application/json", headers=ex.response_headers(with_cost=True))
    except ClientError as exc:
        ex.settle("error", exc.code or exc.type)
        return error_response(exc, ex.response_headers(with_cost=False))
    finally:
        ex.settle("error", "internal")


async def count_tokens(request: web.Request) -> web.Response:
    """``POST /v1/messages/count_tokens``: counted by the model the request names (or the policy
    default for ``auto``) when its provider speaks Messages; otherwise the sidecar's estimate."""
    services = request.app[SERVICES]
    policy = _policy(request)
    body = await read_json(request, services.settings.max_body_bytes)
    require(body, count=True)
    incoming = MESSAGES_CODEC.parse({**body, "max_tokens": 1})
    name = policy.default if body["model"] == AUTO else policy.resolve(body["model"])
    if name is None:
        return anthropic_error(ClientError(f"model: {body['model']!r} does not exist", status=404))
    provider = services.holder.current.provider_for(name)
    headers = {"x-modelroute-model": name, "x-modelroute-policy-version": policy.version}
    if MESSAGES in provider.apis:
        try:
            counted = await provider.count_tokens(body, policy.models[name], timeout=policy.timeouts.attempt_seconds, headers={})
            return web.json_response(counted, headers=headers)
        except ProviderError as exc:
            if exc.kind is ErrorKind.BAD_REQUEST:
                return anthropic_error(ClientError(str((exc.error or {}).get("message") or exc.message), status=exc.status or 400))
    view = build_view(incoming.chat, {}, api="messages")
    return web.json_response({"input_tokens": view.input_tokens}, headers={**headers, "x-modelroute-estimate": "true"})


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def missing_keys(request: web.Request) -> list[dict[str, str]]:
    """The providers of the active policy whose key cannot be read, and where each is expected."""
    holder = request.app[SERVICES].holder
    out = []
    for name, provider in holder.current.providers.items():
        try:
            provider.key()
        except ProviderError as exc:
            out.append({"provider": name, "problem": exc.message})
    return out


async def readyz(request: web.Request) -> web.Response:
    holder = request.app[SERVICES].holder
    if not holder.ready:
        return web.json_response({"status": "waiting for a policy"}, status=503)
    policy = holder.current.policy
    body: dict[str, Any] = {"status": "ready", "policy": policy.name, "version": policy.version}
    missing = missing_keys(request)
    if missing:
        body["missingKeys"] = missing
    return web.json_response(body)


async def metrics(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    services.hooks.flush()
    services.metrics.breaker_open.clear()
    for name in services.breakers.open_models():
        services.metrics.breaker_open.labels(name).set(1)
    body = services.metrics.render()
    return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})
