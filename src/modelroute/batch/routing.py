"""Batch input files routed line by line, as if each line were sent in real time.

Each line (``{custom_id, method, url, body}``) of an uploaded file is routed by the active policy:
chat lines (``/v1/chat/completions``) go through the router (routes, strategies, eligibility) and
embeddings lines are served by the model named, as in real time. The line's ``body.model`` is
rewritten to the chosen model's upstream id. A line whose model has no batch API (its provider
is not OpenAI-compatible, or the model's capabilities leave out ``batch``) is reported as
unbatchable, never sent to another model. Lines are grouped per model: a provider batch holds one
model.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from modelroute.policy import CompiledPolicy
from modelroute.contract.errors import BadRequest, ClientError
from modelroute.contract.http import require_chat_fields
from modelroute.contract.shapes import check_chat
from modelroute.contract.hooks import RuntimeView as Runtime
from modelroute.routing import AUTO, UnknownModel, build_view

CHAT, EMBEDDINGS = "/v1/chat/completions", "/v1/embeddings"


@dataclass(frozen=True, slots=True)
class Line:
    custom_id: str
    url: str
    body: Mapping[str, Any]  # model rewritten to the upstream id
    model: str  # registry model
    route: str


@dataclass(frozen=True, slots=True)
class Unbatchable:
    line: int  # 1-based
    custom_id: str
    model: str | None
    reason: str

    def error(self) -> dict[str, Any]:
        where = f" (model {self.model})" if self.model else ""
        return {"code": "no_batch_api" if self.model else "unroutable", "line": self.line, "param": self.custom_id,
                "message": f"line {self.line} ({self.custom_id}){where}: {self.reason}"}


@dataclass
class InputFile:
    id: str
    filename: str
    size: int
    policy: CompiledPolicy
    groups: dict[str, list[Line]]  # registry model -> lines
    unbatchable: list[Unbatchable]
    created_at: int = field(default_factory=lambda: int(time.time()))

    def obj(self) -> dict[str, Any]:
        return {
            "id": self.id, "object": "file", "bytes": self.size, "created_at": self.created_at, "filename": self.filename,
            "purpose": "batch", "status": "processed",
            "modelroute": {"lines": sum(len(v) for v in self.groups.values()) + len(self.unbatchable),
                           "models": {m: len(v) for m, v in self.groups.items()},
                           "unbatchable": [u.error() for u in self.unbatchable]},
        }


def batchable(policy: CompiledPolicy, model: str) -> str | None:
    """Why ``model`` cannot go through a batch API, or None."""
    spec = policy.models[model]
    if policy.providers[spec.provider].type != "openai":
        return f"provider {spec.provider} ({policy.providers[spec.provider].type}) has no OpenAI batch API"
    if not spec.supports("batch"):
        return "the model's capabilities leave out batch"
    return None


def _parse(raw: bytes) -> list[tuple[int, dict[str, Any]]]:
    out = []
    for n, text in enumerate(raw.splitlines(), start=1):
        if not text.strip():
            continue
        try:
            line = json.loads(text)
        except ValueError:
            raise BadRequest(f"line {n} of the batch file is not JSON", code="invalid_batch_file") from None
        if not (isinstance(line, dict) and isinstance(line.get("custom_id"), str) and isinstance(line.get("body"), dict)):
            raise BadRequest(f"line {n} needs custom_id (a string) and body (an object)", code="invalid_batch_file")
        if line.get("url") not in (CHAT, EMBEDDINGS) or line.get("method", "POST") != "POST":
            raise BadRequest(f"line {n}: only POST {CHAT} and {EMBEDDINGS} can be batched", code="invalid_batch_file")
        out.append((n, line))
    if not out:
        raise BadRequest("the batch file has no lines", code="invalid_batch_file")
    return out


async def _model_for(runtime: Runtime, line: Mapping[str, Any], headers: Mapping[str, str]) -> tuple[str, str]:
    """(registry model, route) the line would be served by in real time. Raises ValueError with the reason."""
    body = line["body"]
    requested = str(body.get("model") or "")
    if line["url"] == EMBEDDINGS:
        if requested not in runtime.policy.models:
            raise ValueError(f"unknown model {requested!r}")
        return requested, "embeddings"
    try:
        require_chat_fields(body)
        check_chat(body)
    except ClientError as exc:
        raise ValueError(exc.message) from None
    try:
        decision = await runtime.decide(build_view(body, headers))
    except UnknownModel:
        raise ValueError(f"unknown model {requested!r} (known: {AUTO} and the registry)") from None
    if decision.model is None:
        raise ValueError("no model of route " + decision.route + " can serve it: " + "; ".join(s.reason for s in decision.skipped))
    return decision.model, decision.route


async def route_file(runtime: Runtime, filename: str, raw: bytes, headers: Mapping[str, str]) -> InputFile:
    policy = runtime.policy
    groups: dict[str, list[Line]] = {}
    unbatchable: list[Unbatchable] = []
    for n, line in _parse(raw):
        try:
            model, route = await _model_for(runtime, line, headers)
        except ValueError as exc:
            unbatchable.append(Unbatchable(n, line["custom_id"], None, str(exc)))
            continue
        why = batchable(policy, model)
        if why is not None:
            unbatchable.append(Unbatchable(n, line["custom_id"], model, why))
            continue
        body = {**line["body"], "model": policy.models[model].upstream_model}
        groups.setdefault(model, []).append(Line(line["custom_id"], line["url"], body, model, route))
    return InputFile("file-mr-" + uuid.uuid4().hex[:20], filename, len(raw), policy, groups, unbatchable)


def jsonl(lines: list[Line]) -> bytes:
    return b"".join(json.dumps({"custom_id": x.custom_id, "method": "POST", "url": x.url, "body": x.body}).encode() + b"\n"
                    for x in lines)
