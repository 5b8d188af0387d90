"""``modelroute validate``: check policy files; print every problem with its field path."""

from __future__ import annotations

import argparse
from typing import Any

from modelroute.policy import CompiledPolicy, PolicyError


def register(sub: Any) -> None:
    p = sub.add_parser("validate", help="check policy files (exit 1 when one is invalid)", description=__doc__)
    p.add_argument("files", nargs="+", metavar="FILE")
    p.set_defaults(func=run)


def check(path: str) -> CompiledPolicy:
    """Compile the file and build its router (strategy settings are checked there)."""
    from modelroute.proxy.reload import load_policy_file
    from modelroute.routing import Router

    policy = load_policy_file(path)
    Router(policy, client=None)
    return policy


def run(args: argparse.Namespace) -> int:
    failed = 0
    for path in args.files:
        try:
            policy = check(path)
        except PolicyError as exc:
            failed += 1
            print(f"{path}: invalid, {len(exc.problems)} problem(s)")
            for problem in exc.problems:
                print(f"  {problem.path}: {problem.message}")
            continue
        print(f"{path}: ok (policy {policy.name}, version {policy.version}, "
              f"{len(policy.models)} models, {len(policy.routes)} routes)")
    return 1 if failed else 0
