"""Anthropic's Message Batches through the sidecar (``/v1/messages/batches``), every request routed.

The shapes are Anthropic's (``message_batch``, ``message_batch_deleted``, the list page, JSONL
results of ``{custom_id, result}``), so the ``anthropic`` SDK's ``messages.batches`` methods work
against the sidecar. A client batch (``msgbatch_mr_...``) aggregates its provider batches:

* ``processing_status`` is ``ended`` once every part ended, else ``canceling`` once the client
  asked to cancel, else ``in_progress``; ``request_counts`` add up the parts' counts and the
  requests no part took (``errored``); ``ended_at`` is the last part's; ``results_url`` points at
  this sidecar (``GET .../{id}/results``), which merges the parts' results and adds an ``errored``
  result for each request that could not be batched, with its reason.
* A ``modelroute`` field shows the parts and the cost recorded.

Ids the sidecar did not make are the provider's: they pass through unrouted. Errors are written in
Anthropic's format by the sidecar (every path under ``/v1/messages`` is an Anthropic client's).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

from modelroute.batch.messages import route_requests
from modelroute.batch.records import ANTHROPIC, BatchRecord, Unbatchable
from modelroute.batch.upstream import MessageBatchesAPI, UpstreamBatches
from modelroute.contract.errors import BadRequest, NotFound
from modelroute.contract.features import Route
from modelroute.contract.http import lower_headers, read_json
from modelroute.telemetry.cost import format_usd

if TYPE_CHECKING:
    from modelroute.batch.feature import BatchFeature

OWN = "msgbatch_mr_"
BASE = "/v1/messages/batches"
_COUNTS = ("processing", "succeeded", "errored", "canceled", "expired")


def _time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


def message_batch(record: BatchRecord, origin: str) -> dict[str, Any]:
    counts = dict.fromkeys(_COUNTS, 0)
    counts["errored"] = len(record.errored)
    ended = True
    ended_at: list[str] = []
    for part in record.parts:
        seen = part.upstream.get("request_counts") or {}
        if MessageBatchesAPI.ended(part.upstream):
            ended_at.append(str(part.upstream.get("ended_at") or ""))
        else:
            ended = False
        for key in _COUNTS:
            counts[key] += int(seen.get(key) or 0)
        counts["processing"] += max(0, part.requests - sum(int(seen.get(k) or 0) for k in _COUNTS))
    status = "ended" if ended else "canceling" if record.cancel_at is not None else "in_progress"
    last = (max(ended_at) or None) if ended_at else None
    return {
        "id": record.id, "type": "message_batch", "processing_status": status, "request_counts": counts,
        "ended_at": (last or _time(record.created_at)) if ended else None,
        "created_at": _time(record.created_at), "expires_at": _time(record.created_at + 86_400), "archived_at": None,
        "cancel_initiated_at": _time(record.cancel_at) if record.cancel_at is not None else None,
        "results_url": f"{origin}{BASE}/{record.id}/results" if ended else None,
        "modelroute": {"parts": [{"model": p.model, "provider": p.provider, "batch": p.upstream_id,
                                  "status": p.upstream.get("processing_status"), "requests": p.requests} for p in record.parts],
                       "cost_usd": format_usd(record.cost) if record.cost is not None else None},
    }


def errored_result(item: Unbatchable) -> bytes:
    """The result line of a request no provider batch took."""
    error = {"type": "error", "error": {"type": "invalid_request_error", "message": item.message()}, "request_id": None}
    return json.dumps({"custom_id": item.custom_id, "result": {"type": "errored", "error": error}}).encode() + b"\n"


def _origin(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


def routes(feature: BatchFeature) -> Sequence[Route]:
    ends = MessageBatchEndpoints(feature)
    return (Route("POST", BASE, ends.create), Route("GET", BASE, ends.list),
            Route("GET", BASE + "/{id}", ends.retrieve), Route("DELETE", BASE + "/{id}", ends.delete),
            Route("POST", BASE + "/{id}/cancel", ends.cancel), Route("GET", BASE + "/{id}/results", ends.results))


class MessageBatchEndpoints:
    def __init__(self, feature: BatchFeature) -> None:
        self.feature = feature

    async def create(self, request: web.Request) -> web.StreamResponse:
        feature = self.feature
        runtime = feature.host.runtime()
        body = await read_json(request, feature.host.max_body_bytes)
        headers = lower_headers(request)
        routed = await route_requests(runtime, body, headers)

        async def start(api: UpstreamBatches, model: str) -> dict[str, object]:
            assert isinstance(api, MessageBatchesAPI)
            return await api.create(routed.groups[model].items)

        record = BatchRecord(OWN + uuid.uuid4().hex[:20], ANTHROPIC, runtime.policy.name, errored=routed.unbatchable)
        groups = {model: len(group.items) for model, group in routed.groups.items()}
        await feature.batches.create(runtime, record, groups, start, headers, routed.work)
        if record.cost is None:
            feature.poller.track(record.id)
        return web.json_response(message_batch(record, _origin(request)))

    async def _record(self, request: web.Request, refresh: bool = True) -> BatchRecord | None:
        """The sidecar's batch of the path's id (None: not the sidecar's, for pass-through)."""
        ident = request.match_info["id"]
        if not ident.startswith(OWN):
            return None
        batches = self.feature.batches
        runtime = self.feature.host.runtime()
        record = await batches.store(runtime).get(ident)
        if record is None:
            raise NotFound(f"Message batch {ident} not found.", code="not_found")
        if refresh:
            await batches.refresh(runtime, record)
        return record

    async def retrieve(self, request: web.Request) -> web.StreamResponse:
        record = await self._record(request)
        if record is None:
            return await self.feature.host.passthrough(request)
        return web.json_response(message_batch(record, _origin(request)))

    async def cancel(self, request: web.Request) -> web.StreamResponse:
        record = await self._record(request)
        if record is None:
            return await self.feature.host.passthrough(request, await request.read())
        if not self.feature.batches.ended(record):
            await self.feature.batches.cancel(self.feature.host.runtime(), record)
        return web.json_response(message_batch(record, _origin(request)))

    async def delete(self, request: web.Request) -> web.StreamResponse:
        record = await self._record(request)
        if record is None:
            return await self.feature.host.passthrough(request)
        batches, runtime = self.feature.batches, self.feature.host.runtime()
        if not batches.ended(record):
            status = message_batch(record, "")["processing_status"]
            raise BadRequest(f"Message batch {record.id} cannot be deleted while it is {status}; cancel it first.")
        await batches.finish(runtime, record)  # its cost is recorded before its record goes
        for part in record.parts:
            api = batches.api(runtime, record, part)
            assert isinstance(api, MessageBatchesAPI)
            await api.delete(part.upstream_id)
        await batches.store(runtime).remove(record.id)
        return web.json_response({"id": record.id, "type": "message_batch_deleted"})

    async def results(self, request: web.Request) -> web.StreamResponse:
        record = await self._record(request)
        if record is None:
            return await self.feature.host.passthrough(request)
        batches, runtime = self.feature.batches, self.feature.host.runtime()
        if not batches.ended(record):
            raise BadRequest(f"Message batch {record.id} has not ended yet: its results are not available.")
        cost = await batches.finish(runtime, record)
        lines = batches.results(runtime, record)
        first = await anext(lines, b"")  # a provider that fails answers an error, not a cut stream
        response = web.StreamResponse(headers={"Content-Type": "application/binary", "x-modelroute-cost-usd": format_usd(cost)})
        await response.prepare(request)
        await response.write(first)
        async for line in lines:
            await response.write(line)
        for item in record.errored:
            await response.write(errored_result(item))
        await response.write_eof()
        return response

    async def list(self, request: web.Request) -> web.StreamResponse:
        """The sidecar's batches, newest first, in Anthropic's pages (``limit``, ``after_id``, ``before_id``)."""
        feature = self.feature
        runtime = feature.host.runtime()
        store = feature.batches.store(runtime)
        ids = await store.listed(ANTHROPIC)
        try:
            limit = int(request.query.get("limit", "20"))
        except ValueError:
            raise BadRequest("limit: Input should be a valid integer", param="limit") from None
        if not 1 <= limit <= 1000:
            raise BadRequest("limit: Input should be between 1 and 1000", param="limit")
        after, before = request.query.get("after_id"), request.query.get("before_id")
        if after in ids:
            ids = ids[ids.index(after) + 1:]
        elif before in ids:
            ids = ids[: ids.index(before)]
        page = ids[-limit:] if before is not None and after is None else ids[:limit]
        data = [message_batch(r, _origin(request)) for r in await store.get_many(page)]
        return web.json_response({"data": data, "has_more": len(ids) > limit, "first_id": data[0]["id"] if data else None,
                                  "last_id": data[-1]["id"] if data else None})
