"""Rate limits as a sidecar feature: its hook, ``GET /v1/ratelimits``, and its store's life.

``GET /v1/ratelimits`` lists each watched model of the active policy: the policy's limits, what
the provider last reported (remaining, limit, seconds to reset), this sidecar's estimated share,
and the fleet's bucket level as last seen in the shared store.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
import time

from aiohttp import web

from modelroute.contract.features import BaseFeature, Host, Route
from modelroute.contract.hooks import Hook
from modelroute.ratelimits.hook import RateLimitHook
from modelroute.ratelimits.state import NAMES


class RateLimitFeature(BaseFeature):
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.hook = RateLimitHook(clock)
        self.hooks: Sequence[Hook] = (self.hook,)

    def routes(self) -> Sequence[Route]:
        return (Route("GET", "/v1/ratelimits", self.ratelimits),)

    async def start(self, host: Host) -> None:
        await super().start(host)
        self.hook.bind(host.registry)

    async def stop(self) -> None:
        await self.hook.close()

    async def ratelimits(self, request: web.Request) -> web.Response:
        runtime = self.host.runtime()
        policy = runtime.policy
        cfg = self.hook.configs.get(policy)
        rows: list[dict[str, Any]] = []
        for name, limits in cfg.models.items():
            row: dict[str, Any] = {"model": name, "limits": {"rpm": limits.rpm, "tpm": limits.tpm},
                                   "reserve": [{"route": r.route, "share": r.share} for r in limits.reserves],
                                   "store": "shared" if cfg.store is not None else "local"}
            entry = self.hook._entries.get((cfg.version, name))
            if entry is not None:
                provider: dict[str, Any] = {}
                for i, view in enumerate(entry.state.provider):
                    if view is not None and view.reading is not None:
                        r = view.reading
                        provider[NAMES[i]] = {"remaining": r.remaining, "limit": r.limit, "reset_seconds": r.reset,
                                              "share": round(view.share, 4)}
                row["provider"] = provider
                if entry.shared is not None:
                    row["shared_level"] = {NAMES[i]: level for i, level in enumerate(entry.shared.level) if level is not None}
            rows.append(row)
        return web.json_response({"object": "list", "policy": policy.name, "data": rows})
