"""Request hooks: where spend control, batches and measurement plug into the path of a request.

A hook is a process-wide service (its state outlives policy reloads) that reads its settings from
the request's policy. The pipeline calls, for every request it routes:

- ``admit(request)`` after the decision and before any attempt, with an :class:`Admission`: it may
  replace the decision (a downgrade), answer without any attempt (:meth:`Admission.serve_as`, a
  deferral to a batch), or raise a :class:`~modelroute.contract.errors.ClientError` (429
  budget_exceeded, or the 202 of a deferral);
- ``skip(request, model)`` before each candidate's attempt: a reason to pass over that model (a
  rate limit, with the wait until there is room), or None;
- ``attempted(request, model, headers)`` after each attempt that reached the provider, whether it
  succeeded or failed: ``headers`` are the upstream's response headers (lower-case names; empty
  when no answer came), so a hook can learn what the provider says of its own limits
  (``x-ratelimit-*``, ``anthropic-ratelimit-*``, ``retry-after``). It runs on the request path
  between attempts: it must be quick and must not raise;
- ``settled(record)`` once the answer is complete or failed, on the read-only
  :class:`RequestRecord` (its ``answer`` in chat's shape whatever API the client spoke, made when
  first read): settle reservations, run checks off the hot path, index it for feedback. It must
  not block: queue slow work.

``attempted`` is optional (a hook without the method takes no part in it); the others are not.
A hook says per policy which phases it takes part in (``phases(policy)``) and whether it reads
answers (``collects_answers``): :meth:`Hooks.plan` compiles that once per policy version, so a
request calls only the hooks with work for its policy. Per-request state a hook keeps between its
phases lives on the request (:meth:`RequestRecord.slot`), never in process-wide tables. A hook that
records in batches defines ``flush()``, run before ``/metrics`` is read. Hooks run in the order
they were registered; an exception in ``settled`` is logged, never raised.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Protocol, TypeVar

if TYPE_CHECKING:
    from modelroute.policy import CompiledPolicy
    from modelroute.providers import Provider, Usage
    from modelroute.routing import Decision, ModelClient, RequestView, Skip

log = logging.getLogger("modelroute.hooks")
T = TypeVar("T")


class AttemptRecord(Protocol):
    """One upstream attempt (or a model passed over without one)."""

    @property
    def model(self) -> str: ...
    @property
    def outcome(self) -> str: ...  # ok | error | skipped | rejected
    @property
    def reason(self) -> str: ...
    @property
    def usage(self) -> Usage | None: ...


class RuntimeView(Protocol):
    """What a hook may use of the runtime serving the request's policy."""

    @property
    def policy(self) -> CompiledPolicy: ...

    @property
    def providers(self) -> Mapping[str, Provider]: ...  # by provider name (a batch made under an older policy)

    def provider_for(self, model: str) -> Provider: ...

    def eligible(self, view: RequestView, chain: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[Skip, ...]]:
        """The models of ``chain`` able to serve ``view``, and why the others are left out."""
        ...

    def model_client(self) -> ModelClient:
        """Calls to registry models outside any request (a judge, a re-run): untraced."""
        ...

    async def decide(self, view: RequestView) -> Decision:
        """The policy's decision for a request read outside the pipeline (a batch line)."""
        ...


class RequestRecord(Protocol):
    """One request as hooks see it: read-only, but for the hook's own slot and span notes."""

    @property
    def request_id(self) -> str: ...
    @property
    def operation(self) -> str: ...  # chat | embeddings
    @property
    def policy(self) -> CompiledPolicy: ...
    @property
    def runtime(self) -> RuntimeView: ...
    @property
    def headers(self) -> Mapping[str, str]: ...  # lower-case names, without credentials
    @property
    def view(self) -> RequestView | None: ...
    @property
    def decision(self) -> Decision | None: ...
    @property
    def attempts(self) -> Sequence[AttemptRecord]: ...
    @property
    def served(self) -> str | None: ...
    @property
    def usage(self) -> Usage | None: ...
    @property
    def status(self) -> str: ...  # ok | error | client_closed | deferred
    @property
    def seconds(self) -> float: ...
    @property
    def answer(self) -> Mapping[str, Any] | None: ...  # the answer in chat's shape, when a hook reads answers
    @property
    def answer_chunks(self) -> list[bytes] | None: ...  # a stream's chat chunks, before ``answer`` reads them

    def cost(self) -> Decimal: ...

    def baseline_cost(self) -> Decimal: ...

    def slot(self, owner: object, make: Callable[[], T]) -> T:
        """``owner``'s state for this request, made on first use."""
        ...

    def note(self, key: str, value: str | int | float | bool) -> None:
        """An attribute on the request's span."""
        ...


class Admission(RequestRecord, Protocol):
    """A request at admission: what ``admit`` may change."""

    def replace_decision(self, decision: Decision) -> None: ...

    def serve_as(self, model: str) -> None:
        """The request is answered by ``model`` without an attempt (deferred to its batch API)."""
        ...


class Hook(Protocol):
    async def admit(self, request: Admission) -> None: ...

    def skip(self, request: RequestRecord, model: str) -> str | None: ...

    def settled(self, record: RequestRecord) -> None: ...


#: The optional phase: ``hook.attempted(request, model, headers)``; a hook without it takes no part.
Attempted = Callable[[RequestRecord, str, Mapping[str, str]], None]


PHASES = frozenset({"admit", "skip", "attempted", "settled"})


class HookPlan:
    """The hooks that have work for one policy version, by phase."""

    __slots__ = ("admit", "skip", "attempted", "settled", "collect_answer")

    def __init__(self, hooks: Sequence[Hook], policy: CompiledPolicy) -> None:
        phases = [(hook, _phases(hook, policy)) for hook in hooks]
        self.admit: tuple[Callable[[Admission], Awaitable[None]], ...] = tuple(h.admit for h, p in phases if "admit" in p)
        self.skip: tuple[Callable[[RequestRecord, str], str | None], ...] = tuple(h.skip for h, p in phases if "skip" in p)
        self.attempted: tuple[Attempted, ...] = tuple(
            getattr(h, "attempted") for h, p in phases if "attempted" in p and hasattr(h, "attempted"))
        self.settled: tuple[Hook, ...] = tuple(h for h, p in phases if "settled" in p)
        self.collect_answer = any(getattr(hook, "collects_answers", False) for hook in hooks)

    async def run_admit(self, request: Admission) -> None:
        for admit in self.admit:
            await admit(request)

    def run_skip(self, request: RequestRecord, model: str) -> str | None:
        for skip in self.skip:
            reason = skip(request, model)
            if reason:
                return reason
        return None

    def run_attempted(self, request: RequestRecord, model: str, headers: Mapping[str, str]) -> None:
        for attempted in self.attempted:
            try:
                attempted(request, model, headers)
            except Exception:
                log.exception("hook %s failed after an attempt of %s", type(getattr(attempted, "__self__", attempted)).__name__,
                              request.request_id)

    def run_settled(self, record: RequestRecord) -> None:
        for hook in self.settled:
            try:
                hook.settled(record)
            except Exception:
                log.exception("hook %s failed while settling %s", type(hook).__name__, record.request_id)


def _phases(hook: Hook, policy: CompiledPolicy) -> frozenset[str]:
    phases = getattr(hook, "phases", None)
    return PHASES if phases is None else frozenset(phases(policy))


class Hooks:
    """The registered hooks, called in order."""

    def __init__(self, hooks: Sequence[Hook] | None = None) -> None:
        self.items: list[Hook] = list(hooks or [])
        self._plans: dict[str, HookPlan] = {}

    def add(self, hook: Hook) -> None:
        self.items.append(hook)
        self._plans.clear()

    def replace(self, hooks: Sequence[Hook]) -> None:
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


#: The old name of :class:`Hook`.
RequestHook = Hook
