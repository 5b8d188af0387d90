"""The sidecar's side of the operator's push subscription (``modelroute sidecar``).

The sidecar learns who it is from the downward API (``POD_NAME``, ``POD_NAMESPACE``, ``POD_UID``, and
its labels file), holds one long-lived ``GET /v1/subscribe`` to the operator with its projected
ServiceAccount token, applies every policy it receives atomically through :class:`PolicyHolder`,
and acknowledges the version (``POST /v1/ack``). When the stream breaks it keeps the last good policy
and resubscribes with jittered exponential backoff. When it starts while the operator is down, it
picks its policy from the bootstrap ConfigMap (mounted as a folder of ``<policy>.json`` bundles) with
the same selection rule as the operator. Never imports :mod:`modelroute.operator`: the contract is
:mod:`modelroute.policy.wire`.
"""

from __future__ import annotations

import asyncio
import glob
import logging
import os
import random
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from modelroute.policy import CompiledPolicy, PolicyError, compile_spec
from modelroute.policy.wire import (
    ACK_PATH,
    PING_SECONDS,
    SUBSCRIBE_PATH,
    Ack,
    Bundle,
    Message,
    choose,
    parse_labels_file,
)
from modelroute.proxy.state import SERVICES, PolicyHolder, running

log = logging.getLogger("modelroute.subscription")


@dataclass(frozen=True)
class PodIdentity:
    namespace: str
    name: str
    uid: str = ""

    @staticmethod
    def from_env(environ: Mapping[str, str] | None = None) -> PodIdentity:
        env = environ if environ is not None else os.environ
        return PodIdentity(namespace=env.get("POD_NAMESPACE", "default"), name=env.get("POD_NAME", ""),
                           uid=env.get("POD_UID", ""))


@dataclass(frozen=True)
class SubscriptionConfig:
    operator_url: str
    token_file: str = "/var/run/secrets/modelroute/token"
    labels_file: str = "/etc/modelroute/podinfo/labels"
    bootstrap_dir: str = "/etc/modelroute/bootstrap"
    #: What to do while no policy selects this pod: None refuses (503 no_policy), a policy passes through.
    no_policy: CompiledPolicy | None = None
    backoff_min: float = 0.2
    backoff_max: float = 10.0


def passthrough_policy(base_url: str, model: str, provider_type: str = "openai",
                       key_env: str = "MODELROUTE_PASSTHROUGH_API_KEY") -> CompiledPolicy:
    """The "no policy" behaviour that sends every request to one default model (with the key in
    ``key_env`` when that variable is set: an in-cluster model server may need none)."""
    provider: dict[str, Any] = {"name": "default", "type": provider_type, "baseURL": base_url}
    if os.environ.get(key_env):
        provider["apiKey"] = {"env": key_env}
    spec = {
        "providers": [provider],
        "models": [{"name": model, "provider": "default", "pricing": {"input": 0, "output": 0}}],
        "default": model,
    }
    return compile_spec("no-policy", spec)


class Subscription:
    """Keeps ``holder`` on the policy the operator assigns to this pod."""

    def __init__(self, holder: PolicyHolder, identity: PodIdentity, config: SubscriptionConfig) -> None:
        self.holder = holder
        self.identity = identity
        self.config = config
        self.applied: str | None = None  # version last applied (None: the no-policy behaviour)
        self.connected = asyncio.Event()
        self._metrics_app: web.Application | None = None

    # --- policy changes ----------------------------------------------------------------------

    def apply(self, policy: CompiledPolicy) -> Ack:
        try:
            changed = self.holder.apply(policy)
        except PolicyError as exc:
            self._count("rejected")
            log.error("policy %s version %s rejected, keeping the current one: %s", policy.name, policy.version, exc)
            return Ack(policy.version, applied=False, error=str(exc))
        self.applied = policy.version
        if changed:
            self._count("applied")
            log.info("policy %s version %s applied", policy.name, policy.version)
        return Ack(policy.version, applied=True)

    def apply_none(self, reason: str) -> None:
        self.applied = None
        if self.config.no_policy is not None:
            if self.holder.apply(self.config.no_policy):
                log.info("%s: passing requests through to %s", reason, self.config.no_policy.default)
        elif self.holder.clear():
            log.warning("%s: refusing requests until a policy selects this pod", reason)

    def _count(self, result: str) -> None:
        if self._metrics_app is not None:
            self._metrics_app[SERVICES].metrics.reloads.labels(result).inc()

    def bootstrap(self) -> bool:
        """Load this pod's policy from the bootstrap ConfigMap folder, if it holds one."""
        try:
            with open(self.config.labels_file, encoding="utf-8") as fh:
                labels = parse_labels_file(fh.read())
        except OSError:
            labels = {}
        bundles: dict[str, Bundle] = {}
        for path in sorted(glob.glob(os.path.join(self.config.bootstrap_dir, "*.json"))):
            try:
                with open(path, encoding="utf-8") as fh:
                    bundle = Bundle.decode(fh.read())
                bundles[bundle.candidate.name] = bundle
            except (OSError, ValueError, KeyError) as exc:
                log.warning("bootstrap file %s skipped: %s", path, exc)
        ranked = choose((b.candidate for b in bundles.values()), labels)
        for cand in ranked:
            try:
                ack = self.apply(CompiledPolicy.from_dict(bundles[cand.name].policy))
            except PolicyError as exc:
                log.warning("bootstrap policy %s unreadable: %s", cand.name, exc)
                continue
            if ack.applied:
                log.info("bootstrap: policy %s from %s", cand.name, self.config.bootstrap_dir)
                return True
        return False

    # --- the subscription loop ---------------------------------------------------------------

    async def run(self) -> None:
        delay = self.config.backoff_min
        timeout = aiohttp.ClientTimeout(total=None, connect=5, sock_read=PING_SECONDS * 3)
        async with aiohttp.ClientSession(timeout=timeout, read_bufsize=2**22, trust_env=False) as session:
            while True:
                try:
                    if await self._session(session):
                        delay = self.config.backoff_min
                except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as exc:
                    log.warning("subscription to %s broken (%s); retrying in %.1fs", self.config.operator_url,
                                exc.__class__.__name__ + (f": {exc}" if str(exc) else ""), delay)
                self.connected.clear()
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))
                delay = min(delay * 2, self.config.backoff_max)

    def _headers(self) -> dict[str, str]:
        with open(self.config.token_file, encoding="utf-8") as fh:
            token = fh.read().strip()  # re-read every time: the kubelet rotates it
        return {"Authorization": f"Bearer {token}"}

    async def _session(self, session: aiohttp.ClientSession) -> bool:
        """One subscription, until the stream ends. True when it delivered at least one message."""
        url = self.config.operator_url.rstrip("/")
        got = False
        async with session.get(url + SUBSCRIBE_PATH, headers=self._headers()) as resp:
            if resp.status != 200:
                text = (await resp.text())[:200].strip()
                raise aiohttp.ClientResponseError(resp.request_info, (), status=resp.status, message=text)
            self.connected.set()
            while True:
                line = await resp.content.readline()
                if not line:
                    return got
                got = True
                await self._handle(session, url, Message.decode(line))

    async def _handle(self, session: aiohttp.ClientSession, url: str, msg: Message) -> None:
        if msg.type == "ping":
            return
        if msg.type == "none":
            self.apply_none(msg.reason or "no policy selects this pod")
            return
        try:
            policy = msg.compiled()
        except PolicyError as exc:
            ack = Ack(msg.version or "", applied=False, error=str(exc))
        else:
            ack = self.apply(policy)
        try:
            async with session.post(url + ACK_PATH, data=ack.encode(), headers=self._headers(),
                                    timeout=aiohttp.ClientTimeout(total=5)) as resp:
                if resp.status >= 300:
                    log.warning("ack of %s refused: HTTP %s", ack.version, resp.status)
        except (TimeoutError, aiohttp.ClientError) as exc:
            log.warning("ack of %s not delivered: %s", ack.version, exc)

    async def ctx(self, app: web.Application) -> AsyncIterator[None]:
        """cleanup_ctx for :func:`modelroute.proxy.build_app`: bootstrap, then subscribe until shutdown."""
        self._metrics_app = app
        if not self.holder.ready and not self.bootstrap() and self.config.no_policy is not None:
            self.apply_none("no bootstrap policy selects this pod")
        async with running(self.run()):
            yield
