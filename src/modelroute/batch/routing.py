"""Batch input files routed line by line, as if each line were sent in real time.

Each line (``{custom_id, method, url, body}``) of an uploaded file is routed by the active policy:
chat lines (``/v1/chat/completions``) go through the router (routes, strategies, eligibility) and
embeddings lines are served by the model named, as in real time. The line's ``body.model`` is
rewritten to the chosen model's upstream id. A line whose model has no batch API (its provider
is not OpenAI-compatible, or the model's capabilities leave out ``batch``) is reported as
unbatchable, never sent to another model. Lines are grouped per model (a provider batch holds one
model), kept as the JSONL the provider gets, with what each line may cost at worst
(:class:`~modelroute.contract.spend.Work`) for the budget hold taken when the batch is created.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from modelroute.batch.records import Unbatchable
from modelroute.contract.errors import BadRequest, ClientError
from modelroute.contract.hooks import RuntimeView as Runtime
from modelroute.contract.http import require_chat_fields
from modelroute.contract.shapes import check_chat
from modelroute.contract.spend import Work
from modelroute.policy import CompiledPolicy
from modelroute.routing import AUTO, UnknownModel, build_view
from modelroute.routing.request import CHARS_PER_TOKEN

CHAT, EMBEDDINGS = "/v1/chat/completions", "/v1/embeddings"


@dataclass(slots=True)
class Group:
    """One model's lines: as the provider gets them, and each line's worst case."""

    jsonl: bytearray = field(default_factory=bytearray)
    work: list[Work] = field(default_factory=list)

    def add(self, custom_id: str, url: str, body: Mapping[str, Any], work: Work) -> None:
        self.jsonl += json.dumps({"custom_id": custom_id, "method": "POST", "url": url, "body": body}).encode() + b"\n"
        self.work.append(work)

    @property
    def count(self) -> int:
        return len(self.work)


@dataclass
class InputFile:
    id: str
    filename: str
    size: int
    policy: str  # the name of the policy that routed it
    groups: dict[str, Group]  # registry model -> lines
    unbatchable: list[Unbatchable]
    urls: frozenset[str]  # the lines' endpoints
    created_at: int = field(default_factory=lambda: int(time.time()))

    @property
    def nbytes(self) -> int:
        """About what it holds in memory."""
        return sum(len(g.jsonl) + 64 * g.count for g in self.groups.values()) + 200 * len(self.unbatchable)

    def content(self) -> bytes:
        return b"".join(bytes(g.jsonl) for g in self.groups.values())

    def obj(self) -> dict[str, Any]:
        return {
            "id": self.id, "object": "file", "bytes": self.size, "created_at": self.created_at, "filename": self.filename,
            "purpose": "batch", "status": "processed",
            "modelroute": {"lines": sum(g.count for g in self.groups.values()) + len(self.unbatchable),
                           "models": {m: g.count for m, g in self.groups.items()},
                           "unbatchable": [u.error() for u in self.unbatchable]},
        }


def batchable(policy: CompiledPolicy, model: str) -> str | None:
    """Why ``model`` cannot go through an OpenAI batch API, or None."""
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


async def _model_for(runtime: Runtime, line: Mapping[str, Any], headers: Mapping[str, str]) -> tuple[str, str, Work]:
    """(registry model, route, worst case) the line would be served with in real time. Raises
    ValueError with the reason."""
    body = line["body"]
    requested = str(body.get("model") or "")
    if line["url"] == EMBEDDINGS:
        if requested not in runtime.policy.models:
            raise ValueError(f"unknown model {requested!r}")
        tokens = len(json.dumps(body.get("input"))) // CHARS_PER_TOKEN + 1
        return requested, "embeddings", Work(requested, tokens, 0)
    try:
        require_chat_fields(body)
        check_chat(body)
    except ClientError as exc:
        raise ValueError(exc.message) from None
    view = build_view(body, headers)
    try:
        decision = await runtime.decide(view)
    except UnknownModel:
        raise ValueError(f"unknown model {requested!r} (known: {AUTO} and the registry)") from None
    if decision.model is None:
        raise ValueError("no model of route " + decision.route + " can serve it: " + "; ".join(s.reason for s in decision.skipped))
    return decision.model, decision.route, Work(decision.model, view.input_tokens, view.max_tokens)


async def route_file(runtime: Runtime, filename: str, raw: bytes, headers: Mapping[str, str]) -> InputFile:
    policy = runtime.policy
    groups: dict[str, Group] = {}
    unbatchable: list[Unbatchable] = []
    urls = set()
    for n, line in _parse(raw):
        urls.add(str(line["url"]))
        try:
            model, _, work = await _model_for(runtime, line, headers)
        except ValueError as exc:
            unbatchable.append(Unbatchable(n, line["custom_id"], None, str(exc)))
            continue
        why = batchable(policy, model)
        if why is not None:
            unbatchable.append(Unbatchable(n, line["custom_id"], model, why))
            continue
        body = {**line["body"], "model": policy.models[model].upstream_model}
        groups.setdefault(model, Group()).add(line["custom_id"], line["url"], body, work)
    return InputFile("file-mr-" + uuid.uuid4().hex[:20], filename, len(raw), policy.name, groups, unbatchable, frozenset(urls))
