"""``modelroute demo``: the quickstart policy routing a mixed workload, all on this machine."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("demo", help="run the quickstart demo against local fake providers", description=__doc__)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from modelroute.demo import main

    return main()
