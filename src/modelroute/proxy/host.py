"""The host a feature runs in: the narrow part of the sidecar a feature may use (:class:`~modelroute.contract.features.Host`)."""

from __future__ import annotations

from decimal import Decimal

import aiohttp
from aiohttp import web
from prometheus_client import CollectorRegistry

from modelroute.contract.hooks import RuntimeView
from modelroute.providers import Usage
from modelroute.proxy import passthrough
from modelroute.proxy.pipeline import NoPolicy
from modelroute.proxy.state import SERVICES, Services


class ProxyHost:
    def __init__(self, app: web.Application) -> None:
        self._services: Services = app[SERVICES]

    @property
    def registry(self) -> CollectorRegistry:
        return self._services.metrics.registry

    @property
    def max_body_bytes(self) -> int:
        return self._services.settings.max_body_bytes

    @property
    def session(self) -> aiohttp.ClientSession:
        assert self._services.session is not None
        return self._services.session

    @property
    def ready(self) -> bool:
        return self._services.holder.ready

    def runtime(self) -> RuntimeView:
        if not self._services.holder.ready:
            raise NoPolicy()
        return self._services.holder.current

    async def passthrough(self, request: web.Request, prefix: bytes = b"") -> web.StreamResponse:
        return await passthrough.forward(request, prefix)

    def record(self, policy: str, route: str, model: str, usage: Usage, cost: Decimal, baseline: Decimal) -> None:
        """Spend made outside a request (a batch's answers), in the per-route series."""
        series = self._services.metrics.route(policy, route, model)
        series.input_tokens += usage.input_tokens
        series.output_tokens += usage.output_tokens
        series.cached_tokens += usage.cached_input_tokens
        series.cost += float(cost)
        series.baseline_cost += float(baseline)
