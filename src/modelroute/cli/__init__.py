"""The ``modelroute`` command line. Each subcommand lives in its own module of this package.

A module in :data:`COMMANDS` defines ``register(subparsers)``, which adds its parser and sets
``func`` (taking the parsed arguments, returning the exit code).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

#: Subcommand modules, in the order ``--help`` lists them.
COMMANDS = ["serve", "validate", "test", "explain", "replay", "report", "demo", "sidecar", "operator", "crds", "calibrate"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="modelroute", description="LLM model router: sidecar, policy tools and operator.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"modelroute.cli.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
