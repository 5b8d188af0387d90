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

Hooks run in the order they were registered; an exception in ``settled`` is logged, never raised.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Mapping, Protocol

if TYPE_CHECKING:
    from modelroute.proxy.exchange import Exchange

log = logging.getLogger("modelroute.hooks")


class RequestHook(Protocol):
    async def admit(self, ex: Exchange) -> None: ...

    def skip(self, ex: Exchange, model: str) -> str | None: ...

    def settled(self, ex: Exchange) -> None: ...


class Hooks:
    """The registered hooks, called in order."""

    def __init__(self, hooks: list[RequestHook] | None = None) -> None:
        self.items: list[RequestHook] = list(hooks or [])

    def add(self, hook: RequestHook) -> None:
        self.items.append(hook)

    async def admit(self, ex: Exchange) -> None:
        for hook in self.items:
            await hook.admit(ex)

    def skip(self, ex: Exchange, model: str) -> str | None:
        for hook in self.items:
            reason = hook.skip(ex, model)
            if reason:
                return reason
        return None

    def settled(self, ex: Exchange) -> None:
        for hook in self.items:
            try:
                hook.settled(ex)
            except Exception:
                log.exception("hook %s failed while settling %s", type(hook).__name__, ex.request_id)


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

    def body(self) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": "".join(self.content) or None}
        if self.tool_calls:
            message["tool_calls"] = [self.tool_calls[i] for i in sorted(self.tool_calls)]
        return {"object": "chat.completion", "model": self.model,
                "choices": [{"index": 0, "message": message, "finish_reason": self.finish_reason}], "usage": self.usage}
