"""Spend control as a sidecar feature: its hook, ``GET /v1/budgets``, and its stores' life.

``GET /v1/budgets`` lists every budget of the active policy in its current window: limit, spent,
reserved, remaining.
"""

from __future__ import annotations

from collections.abc import Sequence

from aiohttp import web

from modelroute.contract.features import BaseFeature, Host, Route
from modelroute.contract.hooks import Hook
from modelroute.spend.hook import SpendHook


class SpendFeature(BaseFeature):
    def __init__(self) -> None:
        self.hook = SpendHook()
        self.hooks: Sequence[Hook] = (self.hook,)

    def routes(self) -> Sequence[Route]:
        return (Route("GET", "/v1/budgets", self.budgets),)

    async def start(self, host: Host) -> None:
        await super().start(host)
        self.hook.bind(host.registry)

    async def stop(self) -> None:
        await self.hook.close()

    async def budgets(self, request: web.Request) -> web.Response:
        policy = self.host.runtime().policy
        cfg = self.hook.configs.get(policy)
        rows = await self.hook.ledger.snapshot(cfg, policy.name)
        return web.json_response({"object": "list", "policy": policy.name, "data": rows})
