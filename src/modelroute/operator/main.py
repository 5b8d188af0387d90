"""Run the operator: kopf (watching policies and pods), the distribution endpoint, the status writer.

All three share one event loop and one :class:`~modelroute.operator.state.ControlState`.

HA: several replicas may run with kopf peering (``peering`` set, distinct priorities). kopf pauses
every replica but the one with the highest priority. The active replica labels its own pod
``modelroute.dev/active: "true"`` (the chart's Service selects that label); a paused replica removes
the label, drops its subscriptions and answers 503 to new ones, so sidecars resubscribe to the active
replica. Sidecars keep their last good policy in between.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
from dataclasses import dataclass, field
from typing import Any

import kopf
from aiohttp import web

from modelroute.operator.distribution import Distribution, TokenAuthenticator
from modelroute.operator.handlers import Context, register
from modelroute.operator.inject import InjectConfig
from modelroute.operator.kubeapi import KubeAPI, KubeError, credentials_from
from modelroute.operator.state import ControlState
from modelroute.operator.status import StatusWriter

log = logging.getLogger("modelroute.operator")
PEERING_LOGGER = "kopf._core.engines.peering"


@dataclass
class Options:
    host: str = "0.0.0.0"
    port: int = 8080
    namespaces: list[str] = field(default_factory=list)  # empty: cluster-wide
    peering: str | None = None  # None: standalone
    priority: int | None = None  # None: random (distinct per replica)
    kube_api: str | None = None  # an explicit API server URL (tests, kubectl proxy)
    webhook_port: int | None = None
    webhook_cert: str | None = None
    webhook_key: str | None = None
    webhook_insecure: bool = False  # plain HTTP webhook (tests only)
    inject: InjectConfig = field(default_factory=InjectConfig)


ACTIVE_LABEL = "modelroute.dev/active"


class Activity(logging.Handler):
    """Tracks whether kopf peering paused this replica (kopf has no public flag for it), and mirrors
    it in the ``modelroute.dev/active`` label of this replica's pod (``POD_NAME``/``POD_NAMESPACE``)."""

    def __init__(self, state: ControlState, api: KubeAPI) -> None:
        super().__init__(logging.INFO)
        self.active = True
        self.state = state
        self.api = api
        self._tasks: set[asyncio.Task[None]] = set()

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        if msg.startswith("Pausing"):
            self.active = False
            self.state.close_all()
            self.publish()
        elif msg.startswith("Resuming"):
            self.active = True
            self.publish()

    def publish(self) -> None:
        pod, namespace = os.environ.get("POD_NAME"), os.environ.get("POD_NAMESPACE")
        if not pod or not namespace:
            return
        body = {"metadata": {"labels": {ACTIVE_LABEL: "true" if self.active else None}}}

        async def patch() -> None:
            try:
                await self.api.request("PATCH", f"/api/v1/namespaces/{namespace}/pods/{pod}", body,
                                       "application/merge-patch+json")
            except (TimeoutError, KubeError, OSError) as exc:
                log.warning("could not label this replica's pod: %s", exc)

        task = asyncio.get_running_loop().create_task(patch())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def settings_for(opts: Options) -> kopf.OperatorSettings:
    settings = kopf.OperatorSettings()
    settings.persistence.finalizer = "modelroute.dev/cleanup"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="modelroute.dev")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix="modelroute.dev")
    settings.posting.level = logging.INFO
    settings.watching.reconnect_backoff = 0.5
    settings.networking.request_timeout = 30
    if opts.webhook_port:
        settings.admission.server = kopf.WebhookServer(
            addr="0.0.0.0", port=opts.webhook_port, certfile=opts.webhook_cert, pkeyfile=opts.webhook_key,
            insecure=opts.webhook_insecure)
        settings.admission.managed = None  # the chart owns the MutatingWebhookConfiguration
    return settings


def build_registry(ctx: Context, api: KubeAPI, opts: Options) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()
    register(registry, ctx, webhook=bool(opts.webhook_port))

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        info: kopf.ConnectionInfo | None
        if opts.kube_api:
            info = kopf.ConnectionInfo(server=opts.kube_api, insecure=True)
        else:
            info = kopf.login_via_client(**kwargs) or kopf.login_with_service_account(**kwargs) \
                or kopf.login_with_kubeconfig(**kwargs)
        if info is not None:
            api.configure(credentials_from(info))
        return info

    return registry


async def run(opts: Options, stop: Any = None) -> None:
    """Run until ``stop`` (an asyncio/threading Event or Future, as kopf accepts) is set."""
    api = KubeAPI()
    writer = StatusWriter(api)
    state = ControlState(on_dirty=writer.mark)
    writer.state = state
    ctx = Context(state=state, writer=writer, api=api, inject=opts.inject)
    activity = Activity(state, api)
    logging.getLogger(PEERING_LOGGER).addHandler(activity)
    kopf_ready = asyncio.Event()
    dist = Distribution(state, TokenAuthenticator(api), ready=kopf_ready.is_set, active=lambda: activity.active)
    runner = web.AppRunner(dist.app(), handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, opts.host, opts.port).start()
    log.info("distribution endpoint on %s:%s", opts.host, opts.port)
    flusher = asyncio.create_task(writer.run())

    async def announce() -> None:
        await kopf_ready.wait()
        if activity.active:
            activity.publish()

    announcer = asyncio.create_task(announce())
    try:
        await kopf.operator(
            registry=build_registry(ctx, api, opts), settings=settings_for(opts),
            standalone=opts.peering is None, peering_name=opts.peering,
            priority=opts.priority if opts.priority is not None else random.randint(1, 1_000_000),
            clusterwide=not opts.namespaces, namespaces=opts.namespaces,
            ready_flag=kopf_ready, stop_flag=stop,
        )
    finally:
        flusher.cancel()
        announcer.cancel()
        state.close_all()
        logging.getLogger(PEERING_LOGGER).removeHandler(activity)
        await runner.cleanup()
        await api.close()
