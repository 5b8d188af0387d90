"""``modelroute serve``: the sidecar on a local policy file, hot-reloaded when the file changes."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import sys
from typing import Any

from aiohttp import web

from modelroute.policy import PolicyError


def register(sub: Any) -> None:
    p = sub.add_parser("serve", help="run the sidecar proxy on a policy file", description=__doc__)
    p.add_argument("--policy", required=True, help="RoutingPolicy YAML file (watched for changes)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: only the pod)")
    p.add_argument("--port", type=int, default=8787)
    p.add_argument("--max-body-mb", type=float, default=10.0, help="largest request body accepted (413 above)")
    p.add_argument("--watch-interval", type=float, default=1.0, help="seconds between checks of the policy file")
    p.add_argument("--access-log", action="store_true", help="log one line per request (method, path, status)")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.set_defaults(func=run)


def configure_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def use_uvloop() -> None:
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def settle_heap() -> None:
    """Move start-up objects out of the collector's way and collect young objects less often:
    a request allocates a few thousand short-lived objects."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)


def run(args: argparse.Namespace) -> int:
    from modelroute.cli.compose import sidecar_app
    from modelroute.proxy import PolicyFileWatcher, PolicyHolder, Settings, load_policy_file
    from modelroute.telemetry import tracer_provider_from_env
    from modelroute.telemetry.otel_metrics import meter_provider_from_env

    configure_logging(args.log_level)
    try:
        policy = load_policy_file(args.policy)
    except PolicyError as exc:
        for problem in exc.problems:
            print(f"{args.policy}: {problem}", file=sys.stderr)
        return 2
    settings = Settings(max_body_bytes=int(args.max_body_mb * 1024 * 1024), tracer_provider=tracer_provider_from_env(),
                        meter_provider=meter_provider_from_env())
    watcher = PolicyFileWatcher(args.policy, interval=args.watch_interval)
    app = sidecar_app(PolicyHolder(policy), settings, background=[watcher.ctx])
    use_uvloop()
    settle_heap()
    log = logging.getLogger("modelroute")
    log.info("policy %s version %s: %d models, %d routes", policy.name, policy.version, len(policy.models), len(policy.routes))
    web.run_app(
        app, host=args.host, port=args.port, access_log=logging.getLogger("aiohttp.access") if args.access_log else None,
        print=lambda _: log.info("listening on http://%s:%d", args.host, args.port),
    )
    if settings.tracer_provider is not None:
        settings.tracer_provider.shutdown()  # type: ignore[attr-defined]
    return 0
