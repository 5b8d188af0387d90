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
  ``chat.completion`` body when known; a stream's is reassembled when first read): settle
  reservations, run quality checks off the hot path, index the request for feedback. It must not
  block: queue slow work.

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
from typing import TYPE_CHECKING, Awaitable, Callable, Protocol


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
