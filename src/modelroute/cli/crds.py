"""``modelroute crds``: print the RoutingPolicy CustomResourceDefinition (generated from the schema)."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "crds", help="print the RoutingPolicy CRD (YAML), e.g. `modelroute crds | kubectl apply -f -`"
    )
    parser.add_argument("-o", "--output", help="write to this file instead of stdout")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from modelroute.operator.crd import crd_yaml

    text = crd_yaml()
    if args.output:
        with open(args.output, "w", encoding="utf-8") as fh:
            fh.write(text)
    else:
        sys.stdout.write(text)
    return 0
