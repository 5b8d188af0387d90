"""Batches as a sidecar feature: the Files and Batch endpoints, deferred answers, and the hook that
defers. Shapes follow OpenAI's Files and Batch APIs; sidecar objects add a ``modelroute`` field
(routing per model, unbatchable lines, cost). Files and batches the sidecar did not make, and files
for another purpose than ``batch``, are the provider's: they pass through."""

from __future__ import annotations

import email
import email.policy
import json
import re
from decimal import Decimal
from typing import Any

from aiohttp import web

from collections.abc import Sequence
from typing import Protocol

from modelroute.batch.deferred import BatchService, handle
from modelroute.batch.routing import CHAT, EMBEDDINGS, jsonl, route_file
from modelroute.batch.service import ACTIVE, ClientBatch, Part, batch_cost
from modelroute.contract.errors import BadRequest, NotFound
from modelroute.contract.features import BaseFeature, Route
from modelroute.contract.hooks import Hook
from modelroute.contract.http import lower_headers, read_json
from modelroute.policy import CompiledPolicy
from modelroute.providers import Usage
from modelroute.telemetry.cost import cost_usd, format_usd


class SpendSink(Protocol):
    """Where spend made outside a request's admission is counted against budgets (spend control)."""

    def record(self, policy: CompiledPolicy, headers: Any, usd: Decimal) -> None: ...


#: How far into an upload its ``purpose`` field is looked for (the SDKs send it before the file).
PURPOSE_WINDOW = 64 * 1024
_PURPOSE = re.compile(rb'name="purpose"\r\n(?:[^\r\n]+\r\n)*\r\n([^\r\n]*)\r\n')


class BatchFeature(BaseFeature):
    def __init__(self, spend: SpendSink | None = None) -> None:
        self.service = BatchService()
        self.hooks: Sequence[Hook] = (self.service,)
        self.spend = spend

    def routes(self) -> Sequence[Route]:
        return (Route("POST", "/v1/files", self.upload), Route("GET", "/v1/files/{id}", self.get_file),
                Route("GET", "/v1/files/{id}/content", self.file_content), Route("POST", "/v1/batches", self.create_batch),
                Route("GET", "/v1/batches/{id}", self.get_batch), Route("GET", "/v1/modelroute/deferred/{id}", self.deferred))

    async def upload(self, request: web.Request) -> web.StreamResponse:
        return await upload(self, request)

    async def create_batch(self, request: web.Request) -> web.StreamResponse:
        return await create_batch(self, request)

    async def get_batch(self, request: web.Request) -> web.StreamResponse:
        return await get_batch(self, request)

    async def get_file(self, request: web.Request) -> web.StreamResponse:
        return await get_file(self, request)

    async def file_content(self, request: web.Request) -> web.StreamResponse:
        return await file_content(self, request)

    async def deferred(self, request: web.Request) -> web.StreamResponse:
        return await deferred(self, request)


async def upload(feature: BatchFeature, request: web.Request) -> web.StreamResponse:
    """A batch input file is routed line by line here; a file for any other purpose is not the
    sidecar's: it passes through to the provider, streamed."""
    host = feature.host
    runtime = host.runtime()
    prefix = b""
    while len(prefix) < PURPOSE_WINDOW and not _PURPOSE.search(prefix):
        chunk = await request.content.read(PURPOSE_WINDOW)
        if not chunk:
            break
        prefix += chunk
    found = _PURPOSE.search(prefix)
    if found is None or found.group(1) != b"batch":
        return await host.passthrough(request, prefix)
    raw = prefix + await request.content.read()
    if len(raw) > host.max_body_bytes:
        raise BadRequest(f"the upload is larger than the limit of {host.max_body_bytes} bytes", code="request_too_large")
    name, content = _file_field(request.headers.get("Content-Type", ""), raw)
    routed = await route_file(runtime, name, content, lower_headers(request))
    feature.service.batches.add_file(routed)
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


async def create_batch(feature: BatchFeature, request: web.Request) -> web.StreamResponse:
    host = feature.host
    runtime = host.runtime()
    body = await read_json(request, host.max_body_bytes)
    batches = feature.service.batches
    file_id = str(body.get("input_file_id"))
    if not file_id.startswith(OWN_FILE):  # a file uploaded to the provider itself: its batch, unrouted
        return await host.passthrough(request, await request.read())
    file = batches.files.get(file_id)
    if file is None:
        raise NotFound(f"no file {file_id!r} was uploaded to this sidecar", param="input_file_id", code="not_found")
    endpoint = body.get("endpoint")
    if endpoint not in (CHAT, EMBEDDINGS) or any(x.url != endpoint for lines in file.groups.values() for x in lines):
        raise BadRequest(f"endpoint must be {CHAT} or {EMBEDDINGS}, and match every line's url", param="endpoint")
    metadata = body.get("metadata") if isinstance(body.get("metadata"), dict) else None
    batch = await batches.create(runtime, file, str(endpoint), str(body.get("completion_window") or "24h"),
                                 lower_headers(request), metadata)
    return web.json_response(batch.obj())


async def get_batch(feature: BatchFeature, request: web.Request) -> web.StreamResponse:
    if not request.match_info["id"].startswith(OWN_BATCH):
        return await feature.host.passthrough(request)
    batches = feature.service.batches
    batch = batches.batches.get(request.match_info["id"])
    if batch is None:
        raise NotFound(f"no batch {request.match_info['id']!r} in this sidecar", code="not_found")
    return web.json_response((await batches.refresh(batch)).obj())


async def get_file(feature: BatchFeature, request: web.Request) -> web.StreamResponse:
    ident = request.match_info["id"]
    if not ident.startswith(OWN_FILE):
        return await feature.host.passthrough(request)
    batches = feature.service.batches
    if ident in batches.files:
        return web.json_response(batches.files[ident].obj())
    batch = batches.by_output(ident)
    if batch is None or batch.output_file_id != ident:
        raise NotFound(f"no file {ident!r} in this sidecar", code="not_found")
    return web.json_response({"id": ident, "object": "file", "purpose": "batch_output", "filename": "batch_output.jsonl",
                              "created_at": batch.created_at, "status": "processed"})


async def file_content(feature: BatchFeature, request: web.Request) -> web.StreamResponse:
    ident = request.match_info["id"]
    if not ident.startswith(OWN_FILE):
        return await feature.host.passthrough(request)
    batches = feature.service.batches
    if ident in batches.files:
        file = batches.files[ident]
        return web.Response(body=jsonl([x for lines in file.groups.values() for x in lines]), content_type="application/jsonl")
    batch = batches.by_output(ident)
    if batch is None or batch.output_file_id != ident:
        raise NotFound(f"no file {ident!r} in this sidecar (a batch's output exists once it completed)", code="not_found")
    raw, usages = await batches.output(batch)
    cost = record_cost(feature, batch, usages)
    return web.Response(body=raw, content_type="application/jsonl", headers={"x-modelroute-cost-usd": format_usd(cost)})


def record_cost(feature: BatchFeature, batch: ClientBatch, usages: list[tuple[Part, Usage]]) -> Decimal:
    """Record a batch's cost once (metrics, budgets); later reads return the same figure."""
    if batch.cost is not None:
        return batch.cost
    batch.cost = batch_cost(usages)
    policy = batch.policy
    baseline = policy.models[policy.baseline].pricing
    for part, usage in usages:
        feature.host.record(policy.name, "batch", part.model, usage, cost_usd(usage, part.pricing, batch=True),
                            cost_usd(usage, baseline, batch=True))
    if feature.spend is not None:
        feature.spend.record(policy, batch.headers, batch.cost)
    return batch.cost


async def deferred(feature: BatchFeature, request: web.Request) -> web.Response:
    svc = feature.service
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
    cost = record_cost(feature, batch, usages)
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
