"""HTTP handlers of the batch pass-through and of deferred answers (registered by
:mod:`modelroute.proxy.spend_endpoints`). Shapes follow OpenAI's Files and Batch APIs; sidecar
objects add a ``modelroute`` field (routing per model, unbatchable lines, cost)."""

from __future__ import annotations

import email
import email.policy
import json
import re
from decimal import Decimal
from typing import Any

from aiohttp import web

from modelroute.batch.deferred import BatchService, handle
from modelroute.batch.routing import CHAT, EMBEDDINGS, jsonl, route_file
from modelroute.batch.service import ACTIVE, ClientBatch, Part, batch_cost
from modelroute.providers import Usage
from modelroute.proxy.errors import BadRequest, ClientError, NotFound
from modelroute.proxy.ingress import lower_headers, read_json
from modelroute.proxy import passthrough
from modelroute.proxy.state import SERVICES, Services
from modelroute.telemetry.cost import cost_usd, format_usd


def service(app: web.Application) -> BatchService:
    for hook in app[SERVICES].hooks.items:
        if isinstance(hook, BatchService):
            return hook
    raise ClientError("batch routing is not enabled in this sidecar", status=404, code="not_found")


def _services(request: web.Request) -> Services:
    services = request.app[SERVICES]
    if not services.holder.ready:
        raise ClientError("the sidecar has no policy yet", status=503, type="server_error", code="no_policy")
    return services


#: How far into an upload its ``purpose`` field is looked for (the SDKs send it before the file).
PURPOSE_WINDOW = 64 * 1024
_PURPOSE = re.compile(rb'name="purpose"\r\n(?:[^\r\n]+\r\n)*\r\n([^\r\n]*)\r\n')


async def upload(request: web.Request) -> web.StreamResponse:
    """A batch input file is routed line by line here; a file for any other purpose is not the
    sidecar's: it passes through to the provider, streamed."""
    services = _services(request)
    prefix = b""
    while len(prefix) < PURPOSE_WINDOW and not _PURPOSE.search(prefix):
        chunk = await request.content.read(PURPOSE_WINDOW)
        if not chunk:
            break
        prefix += chunk
    found = _PURPOSE.search(prefix)
    if found is None or found.group(1) != b"batch":
        return await passthrough.forward(request, prefix)
    raw = prefix + await request.content.read()
    if len(raw) > services.settings.max_body_bytes:
        raise BadRequest(f"the upload is larger than the limit of {services.settings.max_body_bytes} bytes", code="request_too_large")
    name, content = _file_field(request.headers.get("Content-Type", ""), raw)
    routed = await route_file(services.holder.current, name, content, lower_headers(request))
    service(request.app).batches.add_file(routed)
    return web.json_response(routed.obj())


def _file_field(content_type: str, raw: bytes) -> tuple[str, bytes]:
    """(filename, content) of the multipart field ``file``."""
    message = email.message_from_bytes(b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + raw,
                                       policy=email.policy.HTTP)
    for part in message.iter_parts() if message.is_multipart() else ():
        if part.get_param("name", header="content-disposition") == "file":
            payload = part.get_payload(decode=True)
            return str(part.get_filename() or "batch.jsonl"), payload if isinstance(payload, bytes) else b""
    raise BadRequest("file is required (multipart field 'file')", param="file", code="missing_required_parameter")


#: Ids the sidecar gives its own files and batches; any other id is the provider's, passed through.
OWN_FILE, OWN_BATCH = "file-mr-", "batch_mr_"


async def create_batch(request: web.Request) -> web.StreamResponse:
    services = _services(request)
    body = await read_json(request, services.settings.max_body_bytes)
    batches = service(request.app).batches
    file_id = str(body.get("input_file_id"))
    if not file_id.startswith(OWN_FILE):  # a file uploaded to the provider itself: its batch, unrouted
        return await passthrough.forward(request, await request.read())
    file = batches.files.get(file_id)
    if file is None:
        raise NotFound(f"no file {file_id!r} was uploaded to this sidecar", param="input_file_id", code="not_found")
    endpoint = body.get("endpoint")
    if endpoint not in (CHAT, EMBEDDINGS) or any(x.url != endpoint for lines in file.groups.values() for x in lines):
        raise BadRequest(f"endpoint must be {CHAT} or {EMBEDDINGS}, and match every line's url", param="endpoint")
    metadata = body.get("metadata") if isinstance(body.get("metadata"), dict) else None
    batch = await batches.create(services.holder.current, file, str(endpoint), str(body.get("completion_window") or "24h"),
                                 lower_headers(request), metadata)
    return web.json_response(batch.obj())


async def get_batch(request: web.Request) -> web.StreamResponse:
    if not request.match_info["id"].startswith(OWN_BATCH):
        return await passthrough.forward(request)
    batches = service(request.app).batches
    batch = batches.batches.get(request.match_info["id"])
    if batch is None:
        raise NotFound(f"no batch {request.match_info['id']!r} in this sidecar", code="not_found")
    return web.json_response((await batches.refresh(batch)).obj())


async def get_file(request: web.Request) -> web.StreamResponse:
    ident = request.match_info["id"]
    if not ident.startswith(OWN_FILE):
        return await passthrough.forward(request)
    batches = service(request.app).batches
    if ident in batches.files:
        return web.json_response(batches.files[ident].obj())
    batch = batches.by_output(ident)
    if batch is None or batch.output_file_id != ident:
        raise NotFound(f"no file {ident!r} in this sidecar", code="not_found")
    return web.json_response({"id": ident, "object": "file", "purpose": "batch_output", "filename": "batch_output.jsonl",
                              "created_at": batch.created_at, "status": "processed"})


async def file_content(request: web.Request) -> web.StreamResponse:
    ident = request.match_info["id"]
    if not ident.startswith(OWN_FILE):
        return await passthrough.forward(request)
    batches = service(request.app).batches
    if ident in batches.files:
        file = batches.files[ident]
        return web.Response(body=jsonl([x for lines in file.groups.values() for x in lines]), content_type="application/jsonl")
    batch = batches.by_output(ident)
    if batch is None or batch.output_file_id != ident:
        raise NotFound(f"no file {ident!r} in this sidecar (a batch's output exists once it completed)", code="not_found")
    raw, usages = await batches.output(batch)
    cost = record_cost(request.app[SERVICES], batch, usages)
    return web.Response(body=raw, content_type="application/jsonl", headers={"x-modelroute-cost-usd": format_usd(cost)})


def record_cost(services: Services, batch: ClientBatch, usages: list[tuple[Part, Usage]]) -> Decimal:
    """Record a batch's cost once (metrics, budgets); later reads return the same figure."""
    if batch.cost is not None:
        return batch.cost
    batch.cost = batch_cost(usages)
    policy = batch.policy
    baseline = policy.models[policy.baseline].pricing
    for part, usage in usages:
        series = services.metrics.route(policy.name, "batch", part.model)
        series.input_tokens += usage.input_tokens
        series.output_tokens += usage.output_tokens
        series.cost += float(cost_usd(usage, part.pricing, batch=True))
        series.baseline_cost += float(cost_usd(usage, baseline, batch=True))
    from modelroute.spend import SpendHook

    for hook in services.hooks.items:
        if isinstance(hook, SpendHook):
            hook.record(services, policy, batch.headers, batch.cost)
    return batch.cost


async def deferred(request: web.Request) -> web.Response:
    svc = service(request.app)
    batch = svc.find_deferred(request.match_info["id"])
    if batch is None:
        raise NotFound(f"no deferred request {request.match_info['id']!r} in this sidecar", code="not_found")
    await svc.batches.refresh(batch)
    status = batch.status
    if status in ACTIVE:
        return web.json_response(handle(batch), status=202, headers={"retry-after": "60"})
    if status != "completed":
        return web.json_response({**handle(batch), "error": {"message": f"the provider batch ended {status}", "type": "upstream_error",
                                                             "code": "batch_" + status}})
    raw, usages = await svc.batches.output(batch)
    cost = record_cost(request.app[SERVICES], batch, usages)
    answer = _first_answer(raw)
    headers = {"x-modelroute-cost-usd": format_usd(cost), "x-modelroute-model": batch.parts[0].model}
    return web.json_response({**handle(batch), "response": answer, "cost_usd": format_usd(cost)}, headers=headers)


def _first_answer(raw: bytes) -> Any:
    for text in raw.splitlines():
        if text.strip():
            line = json.loads(text)
            response = line.get("response") or {}
            return response.get("body") if response.get("status_code") == 200 else {"error": line.get("error") or response.get("body")}
    return None


def register(app: web.Application) -> None:
    app.router.add_post("/v1/files", upload)
    app.router.add_get("/v1/files/{id}", get_file)
    app.router.add_get("/v1/files/{id}/content", file_content)
    app.router.add_post("/v1/batches", create_batch)
    app.router.add_get("/v1/batches/{id}", get_batch)
    app.router.add_get("/v1/modelroute/deferred/{id}", deferred)
