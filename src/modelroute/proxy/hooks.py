"""Request hooks: where spend control and measurement plug into the path of a request.

A hook is a process-wide service (its state outlives policy reloads) that reads its settings from
the request's policy (``ex.policy.extensions`` holds the spec sections owned by later layers).
The proxy calls, for every chat request:

- ``admit(ex)`` after the decision and before any attempt: may reserve budget, replace
  ``ex.decision`` (a downgrade), or raise a :class:`ClientError` (429 budget_exceeded). Set
  ``ex.collect_answer = True`` to have a streamed answer reassembled for :meth:`settled`.
- ``skip(ex, model)`` before each candidate's attempt: a reason to pass over that model (a local
  rate limit), or None.
- ``settled(ex)`` once the answer is complete or failed (``ex.answer`` holds the OpenAI
  ``chat.completion`` body when known): settle reservations, run quality checks off the hot path,
  index the request for feedback. It must not block: queue slow work.

A hook may also say, per policy, which of these it takes part in (``phases(policy)``, a subset of
``{"admit", "skip", "settled"}``; all three when it does not say) and set ``collects_answers`` when
it reads streamed answers: :meth:`Hooks.plan` compiles that once per policy version, so a request
calls only the hooks that have work for its policy.

A hook that records settled exchanges in batches also defines ``flush()``: :meth:`Hooks.flush`
runs it before ``/metrics`` is read, so a scrape counts every answer already sent.

Hooks run in the order they were registered; an exception in ``settled`` is logged, never raised.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Iterable, Mapping, Protocol

from modelroute import _json as json

if TYPE_CHECKING:
    from modelroute.policy import CompiledPolicy
    from modelroute.proxy.exchange import Exchange

log = logging.getLogger("modelroute.hooks")


class RequestHook(Protocol):
    async def admit(self, ex: Exchange) -> None: ...

    def skip(self, ex: Exchange, model: str) -> str | None: ...

    def settled(self, ex: Exchange) -> None: ...


PHASES = frozenset({"admit", "skip", "settled"})


class HookPlan:
    """The hooks that have work for one policy version, by phase."""

    __slots__ = ("admit", "skip", "settled", "collect_answer")

    def __init__(self, hooks: list[RequestHook], policy: CompiledPolicy) -> None:
        phases = [(hook, _phases(hook, policy)) for hook in hooks]
        self.admit: tuple[Callable[[Exchange], Awaitable[None]], ...] = tuple(h.admit for h, p in phases if "admit" in p)
        self.skip: tuple[Callable[[Exchange, str], str | None], ...] = tuple(h.skip for h, p in phases if "skip" in p)
        self.settled: tuple[RequestHook, ...] = tuple(h for h, p in phases if "settled" in p)
        self.collect_answer = any(getattr(hook, "collects_answers", False) for hook in hooks)

    async def run_admit(self, ex: Exchange) -> None:
        for admit in self.admit:
            await admit(ex)

    def run_skip(self, ex: Exchange, model: str) -> str | None:
        for skip in self.skip:
            reason = skip(ex, model)
            if reason:
                return reason
        return None

    def run_settled(self, ex: Exchange) -> None:
        for hook in self.settled:
            try:
                hook.settled(ex)
            except Exception:
                log.exception("hook %s failed while settling %s", type(hook).__name__, ex.request_id)


def _phases(hook: RequestHook, policy: CompiledPolicy) -> frozenset[str]:
    phases = getattr(hook, "phases", None)
    return PHASES if phases is None else frozenset(phases(policy))


class Hooks:
    """The registered hooks, called in order."""

    def __init__(self, hooks: list[RequestHook] | None = None) -> None:
        self.items: list[RequestHook] = list(hooks or [])
        self._plans: dict[str, HookPlan] = {}

    def add(self, hook: RequestHook) -> None:
        self.items.append(hook)
        self._plans.clear()

    def replace(self, hooks: list[RequestHook]) -> None:
        """Swap the registered hooks (requests already in flight keep their plan)."""
        self.items[:] = hooks
        self._plans.clear()

    def flush(self) -> None:
        """Have the hooks that record in batches record what waits."""
        for hook in self.items:
            flush = getattr(hook, "flush", None)
            if flush is not None:
                flush()

    def plan(self, policy: CompiledPolicy) -> HookPlan:
        """The hooks with work for ``policy``, compiled once per policy version."""
        plan = self._plans.get(policy.version)
        if plan is None:
            if len(self._plans) > 16:  # the active version and a few draining ones are alive at once
                self._plans.clear()
            plan = self._plans[policy.version] = HookPlan(self.items, policy)
        return plan


class AnswerBuilder:
    """Reassembles an OpenAI ``chat.completion`` body from streamed chunk payloads."""

    __slots__ = ("content", "tool_calls", "finish_reason", "model", "usage")

    def __init__(self) -> None:
        self.content: list[str] = []
        self.tool_calls: dict[int, dict[str, Any]] = {}
        self.finish_reason: str | None = None
        self.model: str | None = None
        self.usage: Mapping[str, Any] | None = None

    def add(self, chunk: Mapping[str, Any]) -> None:
        self.model = chunk.get("model") or self.model
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            if delta.get("content"):
                self.content.append(delta["content"])
            for call in delta.get("tool_calls") or []:
                slot = self.tool_calls.setdefault(call.get("index", 0), {"id": None, "type": "function",
                                                                         "function": {"name": "", "arguments": ""}})
                slot["id"] = call.get("id") or slot["id"]
                fn = call.get("function") or {}
                slot["function"]["name"] += fn.get("name") or ""
                slot["function"]["arguments"] += fn.get("arguments") or ""
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]

    @classmethod
    def from_chunks(cls, chunks: Iterable[bytes]) -> dict[str, Any]:
        """The body raw chunk payloads add up to (payloads that are not JSON objects are skipped)."""
        builder = cls()
        for chunk in chunks:
            try:
                data = json.loads(chunk)
            except ValueError:
                continue
            if isinstance(data, dict):
                builder.add(data)
        return builder.body()

    def body(self) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": "".join(self.content) or None}
        if self.tool_calls:
            message["tool_calls"] = [self.tool_calls[i] for i in sorted(self.tool_calls)]
        return {"object": "chat.completion", "model": self.model,
                "choices": [{"index": 0, "message": message, "finish_reason": self.finish_reason}], "usage": self.usage}
