"""A client batch as the sidecar keeps it: plain data that survives a restart.

A :class:`BatchRecord` is what a client's batch id (``batch_mr_...``, ``msgbatch_mr_...``) names:
the provider batches it fanned out to, one per routed model (:class:`Part`, with the provider's
batch object as last seen), the requests that could not be batched (:class:`Unbatchable`), the
budget hold taken at submission (an opaque token of spend control) and, once the provider
finished every part, the cost recorded. It is JSON so that a shared store (the budget store's
Redis) can keep it for a restarted sidecar or another replica; prices are copied in at
submission so the cost does not depend on the policy active when the batch ends.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, fields
from decimal import Decimal
from typing import Any

from modelroute.policy import Pricing

OPENAI, ANTHROPIC = "openai", "anthropic"  # batch kinds: the client API, and the provider batch API


@dataclass(frozen=True, slots=True)
class Unbatchable:
    """A request that no provider batch took: its position (1-based), id, model, and why."""

    line: int
    custom_id: str
    model: str | None
    reason: str

    @property
    def code(self) -> str:
        return "no_batch_api" if self.model else "unroutable"

    def message(self) -> str:
        where = f" (model {self.model})" if self.model else ""
        return f"line {self.line} ({self.custom_id}){where}: {self.reason}"

    def error(self) -> dict[str, Any]:
        """As an entry of an OpenAI batch's ``errors``."""
        return {"code": self.code, "line": self.line, "param": self.custom_id, "message": self.message()}


@dataclass(slots=True)
class Part:
    """One provider batch of a client batch: one model's requests."""

    model: str
    provider: str
    requests: int
    pricing: Pricing
    upstream: dict[str, Any]  # the provider's batch object, as last seen

    @property
    def upstream_id(self) -> str:
        return str(self.upstream.get("id") or "")


@dataclass(slots=True)
class BatchRecord:
    id: str
    kind: str  # OPENAI | ANTHROPIC
    policy: str  # the policy's name (its budget store keeps the record)
    parts: list[Part] = field(default_factory=list)
    errored: list[Unbatchable] = field(default_factory=list)
    hold: str | None = None  # spend control's token for the worst case held at submission
    baseline: Pricing | None = None  # the baseline's prices at submission (the metrics' baseline cost)
    created_at: float = field(default_factory=time.time)
    endpoint: str = ""  # OpenAI: /v1/chat/completions | /v1/embeddings
    input_file_id: str = ""
    completion_window: str = "24h"
    metadata: dict[str, str] | None = None
    cancel_at: float | None = None  # when the client asked to cancel
    cost: Decimal | None = None  # recorded once every part ended (kept apart by the store)

    def to_json(self) -> str:
        doc = asdict(self)
        doc.pop("cost")
        return json.dumps(doc, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes) -> BatchRecord:
        doc = json.loads(raw)
        parts = [Part(p["model"], p["provider"], int(p["requests"]), Pricing(**p["pricing"]), p["upstream"]) for p in doc.pop("parts")]
        errored = [Unbatchable(**u) for u in doc.pop("errored")]
        baseline = doc.pop("baseline")
        known = {k: v for k, v in doc.items() if k in _FIELDS}  # a newer sidecar's extra fields are left out
        return cls(parts=parts, errored=errored, baseline=Pricing(**baseline) if baseline else None, **known)

    @property
    def requests(self) -> int:
        return sum(p.requests for p in self.parts) + len(self.errored)


_FIELDS = frozenset(f.name for f in fields(BatchRecord))
