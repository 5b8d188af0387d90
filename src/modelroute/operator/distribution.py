"""The distribution endpoint: sidecars subscribe here and receive their pod's compiled policy.

``GET /v1/subscribe`` streams :class:`~modelroute.policy.wire.Message` lines (policy, none, ping);
``POST /v1/ack`` records the version a sidecar applied. Both authenticate the caller with its
projected ServiceAccount token through the TokenReview API: the token names the pod it is bound to,
and a sidecar only ever receives the policy of that pod. Tokens are never logged.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from modelroute.operator.kubeapi import KubeAPI, KubeError
from modelroute.operator.state import ControlState, Key
from modelroute.policy.wire import (
    ACK_PATH,
    CONTENT_TYPE,
    PING,
    PING_SECONDS,
    SUBSCRIBE_PATH,
    TOKEN_AUDIENCE,
    Ack,
)

log = logging.getLogger("modelroute.operator")
POD_NAME = "authentication.kubernetes.io/pod-name"
POD_UID = "authentication.kubernetes.io/pod-uid"
CACHE_SECONDS = 30.0
POD_WAIT_SECONDS = 10.0


@dataclass(frozen=True)
class PodIdentity:
    namespace: str
    pod: str
    uid: str

    @property
    def key(self) -> Key:
        return (self.namespace, self.pod)


class AuthError(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


class TokenAuthenticator:
    """Projected ServiceAccount token -> the pod it is bound to (TokenReview, cached briefly)."""

    def __init__(self, api: KubeAPI, audience: str = TOKEN_AUDIENCE) -> None:
        self.api = api
        self.audience = audience
        self._cache: dict[str, tuple[float, PodIdentity]] = {}

    async def identify(self, header: str | None) -> PodIdentity:
        if not header or not header.startswith("Bearer "):
            raise AuthError(401, "a Bearer token (the pod's projected ServiceAccount token) is required")
        token = header[7:].strip()
        digest = hashlib.sha256(token.encode()).hexdigest()
        hit = self._cache.get(digest)
        if hit and hit[0] > time.monotonic():
            return hit[1]
        try:
            status = await self.api.token_review(token, [self.audience])
        except (TimeoutError, KubeError, OSError) as exc:
            raise AuthError(503, f"cannot review the token: {exc}") from None
        ident = self._identity(status)
        if len(self._cache) > 10000:
            self._cache.clear()
        self._cache[digest] = (time.monotonic() + CACHE_SECONDS, ident)
        return ident

    def _identity(self, status: dict[str, Any] | Any) -> PodIdentity:
        if not status.get("authenticated"):
            raise AuthError(401, "token rejected by TokenReview")
        if self.audience not in (status.get("audiences") or [self.audience]):
            raise AuthError(401, f"token is not for audience {self.audience!r}")
        user = status.get("user") or {}
        parts = str(user.get("username", "")).split(":")
        extra = user.get("extra") or {}
        pod, uid = (extra.get(POD_NAME) or [None])[0], (extra.get(POD_UID) or [None])[0]
        if len(parts) != 4 or parts[:2] != ["system", "serviceaccount"] or not pod or not uid:
            raise AuthError(403, "token is not a pod-bound ServiceAccount token")
        return PodIdentity(namespace=parts[2], pod=str(pod), uid=str(uid))


class Distribution:
    """The aiohttp app serving subscriptions, acks and the operator's probes."""

    def __init__(self, state: ControlState, auth: TokenAuthenticator, ready: Callable[[], bool],
                 active: Callable[[], bool] = lambda: True) -> None:
        self.state = state
        self.auth = auth
        self.ready = ready  # kopf has started and listed everything
        self.active = active  # not paused by kopf peering

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get(SUBSCRIBE_PATH, self._guard(self.subscribe))
        app.router.add_post(ACK_PATH, self._guard(self.ack))
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/readyz", self.readyz)
        return app

    async def healthz(self, request: web.Request) -> web.Response:
        return _text("ok")

    async def readyz(self, request: web.Request) -> web.Response:
        return _text("ready") if self.ready() else _text("starting", 503)

    def _guard(self, fn: Callable[[web.Request, PodIdentity], Awaitable[web.StreamResponse]]) -> Any:
        async def handler(request: web.Request) -> web.StreamResponse:
            if not (self.ready() and self.active()):
                return _text("this operator replica is not active", 503)
            try:
                ident = await self.auth.identify(request.headers.get("Authorization"))
            except AuthError as exc:
                return _text(str(exc), exc.status)
            return await fn(request, ident)

        return handler

    async def _known(self, ident: PodIdentity) -> web.Response | None:
        deadline = time.monotonic() + POD_WAIT_SECONDS
        while ident.key not in self.state.pods and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        pod = self.state.pods.get(ident.key)
        if pod is None:
            return _text(f"pod {ident.namespace}/{ident.pod} is not an injected pod known to the operator", 404)
        if pod.uid != ident.uid:
            return _text("the token is bound to another pod with this name", 403)
        return None

    async def subscribe(self, request: web.Request, ident: PodIdentity) -> web.StreamResponse:
        refusal = await self._known(ident)
        if refusal is not None:
            return refusal
        sub = self.state.subscribe(ident.key)
        resp = web.StreamResponse(headers={"Content-Type": CONTENT_TYPE, "Cache-Control": "no-store"})
        await resp.prepare(request)
        log.debug("subscribed: %s/%s", ident.namespace, ident.pod)
        try:
            while True:
                try:
                    msg = await asyncio.wait_for(sub.queue.get(), PING_SECONDS)
                except TimeoutError:
                    msg = PING
                if msg.type == "close":
                    break
                await resp.write(msg.encode())
        except ConnectionError:
            pass
        finally:
            self.state.unsubscribe(sub)
        return resp

    async def ack(self, request: web.Request, ident: PodIdentity) -> web.StreamResponse:
        try:
            ack = Ack.decode(await request.read())
        except ValueError as exc:
            return _text(f"bad ack: {exc}", 400)
        if ident.key not in self.state.pods:
            return _text("unknown pod", 404)
        self.state.ack(ident.key, ack)
        if not ack.applied:
            log.warning("pod %s/%s could not apply %s: %s", ident.namespace, ident.pod, ack.version, ack.error)
        return web.Response(status=204)


def _text(text: str, status: int = 200) -> web.Response:
    return web.Response(text=text + "\n", status=status)
