"""Message Batches routed request by request, as if each request were sent to ``/v1/messages`` now.

``POST /v1/messages/batches`` takes ``requests`` of ``{custom_id, params}``. The body is checked as
Anthropic checks it (its 400s, in its words); then each request's ``params`` is read by the same
code as a real-time Messages request (:mod:`modelroute.contract.messages`: the required fields,
the chat-shaped copy routing reads, content only Messages providers can serve) and routed by the
policy (routes, strategies, eligibility). Requests are grouped per routed model, ``params.model``
rewritten to its upstream id: one provider Message Batch per model.

Only a model whose provider speaks Messages natively has a Message Batches API (and only if its
``capabilities`` do not leave out ``batch``). A request routed to any other model, or one that
cannot be routed at all, is not sent anywhere else: it ends ``errored`` in the batch's results,
with the reason, as Anthropic reports a request it could not process.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from modelroute.batch.records import Unbatchable
from modelroute.contract.errors import BadRequest, ClientError
from modelroute.contract.hooks import RuntimeView as Runtime
from modelroute.contract.messages import as_chat, require
from modelroute.contract.spend import Work
from modelroute.policy import CompiledPolicy
from modelroute.policy.model import MESSAGES
from modelroute.routing import AUTO, UnknownModel, build_view

#: Anthropic's limits on a Message Batch.
MAX_REQUESTS = 100_000
CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


@dataclass(slots=True)
class Requests:
    """One model's requests, as its provider gets them, and what each may cost at worst."""

    items: list[dict[str, Any]] = field(default_factory=list)
    work: list[Work] = field(default_factory=list)


@dataclass(slots=True)
class Routed:
    groups: dict[str, Requests]  # registry model -> its requests
    unbatchable: list[Unbatchable]

    @property
    def work(self) -> list[Work]:
        return [w for group in self.groups.values() for w in group.work]


def message_batchable(policy: CompiledPolicy, model: str) -> str | None:
    """Why ``model`` cannot go through a Message Batch, or None."""
    spec = policy.models[model]
    provider = policy.providers[spec.provider]
    if MESSAGES not in provider.apis:
        return f"provider {provider.name} ({provider.type}) does not speak Messages, so it has no Message Batches API"
    if not spec.supports("batch"):
        return "the model's capabilities leave out batch"
    return None


def check_body(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The requests of a create body, or Anthropic's 400 for the first thing wrong with it."""
    extra = sorted(set(body) - {"requests"})
    if extra:
        raise BadRequest(f"{extra[0]}: Extra inputs are not permitted", param=extra[0])
    requests = body.get("requests")
    if not isinstance(requests, list) or not requests:
        raise BadRequest("requests: List should have at least 1 item after validation, not 0", param="requests")
    if len(requests) > MAX_REQUESTS:
        raise BadRequest(f"requests: List should have at most {MAX_REQUESTS} items after validation, not {len(requests)}",
                         param="requests")
    seen: set[str] = set()
    for i, item in enumerate(requests):
        if not isinstance(item, dict) or not isinstance(item.get("params"), dict):
            raise BadRequest(f"requests.{i}.params: Field required", param=f"requests.{i}.params")
        custom_id = item.get("custom_id")
        if not isinstance(custom_id, str) or not CUSTOM_ID.match(custom_id):
            raise BadRequest(f"requests.{i}.custom_id: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$'",
                             param=f"requests.{i}.custom_id")
        if custom_id in seen:
            raise BadRequest(f"requests: custom_id values must be unique within a batch (duplicate: {custom_id})",
                             param="requests")
        seen.add(custom_id)
    return requests


async def _route(runtime: Runtime, params: Mapping[str, Any], headers: Mapping[str, str]) -> tuple[str, Work]:
    """(registry model, worst case) ``params`` would be served with in real time. Raises
    ValueError with the reason."""
    try:
        require(params)
        chat, native_only = as_chat(params)
    except ClientError as exc:
        raise ValueError(exc.message) from None
    view = build_view(chat, headers, api=MESSAGES)
    view.native_only = native_only
    try:
        decision = await runtime.decide(view)
    except UnknownModel:
        raise ValueError(f"unknown model {params.get('model')!r} (known: {AUTO} and the registry)") from None
    if decision.model is None:
        raise ValueError(f"no model of route {decision.route} can serve it: " + "; ".join(s.reason for s in decision.skipped))
    return decision.model, Work(decision.model, view.input_tokens, view.max_tokens)


async def route_requests(runtime: Runtime, body: Mapping[str, Any], headers: Mapping[str, str]) -> Routed:
    policy = runtime.policy
    routed = Routed({}, [])
    for n, item in enumerate(check_body(body), start=1):
        custom_id, params = item["custom_id"], item["params"]
        try:
            model, work = await _route(runtime, params, headers)
        except ValueError as exc:
            routed.unbatchable.append(Unbatchable(n, custom_id, None, str(exc)))
            continue
        why = message_batchable(policy, model)
        if why is not None:
            routed.unbatchable.append(Unbatchable(n, custom_id, model, why))
            continue
        group = routed.groups.setdefault(model, Requests())
        group.items.append({"custom_id": custom_id, "params": {**params, "model": policy.models[model].upstream_model}})
        group.work.append(work)
    return routed
