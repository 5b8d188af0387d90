"""``modelroute report --url http://127.0.0.1:8787``: what a running sidecar spent, saved and delivered.

Reads the sidecar's ``/metrics`` and prints, per route: requests, share, cost, baseline cost,
saving, p50/p95 latency, escalation and fallback rates, heuristic pass rate, judge and feedback
scores; then each A/B experiment's arms with 95% intervals and whether each difference from the
reference arm is significant. ``--policy`` picks a policy other than the active one.
"""

from __future__ import annotations

import argparse
import json
import urllib.error
import urllib.request
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("report", help="per-route cost, saving, latency and quality of a running sidecar", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default="http://127.0.0.1:8787", help="the sidecar (default %(default)s)")
    p.add_argument("--policy", help="report this policy instead of the active one")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.add_argument("--timeout", type=float, default=10.0)
    p.set_defaults(func=run)


def fetch_metrics(url: str, timeout: float) -> str:
    with urllib.request.urlopen(url.rstrip("/") + "/metrics", timeout=timeout) as resp:
        body: bytes = resp.read()
    return body.decode("utf-8")


def run(args: argparse.Namespace) -> int:
    from modelroute.report.live import build_report
    from modelroute.report.render import as_dict, render

    try:
        text = fetch_metrics(args.url, args.timeout)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        print(f"cannot read {args.url}/metrics: {exc}")
        return 2
    report = build_report(text, args.policy)
    print(json.dumps(as_dict(report), indent=2) if args.json else render(report))
    return 0
