"""``modelroute calibrate``: build an embedding router from a labelled dataset.

    modelroute calibrate --data FILE --target 0.97 --out DIR

Reads routerbench-format JSON lines, holds out a split, fits the router on the rest, prints its
held-out quality and cost against always-the-baseline and the best single models, fits it again
on every prompt (unless --no-refit), and writes that policy: ``DIR/policy.yaml`` with
``DIR/library.npz`` beside it.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from modelroute.calibrate.fit import Fit


class Bar:
    """A one-line progress bar on a terminal (a line per stage elsewhere)."""

    def __init__(self, stream: TextIO = sys.stderr) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.stage = ""
        self.started = time.monotonic()

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage != self.stage:
            if self.stage and self.tty:
                self.stream.write("\n")
            self.stage, self.started = stage, time.monotonic()
        if not self.tty and done != total:
            return
        width = 30
        filled = int(width * done / max(total, 1))
        elapsed = time.monotonic() - self.started
        self.stream.write(f"\r{stage:<28} [{'#' * filled}{'.' * (width - filled)}] {done}/{total} {elapsed:5.1f}s")
        if not self.tty:
            self.stream.write("\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty and self.stage:
            self.stream.write("\n")


def register(sub: Any) -> None:
    p = sub.add_parser("calibrate", help="build an embedding router from a labelled dataset",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="routerbench-format JSON lines")
    p.add_argument("--target", type=float, required=True, help="quality to keep, as a fraction of the baseline's (e.g. 0.97)")
    p.add_argument("--out", required=True, help="folder for policy.yaml and library.npz")
    p.add_argument("--holdout", type=float, default=0.25, help="fraction of prompts held out for the report (default 0.25)")
    p.add_argument("--baseline", help="baseline model (default: the most accurate)")
    p.add_argument("--no-cascades", dest="cascades", action="store_false", help="regions choose single models only")
    p.add_argument("--no-refit", dest="refit", action="store_false",
                   help="write the policy fitted on the training split (the one the held-out report describes), "
                        "not the one fitted again on every prompt")
    p.add_argument("--prices", help="YAML/JSON {model: {input, output}} USD per 1M tokens (built in: RouterBench models)")
    p.add_argument("--vectors", help="cache file (.npz) for the prompts' vectors, reused when it matches")
    p.add_argument("--base-url", default="http://127.0.0.1:8000/v1", help="the provider URL written into the policy")
    p.add_argument("--name", default="calibrated", help="policy name")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from modelroute.calibrate.report import table
    from modelroute.calibrate.run import Options, calibrate

    if not 0 < args.target <= 1 or not 0 <= args.holdout < 1:
        print("modelroute calibrate: --target must be in (0, 1] and --holdout in [0, 1)", file=sys.stderr)
        return 2
    bar = Bar()
    opts = Options(args.data, args.target, args.out, args.holdout, args.cascades, args.baseline, args.prices,
                   args.vectors, args.base_url, args.name, refit=args.refit)
    try:
        result = calibrate(opts, bar)
    except (OSError, ValueError, KeyError) as exc:
        bar.close()
        print(f"modelroute calibrate: {exc}", file=sys.stderr)
        return 1
    bar.close()
    if result.lines and result.reported is not None:
        print(f"fitted on the training split: {_describe(result.reported)}")
        print(f"held-out split ({args.holdout:.0%} of the prompts):")
        print(table(result.lines + result.alone))
    assert result.fit is not None
    print(f"wrote {result.policy} and {result.policy.parent / 'library.npz'}, fitted on {result.fitted_on} prompts: "
          f"{_describe(result.fit)}")
    return 0


def _describe(fitted: Fit) -> str:
    by_answer = sum(fitted.layout.conditional)
    mixed = sum(not m.pure for m in fitted.mixes)
    return (f"{fitted.regions} regions ({by_answer} served by answer, {mixed} split between two plans), "
            f"{fitted.margin:.2%} above the target; out-of-fold {fitted.oof_quality:.1%} of the baseline's quality "
            f"at {fitted.oof_cost:.1%} of its cost")
