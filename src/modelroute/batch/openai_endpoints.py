"""OpenAI's Files and Batch APIs through the sidecar, every line routed.

Shapes follow OpenAI's Files and Batch APIs; sidecar objects add a ``modelroute`` field (routing
per model, unbatchable lines, cost). A client batch (``batch_mr_...``) aggregates its provider
batches: still running while any part is, ``failed`` or ``cancelled`` when every part is, else
``completed``, with an output file (``file-mr-out-...``) that merges the parts' outputs. Files and
batches the sidecar did not make, and files for another purpose than ``batch``, are the
provider's: they pass through.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from aiohttp import web

from modelroute.batch.records import OPENAI, BatchRecord
from modelroute.batch.routing import CHAT, EMBEDDINGS, route_file
from modelroute.batch.upstream import OpenAIBatches, UpstreamBatches
from modelroute.contract.errors import BadRequest, NotFound
from modelroute.contract.features import Route
from modelroute.contract.http import lower_headers, read_json
from modelroute.telemetry.cost import format_usd

if TYPE_CHECKING:
    from modelroute.batch.feature import BatchFeature

#: Ids the sidecar gives its own files and batches; any other id is the provider's, passed through.
OWN_FILE, OWN_BATCH, OWN_OUTPUT = "file-mr-", "batch_mr_", "file-mr-out-"
ACTIVE = ("validating", "in_progress", "finalizing", "cancelling")
#: How far into an upload its ``purpose`` field is looked for (the SDKs send it before the file).
PURPOSE_WINDOW = 64 * 1024
_PURPOSE = re.compile(rb'name="purpose"\r\n(?:[^\r\n]+\r\n)*\r\n([^\r\n]*)\r\n')


def status(record: BatchRecord) -> str:
    statuses = [str(p.upstream.get("status", "validating")) for p in record.parts]
    if not statuses:
        return "failed"
    if any(s in ACTIVE for s in statuses):
        return "validating" if all(s == "validating" for s in statuses) else "in_progress"
    if all(s == "failed" for s in statuses):
        return "failed"
    if all(s == "cancelled" for s in statuses):
        return "cancelled"
    return "completed"


def output_file_id(record: BatchRecord) -> str | None:
    return OWN_OUTPUT + record.id.removeprefix(OWN_BATCH) if status(record) == "completed" else None


def batch_obj(record: BatchRecord) -> dict[str, Any]:
    counts = {"total": len(record.errored), "completed": 0, "failed": len(record.errored)}
    for part in record.parts:
        got = part.upstream.get("request_counts") or {}
        counts["total"] += int(got.get("total") or part.requests)
        counts["completed"] += int(got.get("completed") or 0)
        counts["failed"] += int(got.get("failed") or 0)
    errors = [u.error() for u in record.errored]
    return {
        "id": record.id, "object": "batch", "endpoint": record.endpoint, "input_file_id": record.input_file_id,
        "completion_window": record.completion_window, "status": status(record), "output_file_id": output_file_id(record),
        "error_file_id": None, "created_at": int(record.created_at), "request_counts": counts, "metadata": record.metadata,
        "errors": {"object": "list", "data": errors} if errors else None,
        "modelroute": {"parts": [{"model": p.model, "provider": p.provider, "batch": p.upstream_id, "status": p.upstream.get("status"),
                                  "requests": p.requests} for p in record.parts],
                       "cost_usd": format_usd(record.cost) if record.cost is not None else None},
    }


def routes(feature: BatchFeature) -> Sequence[Route]:
    ends = OpenAIBatchEndpoints(feature)
    return (Route("POST", "/v1/files", ends.upload), Route("GET", "/v1/files/{id}", ends.get_file),
            Route("GET", "/v1/files/{id}/content", ends.file_content), Route("POST", "/v1/batches", ends.create_batch),
            Route("GET", "/v1/batches/{id}", ends.get_batch))


_BOUNDARY = re.compile(r'boundary=(?:"([^"]+)"|([^;\s]+))', re.IGNORECASE)
_NAME = re.compile(rb';\s*name="([^"]*)"', re.IGNORECASE)
_FILENAME = re.compile(rb';\s*filename="([^"]*)"', re.IGNORECASE)


def _file_field(content_type: str, raw: bytes) -> tuple[str, bytes]:
    """(filename, content) of the multipart field ``file``. Split by hand: the stdlib's email
    parser compiles a regular expression per boundary (every upload has its own) and took 16 ms
    of a one-line upload."""
    found = _BOUNDARY.search(content_type)
    if found is not None:
        delimiter = b"--" + (found.group(1) or found.group(2)).encode("latin-1")
        for chunk in raw.split(delimiter)[1:]:
            if chunk.startswith(b"--"):  # the closing delimiter
                break
            head, blank, body = chunk.partition(b"\r\n\r\n")
            disposition = next((h for h in head.split(b"\r\n") if h.lower().startswith(b"content-disposition:")), b"")
            name = _NAME.search(disposition)
            if blank and name is not None and name.group(1) == b"file":
                filename = _FILENAME.search(disposition)
                body = body[:-2] if body.endswith(b"\r\n") else body
                return (filename.group(1).decode("utf-8", "replace") if filename else "") or "batch.jsonl", body
    raise BadRequest("file is required (multipart field 'file')", param="file", code="missing_required_parameter")


class OpenAIBatchEndpoints:
    def __init__(self, feature: BatchFeature) -> None:
        self.feature = feature

    async def upload(self, request: web.Request) -> web.StreamResponse:
        """A batch input file is routed line by line here; a file for any other purpose is not the
        sidecar's: it passes through to the provider, streamed."""
        host = self.feature.host
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
        self.feature.batches.files.add(routed)
        return web.json_response(routed.obj())

    async def create_batch(self, request: web.Request) -> web.StreamResponse:
        feature = self.feature
        runtime = feature.host.runtime()
        body = await read_json(request, feature.host.max_body_bytes)
        file_id = str(body.get("input_file_id"))
        if not file_id.startswith(OWN_FILE):  # a file uploaded to the provider itself: its batch, unrouted
            return await feature.host.passthrough(request, await request.read())
        file = feature.batches.files.get(file_id)
        if file is None:
            raise NotFound(f"no file {file_id!r} was uploaded to this sidecar", param="input_file_id", code="not_found")
        endpoint = body.get("endpoint")
        if endpoint not in (CHAT, EMBEDDINGS) or any(url != endpoint for url in file.urls):
            raise BadRequest(f"endpoint must be {CHAT} or {EMBEDDINGS}, and match every line's url", param="endpoint")
        metadata = body.get("metadata") if isinstance(body.get("metadata"), dict) else None
        window = str(body.get("completion_window") or "24h")

        async def start(api: UpstreamBatches, model: str) -> dict[str, object]:
            assert isinstance(api, OpenAIBatches)
            uploaded = await api.upload(f"{file.filename}.{model}.jsonl", bytes(file.groups[model].jsonl))
            return await api.create(str(uploaded["id"]), str(endpoint), window, metadata)

        record = BatchRecord(OWN_BATCH + uuid.uuid4().hex[:20], OPENAI, runtime.policy.name, errored=list(file.unbatchable),
                             endpoint=str(endpoint), input_file_id=file.id, completion_window=window, metadata=metadata)
        groups = {model: group.count for model, group in file.groups.items()}
        work = [w for group in file.groups.values() for w in group.work]
        await feature.batches.create(runtime, record, groups, start, lower_headers(request), work)
        if record.cost is None:
            feature.poller.track(record.id)
        return web.json_response(batch_obj(record))

    async def _record(self, ident: str) -> BatchRecord | None:
        batches = self.feature.batches
        runtime = self.feature.host.runtime()
        record = await batches.store(runtime).get(ident)
        if record is not None:
            await batches.refresh(runtime, record)
        return record

    async def get_batch(self, request: web.Request) -> web.StreamResponse:
        ident = request.match_info["id"]
        if not ident.startswith(OWN_BATCH):
            return await self.feature.host.passthrough(request)
        record = await self._record(ident)
        if record is None:
            raise NotFound(f"no batch {ident!r} in this sidecar", code="not_found")
        return web.json_response(batch_obj(record))

    async def _output(self, ident: str) -> BatchRecord:
        """The batch whose output file ``ident`` is, once completed (404 before)."""
        record = await self._record(OWN_BATCH + ident.removeprefix(OWN_OUTPUT)) if ident.startswith(OWN_OUTPUT) else None
        if record is None or output_file_id(record) != ident:
            raise NotFound(f"no file {ident!r} in this sidecar (a batch's output exists once it completed)", code="not_found")
        return record

    async def get_file(self, request: web.Request) -> web.StreamResponse:
        ident = request.match_info["id"]
        if not ident.startswith(OWN_FILE):
            return await self.feature.host.passthrough(request)
        file = self.feature.batches.files.get(ident)
        if file is not None:
            return web.json_response(file.obj())
        record = await self._output(ident)
        return web.json_response({"id": ident, "object": "file", "purpose": "batch_output", "filename": "batch_output.jsonl",
                                  "created_at": int(record.created_at), "status": "processed"})

    async def file_content(self, request: web.Request) -> web.StreamResponse:
        ident = request.match_info["id"]
        if not ident.startswith(OWN_FILE):
            return await self.feature.host.passthrough(request)
        batches = self.feature.batches
        file = batches.files.get(ident)
        if file is not None:
            return web.Response(body=file.content(), content_type="application/jsonl")
        record = await self._output(ident)
        runtime = self.feature.host.runtime()
        cost = await batches.finish(runtime, record)  # recorded already, or now: once either way
        lines = batches.results(runtime, record)
        first = await anext(lines, b"")  # a provider that fails answers an error, not a cut stream
        response = web.StreamResponse(headers={"Content-Type": "application/jsonl", "x-modelroute-cost-usd": format_usd(cost)})
        await response.prepare(request)
        await response.write(first)
        async for line in lines:
            await response.write(line)
        await response.write_eof()
        return response
