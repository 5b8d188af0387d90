"""Spend-control and batch endpoints of the sidecar.

| endpoint | |
|---|---|
| ``GET /v1/budgets`` | every budget of the active policy in its current window: limit, spent, reserved, remaining |
| ``POST /v1/files`` | upload a batch input file; every line is routed by the policy |
| ``GET /v1/files/{id}``, ``GET /v1/files/{id}/content`` | a file; a batch's output (its cost is recorded on the first read) |
| ``POST /v1/batches``, ``GET /v1/batches/{id}`` | create a batch from an uploaded file; its status |
| ``GET /v1/modelroute/deferred/{id}`` | the answer to a request deferred to a batch (202 while pending) |

:func:`register` adds them to the app and closes the spend hook's stores at shutdown.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from modelroute.proxy.errors import ClientError
from modelroute.proxy.state import SERVICES

if TYPE_CHECKING:
    from modelroute.spend import SpendHook


def spend_hook(app: web.Application) -> SpendHook | None:
    # spend imports the proxy package: imported here, not at the top (a cycle)
    from modelroute.spend import SpendHook

    for hook in app[SERVICES].hooks.items:
        if isinstance(hook, SpendHook):
            return hook
    return None


async def budgets(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    if not services.holder.ready:
        raise ClientError("the sidecar has no policy yet", status=503, type="server_error", code="no_policy")
    policy = services.holder.current.policy
    hook = spend_hook(request.app)
    rows = []
    if hook is not None:
        cfg = hook.configs.get(policy)
        rows = await hook.ledger.snapshot(cfg, policy.name)
    return web.json_response({"object": "list", "policy": policy.name, "data": rows})


async def _close(app: web.Application) -> None:
    hook = spend_hook(app)
    if hook is not None:
        await hook.close()


def register(app: web.Application) -> None:
    # batch imports the proxy package: imported here, not at the top (a cycle)
    from modelroute.batch import endpoints as batch

    app.router.add_get("/v1/budgets", budgets)
    batch.register(app)
    app.on_cleanup.append(_close)
