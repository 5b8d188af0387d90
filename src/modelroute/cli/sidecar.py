"""``modelroute sidecar``: the proxy in a pod, its policy pushed by the operator.

Pod identity comes from the downward API (``POD_NAME``, ``POD_NAMESPACE``, ``POD_UID``); the injecting
webhook sets these and every flag's environment variable.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
from typing import Any

from aiohttp import web


def register(sub: Any) -> None:
    env = os.environ.get
    p: argparse.ArgumentParser = sub.add_parser("sidecar", help="run the sidecar proxy subscribed to the operator", description=__doc__)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: only the pod)")
    p.add_argument("--port", type=int, default=4000)
    p.add_argument("--operator-url", default=env("MODELROUTE_OPERATOR_URL", "http://modelroute-operator.modelroute.svc:8080"))
    p.add_argument("--token-file", default=env("MODELROUTE_TOKEN_FILE", "/var/run/secrets/modelroute/token"))
    p.add_argument("--labels-file", default=env("MODELROUTE_LABELS_FILE", "/etc/modelroute/podinfo/labels"))
    p.add_argument("--bootstrap-dir", default=env("MODELROUTE_BOOTSTRAP_DIR", "/etc/modelroute/bootstrap"))
    p.add_argument("--secrets-dir", default=env("MODELROUTE_SECRETS_DIR", "/var/run/modelroute/secrets"),
                   help="where the Secrets referenced by policies are mounted (<name>/<key>)")
    p.add_argument("--no-policy", choices=["refuse", "passthrough"], default=env("MODELROUTE_NO_POLICY", "refuse"),
                   help="while no policy selects this pod: refuse (503 no_policy) or pass through to one model")
    p.add_argument("--passthrough-base-url", default=env("MODELROUTE_PASSTHROUGH_BASE_URL"))
    p.add_argument("--passthrough-model", default=env("MODELROUTE_PASSTHROUGH_MODEL"))
    p.add_argument("--passthrough-type", default=env("MODELROUTE_PASSTHROUGH_TYPE", "openai"), choices=["openai", "anthropic"])
    p.add_argument("--max-body-mb", type=float, default=10.0)
    p.add_argument("--log-level", default=env("MODELROUTE_LOG_LEVEL", "info"), choices=["debug", "info", "warning", "error"])
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from modelroute.cli.serve import configure_logging, use_uvloop
    from modelroute.providers import EnvFileKeys
    from modelroute.cli.compose import sidecar_app
    from modelroute.proxy import PolicyHolder, Settings
    from modelroute.proxy.subscription import (
        PodIdentity,
        Subscription,
        SubscriptionConfig,
        passthrough_policy,
    )
    from modelroute.telemetry import tracer_provider_from_env
    from modelroute.telemetry.otel_metrics import meter_provider_from_env

    configure_logging(args.log_level)
    log = logging.getLogger("modelroute")
    no_policy = None
    if args.no_policy == "passthrough":
        if not (args.passthrough_base_url and args.passthrough_model):
            raise SystemExit("--no-policy passthrough needs --passthrough-base-url and --passthrough-model")
        no_policy = passthrough_policy(args.passthrough_base_url, args.passthrough_model, args.passthrough_type)
    config = SubscriptionConfig(operator_url=args.operator_url, token_file=args.token_file, labels_file=args.labels_file,
                                bootstrap_dir=args.bootstrap_dir, no_policy=no_policy)
    identity = PodIdentity.from_env()
    holder = PolicyHolder()
    settings = Settings(max_body_bytes=int(args.max_body_mb * 1024 * 1024), keys=EnvFileKeys(secrets_dir=args.secrets_dir),
                        tracer_provider=tracer_provider_from_env(),
                        meter_provider=meter_provider_from_env())
    subscription = Subscription(holder, identity, config)
    app = sidecar_app(holder, settings, background=[subscription.ctx])
    use_uvloop()
    # Everything imported so far lives as long as the process: keep it out of the collector's full
    # passes, which otherwise stall policy applies (a pod's CPU is small; 50 of them share a node).
    gc.collect()
    gc.freeze()
    log.info("sidecar of pod %s/%s, operator %s", identity.namespace, identity.name, args.operator_url)
    web.run_app(app, host=args.host, port=args.port, access_log=None,
                print=lambda _: log.info("listening on http://%s:%d", args.host, args.port))
    if settings.tracer_provider is not None:
        settings.tracer_provider.shutdown()  # type: ignore[attr-defined]
    return 0
