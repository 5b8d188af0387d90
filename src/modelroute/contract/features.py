"""A feature: hooks, HTTP routes and a life of its own, plugged into the sidecar from below.

The composition root (:mod:`modelroute.cli.compose`) gives :func:`modelroute.proxy.build_app` the
features a sidecar runs; the app registers each feature's hooks and routes (before pass-through,
which takes every path nobody owns), starts it with the :class:`Host` once the HTTP client and
the first policy are ready, and stops it at shutdown. A feature reaches the proxy only through the
host, so neither imports the other.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from aiohttp import web

from modelroute.contract.hooks import Hook, RuntimeView

if TYPE_CHECKING:
    from decimal import Decimal

    import aiohttp
    from prometheus_client import CollectorRegistry

    from modelroute.providers import Usage

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    handler: Handler


class Host(Protocol):
    """What a feature may use of the sidecar it runs in."""

    @property
    def registry(self) -> CollectorRegistry: ...  # the sidecar's Prometheus registry
    @property
    def max_body_bytes(self) -> int: ...
    @property
    def session(self) -> aiohttp.ClientSession: ...  # for transfers (batch files)
    @property
    def ready(self) -> bool: ...  # a policy is loaded

    def runtime(self) -> RuntimeView:
        """The active policy's runtime; a 503 ``no_policy`` ClientError when there is none."""
        ...

    async def passthrough(self, request: web.Request, prefix: bytes = b"") -> web.StreamResponse:
        """Hand ``request`` to pass-through (``prefix``: body bytes already read from it)."""
        ...

    def record(self, policy: str, route: str, model: str, usage: Usage, cost: Decimal, baseline: Decimal) -> None:
        """Spend made outside a request (a batch's answers), counted in the per-route metrics."""
        ...


class Feature(Protocol):
    @property
    def hooks(self) -> Sequence[Hook]: ...

    def routes(self) -> Sequence[Route]: ...

    async def start(self, host: Host) -> None: ...

    async def stop(self) -> None: ...


class BaseFeature:
    """A feature with nothing to add where a subclass does not say."""

    hooks: Sequence[Hook] = ()

    def routes(self) -> Sequence[Route]:
        return ()

    async def start(self, host: Host) -> None:
        self.host = host

    async def stop(self) -> None:
        return None
