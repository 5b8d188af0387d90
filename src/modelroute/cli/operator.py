"""``modelroute operator``: run the Kubernetes operator (needs the ``operator`` extra: kopf)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
from typing import Any


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("operator", help="run the RoutingPolicy operator (kopf) and its distribution endpoint")
    p.add_argument("--host", default="0.0.0.0", help="distribution endpoint address (default 0.0.0.0)")
    p.add_argument("--port", type=int, default=8080, help="distribution endpoint port (default 8080)")
    p.add_argument("--namespace", action="append", default=[], help="watch only this namespace (repeatable); default: cluster-wide")
    p.add_argument("--peering", help="kopf peering name for HA (several replicas); default: standalone")
    p.add_argument("--priority", type=int, help="peering priority; default: random, distinct per replica")
    p.add_argument("--kube-api", default=os.environ.get("MODELROUTE_KUBE_API"), help="API server URL without auth (tests, `kubectl proxy`)")
    p.add_argument("--webhook-port", type=int, help="serve the injecting admission webhook on this port")
    p.add_argument("--webhook-cert", help="TLS certificate of the webhook (PEM)")
    p.add_argument("--webhook-key", help="TLS private key of the webhook (PEM)")
    p.add_argument("--webhook-insecure", action="store_true", help="serve the webhook over plain HTTP (tests only)")
    p.add_argument("--inject-config", help="JSON file with the sidecar injection settings (the chart's sidecar values)")
    p.add_argument("--log-level", default=os.environ.get("MODELROUTE_LOG_LEVEL", "INFO"))
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        from modelroute.operator.inject import InjectConfig
        from modelroute.operator.main import Options
        from modelroute.operator.main import run as run_operator
    except ImportError as exc:
        raise SystemExit(f"modelroute operator needs the operator extra (pip install 'modelroute[operator]'): {exc}")
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    inject = InjectConfig()
    if args.inject_config:
        with open(args.inject_config, encoding="utf-8") as fh:
            inject = InjectConfig.from_dict(json.load(fh))
    opts = Options(
        host=args.host, port=args.port, namespaces=args.namespace, peering=args.peering, priority=args.priority,
        kube_api=args.kube_api, webhook_port=args.webhook_port, webhook_cert=args.webhook_cert,
        webhook_key=args.webhook_key, webhook_insecure=args.webhook_insecure, inject=inject,
    )
    try:
        asyncio.run(run_operator(opts))
    except KeyboardInterrupt:
        pass
    return 0
