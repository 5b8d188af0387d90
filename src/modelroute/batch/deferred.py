"""Deferred requests: real-time requests answered later through the batch API, at its discount.

A chat request is deferred when all of these hold: its route says ``batch: preferred``; the client
opted in by sending ``x-modelroute-deadline`` (``24h``, ``36h``, ``2d``, ``90000s``...) no sooner than
the provider's batch window (24h); it speaks the OpenAI API and does not stream; and the model
routing chose has a batch API.
It is then sent as a one-line provider batch and answered ``202`` with a handle; ``GET
/v1/modelroute/deferred/{id}`` answers 202 while pending and 200 with the ``chat.completion`` once
done. Every other request is served in real time, unchanged.

The batch holds the request's worst case at batch prices from the moment it is deferred (the
admission's real-time reservation is given back for it), and its cost is recorded when the
provider finishes, like any batch's.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from modelroute.batch.openai_endpoints import OWN_BATCH, status
from modelroute.batch.records import OPENAI, BatchRecord
from modelroute.batch.routing import CHAT, Group, batchable
from modelroute.batch.service import Batches
from modelroute.batch.upstream import OpenAIBatches, UpstreamBatches
from modelroute.contract.errors import ClientError, NotFound
from modelroute.contract.spend import Work
from modelroute.telemetry.cost import format_usd

if TYPE_CHECKING:
    from modelroute.contract.features import Host
    from modelroute.contract.hooks import Admission, RequestRecord
    from modelroute.policy import CompiledPolicy

DEADLINE_HEADER = "x-modelroute-deadline"
WINDOW, WINDOW_SECONDS = "24h", 86_400
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86_400}
_DEADLINE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
OWN = "dfr_"


def parse_deadline(text: str) -> float | None:
    """Seconds of a deadline such as ``24h``; None when it cannot be read."""
    match = _DEADLINE.match(text.lower())
    return float(match.group(1)) * _UNITS[match.group(2)] if match else None


class Deferred(ClientError):
    """Not an error: the 202 answer carrying a deferred request's handle (raised from admission)."""

    status = 202
    type = "deferred"
    outcome = "deferred"

    def __init__(self, handle: dict[str, Any]) -> None:
        super().__init__("deferred to the batch API", code="deferred", headers={"location": handle["url"], "x-modelroute-deferred-id": handle["id"]})
        self.handle = handle

    def body(self) -> dict[str, Any]:
        return self.handle


def handle(record: BatchRecord) -> dict[str, Any]:
    ident = OWN + record.id.removeprefix(OWN_BATCH)
    part = record.parts[0] if record.parts else None
    return {"id": ident, "object": "modelroute.deferred", "status": status(record), "batch_id": record.id,
            "model": part.model if part else None, "url": f"/v1/modelroute/deferred/{ident}", "created_at": int(record.created_at)}


class Deferral:
    """The request hook that defers opted-in requests to a one-line batch."""

    def __init__(self, batches: Batches, created: Callable[[str], None] = lambda ident: None) -> None:
        self.batches = batches
        self.created = created  # a batch was started (the poller follows it)

    def phases(self, policy: CompiledPolicy) -> frozenset[str]:
        """Only a policy with a route that prefers batch defers requests."""
        preferred = policy.extensions.get("routeBatch") or {}
        return frozenset({"admit"}) if "preferred" in preferred.values() else frozenset()

    async def admit(self, ex: Admission) -> None:
        header = ex.headers.get(DEADLINE_HEADER)
        if header is None or ex.view is None or ex.decision is None or ex.view.stream or ex.view.api != "chat":
            return
        preferred = ex.policy.extensions.get("routeBatch") or {}
        if preferred.get(ex.decision.route) != "preferred":
            return
        seconds = parse_deadline(header)
        model = ex.decision.model
        if seconds is None or seconds < WINDOW_SECONDS or model is None or batchable(ex.policy, model) is not None:
            return
        hexid = uuid.uuid4().hex[:20]
        group = Group()
        group.add(OWN + hexid, CHAT, {**ex.view.body, "model": ex.policy.models[model].upstream_model},
                  Work(model, ex.view.input_tokens, ex.view.max_tokens))

        async def start(api: UpstreamBatches, model: str) -> dict[str, object]:
            assert isinstance(api, OpenAIBatches)
            uploaded = await api.upload(f"deferred.{model}.jsonl", bytes(group.jsonl))
            return await api.create(str(uploaded["id"]), CHAT, WINDOW, {"modelroute_request_id": ex.request_id})

        record = BatchRecord(OWN_BATCH + hexid, OPENAI, ex.policy.name, endpoint=CHAT, input_file_id="file-mr-" + hexid,
                             completion_window=WINDOW, metadata={"modelroute_request_id": ex.request_id})
        await self.batches.create(ex.runtime, record, {model: 1}, start, ex.headers, group.work, replacing=ex)
        self.created(record.id)
        ex.serve_as(model)
        ex.note("modelroute.deferred", OWN + hexid)
        raise Deferred(handle(record))

    def skip(self, ex: RequestRecord, model: str) -> str | None:
        return None

    def settled(self, ex: RequestRecord) -> None:
        return None


async def answer(batches: Batches, host: Host, ident: str) -> web.Response:
    """``GET /v1/modelroute/deferred/{id}``: 202 while the batch runs, then the answer and its cost."""
    runtime = host.runtime()
    record = await batches.store(runtime).get(OWN_BATCH + ident.removeprefix(OWN)) if ident.startswith(OWN) else None
    if record is None:
        raise NotFound(f"no deferred request {ident!r} in this sidecar", code="not_found")
    await batches.refresh(runtime, record)
    state = status(record)
    if not batches.ended(record):
        return web.json_response(handle(record), status=202, headers={"retry-after": "60"})
    if state != "completed":
        return web.json_response({**handle(record), "error": {"message": f"the provider batch ended {state}", "type": "upstream_error",
                                                              "code": "batch_" + state}})
    cost = await batches.finish(runtime, record)
    first = await anext(batches.results(runtime, record), b"")
    line = json.loads(first) if first.strip() else {}
    response = line.get("response") or {}
    body = response.get("body") if response.get("status_code") == 200 else {"error": line.get("error") or response.get("body")}
    headers = {"x-modelroute-cost-usd": format_usd(cost), "x-modelroute-model": record.parts[0].model}
    return web.json_response({**handle(record), "response": body, "cost_usd": format_usd(cost)}, headers=headers)
