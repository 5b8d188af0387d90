"""The sidecar's state: settings, the active policy runtime, and the app keys that hold them.

A :class:`Runtime` bundles one compiled policy with everything built from it (router, providers).
:class:`PolicyHolder` swaps runtimes atomically: a request takes ``holder.current`` once and keeps
that runtime to its end, so in-flight requests finish on the old policy while new ones use the new.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Callable, Coroutine, Mapping

import aiohttp
from aiohttp import web
from opentelemetry import trace

from modelroute.policy import CompiledPolicy
from modelroute.providers import EnvFileKeys, KeySource, Provider, Transport
from modelroute.proxy.breaker import Breakers
from modelroute.contract.hooks import Hook, Hooks
from modelroute.proxy.responses_store import ResponseStore
from modelroute.routing import Decision, ModelClient, RequestView, Router, Skip
from modelroute.telemetry import Metrics

log = logging.getLogger("modelroute.proxy")


@dataclass(frozen=True)
class Settings:
    max_body_bytes: int = 10 * 1024 * 1024
    #: How long a superseded runtime is kept before its strategies are closed (in-flight requests).
    drain_seconds: float = 300.0
    keys: KeySource = field(default_factory=EnvFileKeys)
    tracer_provider: trace.TracerProvider | None = None
    hooks: tuple[Hook, ...] = ()  # hooks beside the features' (tests, benchmarks; see contract/hooks.py)
    meter_provider: Any = None  # an OpenTelemetry MeterProvider: the metrics are exported over OTLP too


@dataclass(frozen=True)
class Runtime:
    """One compiled policy and what is built from it; what hooks see of it is
    :class:`modelroute.contract.hooks.RuntimeView`."""

    policy: CompiledPolicy
    router: Router
    providers: Mapping[str, Provider]

    def provider_for(self, model: str) -> Provider:
        return self.providers[self.policy.models[model].provider]

    def eligible(self, view: RequestView, chain: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[Skip, ...]]:
        return self.router.eligible(view, chain)

    async def decide(self, view: RequestView) -> Decision:
        return await self.router.decide(view)

    def model_client(self) -> ModelClient:
        from modelroute.proxy.model_client import ProxyModelClient

        return ProxyModelClient(self.policy, self.providers)


class PolicyHolder:
    """The active runtime, replaced atomically by :meth:`apply`.

    Until the app starts (and its HTTP session exists) a policy given to :meth:`apply` is kept
    and built at start-up.
    """

    def __init__(self, policy: CompiledPolicy | None = None) -> None:
        self._pending = policy
        self._current: Runtime | None = None
        self._build: Callable[[CompiledPolicy], Runtime] | None = None
        self._listeners: list[Callable[[Runtime], None]] = []
        self._retired: set[asyncio.Task[None]] = set()
        self.drain_seconds = 300.0

    @property
    def current(self) -> Runtime:
        if self._current is None:
            raise RuntimeError("no policy is loaded")
        return self._current

    @property
    def ready(self) -> bool:
        return self._current is not None

    @property
    def policy(self) -> CompiledPolicy | None:
        return self._current.policy if self._current else self._pending

    def on_change(self, listener: Callable[[Runtime], None]) -> None:
        self._listeners.append(listener)

    def bind(self, build: Callable[[CompiledPolicy], Runtime]) -> None:
        """Called at app start-up with the factory that turns a policy into a runtime."""
        self._build = build
        if self._pending is not None:
            self.apply(self._pending)

    def apply(self, policy: CompiledPolicy) -> bool:
        """Make ``policy`` active for new requests. Returns False when it is already active.

        Raises PolicyError (and keeps the current runtime) when the runtime cannot be built,
        e.g. a strategy's configuration is wrong.
        """
        if self._current is not None and self._current.policy.version == policy.version:
            return False
        if self._build is None:
            self._pending = policy
            return True
        runtime = self._build(policy)  # raises PolicyError; nothing changed yet
        old, self._current = self._current, runtime
        for listener in self._listeners:
            listener(runtime)
        if old is not None:
            self._retire(old)
        return True

    def clear(self) -> bool:
        """Drop the active policy (no policy selects this pod any more): requests then get 503 no_policy
        and readiness is false until a policy is applied again. Returns False when none was active."""
        self._pending = None
        if self._current is None:
            return False
        old, self._current = self._current, None
        self._retire(old)
        return True

    def _retire(self, old: Runtime) -> None:
        async def close_later() -> None:
            await asyncio.sleep(self.drain_seconds)
            await old.router.aclose()

        try:
            task = asyncio.get_running_loop().create_task(close_later())
        except RuntimeError:
            return
        self._retired.add(task)
        task.add_done_callback(self._retired.discard)

    async def close(self) -> None:
        for task in list(self._retired):
            task.cancel()
        if self._current is not None:
            await self._current.router.aclose()


@dataclass
class Services:
    """Process-wide parts shared by every runtime: they outlive policy changes."""

    settings: Settings
    holder: PolicyHolder
    metrics: Metrics
    tracer: trace.Tracer
    breakers: Breakers
    hooks: Hooks = field(default_factory=Hooks)
    session: aiohttp.ClientSession | None = None  # the batch API's transfers
    transport: Transport | None = None  # provider calls
    responses: ResponseStore = field(default_factory=ResponseStore)  # the Responses API's conversations
    extras: dict[str, Any] = field(default_factory=dict)


SERVICES = web.AppKey("modelroute_services", Services)


@contextlib.asynccontextmanager
async def running(coro: Coroutine[Any, Any, None]) -> AsyncIterator[asyncio.Task[None]]:
    """A background task for the life of the block (an app's cleanup context): cancelled and
    awaited on the way out."""
    task = asyncio.create_task(coro)
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
