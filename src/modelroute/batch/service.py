"""Batches through the sidecar: one client batch fans out to one provider batch per routed model.

A :class:`ClientBatch` is what the client sees (``batch_mr_...``): its status and request counts
aggregate its provider batches (:class:`Part`), its ``errors`` list the unbatchable lines, and its
output file (``file-mr-out-...``) merges the parts' outputs. Batch usage is priced at the
registry's prices times ``pricing.batchDiscount``, and recorded (metrics, and budgets as settled
spend) once, the first time the output is read. Batches live in this sidecar's memory (the newest
:data:`MAX_BATCHES`); a restarted sidecar forgets them (the provider still has them).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from modelroute.batch.routing import InputFile, Line, Unbatchable, jsonl
from modelroute.batch.upstream import BatchAPI
from modelroute.policy import CompiledPolicy, Pricing
from modelroute.providers import Usage
from modelroute.contract.hooks import RuntimeView as Runtime
from modelroute.telemetry.cost import ZERO, cost_usd

MAX_BATCHES = 1000
ACTIVE = ("validating", "in_progress", "finalizing")


@dataclass
class Part:
    model: str
    provider: str
    api: BatchAPI
    pricing: Pricing
    lines: int
    upstream: dict[str, Any]  # the provider's batch object, as last seen

    @property
    def status(self) -> str:
        return str(self.upstream.get("status", "validating"))


@dataclass
class ClientBatch:
    id: str
    input_file_id: str
    endpoint: str
    completion_window: str
    policy: CompiledPolicy
    parts: list[Part]
    unbatchable: list[Unbatchable]
    headers: Mapping[str, str]  # the creating request's headers (budget scopes)
    metadata: Mapping[str, str] | None = None
    created_at: int = field(default_factory=lambda: int(time.time()))
    cost: Decimal | None = None  # set once the output was read (recorded once)

    @property
    def status(self) -> str:
        statuses = [p.status for p in self.parts]
        if not statuses:
            return "failed"
        if any(s in ACTIVE for s in statuses):
            return "validating" if all(s == "validating" for s in statuses) else "in_progress"
        if all(s == "failed" for s in statuses):
            return "failed"
        if all(s in ("cancelled", "cancelling") for s in statuses):
            return "cancelled"
        return "completed"

    @property
    def output_file_id(self) -> str | None:
        return "file-mr-out-" + self.id.removeprefix("batch_mr_") if self.status == "completed" else None

    def obj(self) -> dict[str, Any]:
        counts = {"total": len(self.unbatchable), "completed": 0, "failed": len(self.unbatchable)}
        for part in self.parts:
            got = part.upstream.get("request_counts") or {}
            counts["total"] += int(got.get("total") or part.lines)
            counts["completed"] += int(got.get("completed") or 0)
            counts["failed"] += int(got.get("failed") or 0)
        errors = [u.error() for u in self.unbatchable]
        return {
            "id": self.id, "object": "batch", "endpoint": self.endpoint, "input_file_id": self.input_file_id,
            "completion_window": self.completion_window, "status": self.status, "output_file_id": self.output_file_id,
            "error_file_id": None, "created_at": self.created_at, "request_counts": counts, "metadata": self.metadata,
            "errors": {"object": "list", "data": errors} if errors else None,
            "modelroute": {"parts": [{"model": p.model, "provider": p.provider, "batch": p.upstream.get("id"), "status": p.status,
                                      "requests": p.lines} for p in self.parts],
                           "cost_usd": str(self.cost) if self.cost is not None else None},
        }


class Batches:
    """The sidecar's files and batches."""

    def __init__(self) -> None:
        self.files: dict[str, InputFile] = {}
        self.batches: dict[str, ClientBatch] = {}

    def add_file(self, file: InputFile) -> None:
        self.files[file.id] = file
        _trim(self.files)

    async def create(self, runtime: Runtime, file: InputFile, endpoint: str, window: str, headers: Mapping[str, str],
                     metadata: Mapping[str, str] | None = None, batch_id: str | None = None) -> ClientBatch:
        """Upload each model's lines to its provider and start a provider batch for each."""
        parts = []
        for model, lines in file.groups.items():
            spec = runtime.policy.models[model]
            api = BatchAPI(runtime.provider_for(model))
            uploaded = await api.upload(f"{file.filename}.{model}.jsonl", jsonl(lines))
            started = await api.create(str(uploaded["id"]), endpoint, window, metadata)
            parts.append(Part(model, spec.provider, api, spec.pricing, len(lines), started))
        batch = ClientBatch(batch_id or "batch_mr_" + uuid.uuid4().hex[:20], file.id, endpoint, window, file.policy, parts,
                            list(file.unbatchable), dict(headers), metadata)
        self.batches[batch.id] = batch
        _trim(self.batches)
        return batch

    async def refresh(self, batch: ClientBatch) -> ClientBatch:
        for part in batch.parts:
            if part.status in ACTIVE and part.upstream.get("id"):
                part.upstream = await part.api.get(str(part.upstream["id"]))
        return batch

    def by_output(self, file_id: str) -> ClientBatch | None:
        if not file_id.startswith("file-mr-out-"):
            return None
        return self.batches.get("batch_mr_" + file_id.removeprefix("file-mr-out-"))

    async def output(self, batch: ClientBatch) -> tuple[bytes, list[tuple[Part, Usage]]]:
        """The merged output lines, and each answered line's usage with its part."""
        chunks: list[bytes] = []
        usages: list[tuple[Part, Usage]] = []
        for part in batch.parts:
            out_id = part.upstream.get("output_file_id")
            if not out_id:
                continue
            raw = await part.api.content(str(out_id))
            for text in raw.splitlines():
                if not text.strip():
                    continue
                chunks.append(text + b"\n")
                usage = _usage(text)
                if usage is not None:
                    usages.append((part, usage))
        return b"".join(chunks), usages


def batch_cost(usages: list[tuple[Part, Usage]]) -> Decimal:
    total = ZERO
    for part, usage in usages:
        total += cost_usd(usage, part.pricing, batch=True)
    return total


def _usage(text: bytes) -> Usage | None:
    """The usage of one output line; None for a line that does not follow the batch format."""
    try:
        body = json.loads(text)["response"]["body"]
        return Usage.from_openai(body.get("usage")) if isinstance(body, dict) else None
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def _trim(table: dict[str, Any]) -> None:
    while len(table) > MAX_BATCHES:
        table.pop(next(iter(table)))


__all__ = ["Batches", "ClientBatch", "Line", "Part", "batch_cost"]
