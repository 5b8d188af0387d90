"""Deferred requests: real-time requests answered later through the batch API, at its discount.

A chat request is deferred when all of these hold: its route says ``batch: preferred``; the client
opted in by sending ``x-modelroute-deadline`` (``24h``, ``36h``, ``2d``, ``90000s``...) no sooner than
the provider's batch window (24h); it speaks the OpenAI API and does not stream; and the model
routing chose has a batch API.
It is then sent as a one-line provider batch and answered ``202`` with a handle; ``GET
/v1/modelroute/deferred/{id}`` answers 202 while pending and 200 with the ``chat.completion`` once
done. Every other request is served in real time, unchanged.

:class:`BatchService` is the request hook that defers, and holds the sidecar's files and batches.
"""

from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING, Any

from modelroute.batch.routing import CHAT, InputFile, Line, batchable
from modelroute.batch.service import Batches, ClientBatch
from modelroute.contract.errors import ClientError

if TYPE_CHECKING:
    from modelroute.contract.hooks import Admission, RequestRecord
    from modelroute.policy import CompiledPolicy

DEADLINE_HEADER = "x-modelroute-deadline"
WINDOW, WINDOW_SECONDS = "24h", 86_400
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86_400}
_DEADLINE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")


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


def deferred_id(batch: ClientBatch) -> str:
    return "dfr_" + batch.id.removeprefix("batch_mr_")


def handle(batch: ClientBatch, status: str | None = None) -> dict[str, Any]:
    ident = deferred_id(batch)
    part = batch.parts[0] if batch.parts else None
    return {"id": ident, "object": "modelroute.deferred", "status": status or batch.status, "batch_id": batch.id,
            "model": part.model if part else None, "url": f"/v1/modelroute/deferred/{ident}", "created_at": batch.created_at}


class BatchService:
    """Request hook (defers opted-in requests) and the store of this sidecar's files and batches."""

    def __init__(self) -> None:
        self.batches = Batches()

    def find_deferred(self, ident: str) -> ClientBatch | None:
        return self.batches.batches.get("batch_mr_" + ident.removeprefix("dfr_")) if ident.startswith("dfr_") else None

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
        body = {**ex.view.body, "model": ex.policy.models[model].upstream_model}
        line = Line("dfr_" + hexid, CHAT, body, model, ex.decision.route)
        file = InputFile("file-mr-" + hexid, "deferred", 0, ex.policy, {model: [line]}, [])
        batch = await self.batches.create(ex.runtime, file, CHAT, WINDOW, ex.headers,
                                          metadata={"modelroute_request_id": ex.request_id}, batch_id="batch_mr_" + hexid)
        ex.serve_as(model)
        ex.note("modelroute.deferred", deferred_id(batch))
        raise Deferred(handle(batch))

    def skip(self, ex: RequestRecord, model: str) -> str | None:
        return None

    def settled(self, ex: RequestRecord) -> None:
        return None
