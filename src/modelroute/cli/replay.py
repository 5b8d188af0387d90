"""``modelroute replay --policy P --workload W.jsonl [--compare P2] [--html REPORT.html]``.

Runs a recorded workload through the real routing code (offline: no provider is called) and prints
the route mix, the cost, the baseline cost, the saving and, for labelled RouterBench lines, the
quality. ``--compare`` replays a second policy on the same workload, side by side; ``--html``
writes a self-contained report with an SVG chart of cost against quality and the route mix.
A progress bar shows on a terminal for long workloads.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from modelroute.policy import PolicyError


def register(sub: Any) -> None:
    p = sub.add_parser("replay", help="replay a recorded workload through one or two policies", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--policy", required=True, metavar="P")
    p.add_argument("--workload", required=True, metavar="W.jsonl")
    p.add_argument("--compare", metavar="P2", help="a second policy, shown side by side")
    p.add_argument("--html", metavar="REPORT.html", help="also write a self-contained HTML report")
    p.add_argument("--json", action="store_true", help="print the totals as JSON")
    p.add_argument("--progress", action="store_true", help="show the progress bar even when stderr is not a terminal")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from modelroute.proxy.reload import load_policy_file
    from modelroute.replay.html import report_html
    from modelroute.replay.preview import summary_of
    from modelroute.replay.progress import ProgressBar
    from modelroute.replay.render import render
    from modelroute.replay.run import replay_sync
    from modelroute.replay.workload import read_workload

    paths = [args.policy] + ([args.compare] if args.compare else [])
    try:
        policies = [load_policy_file(p) for p in paths]
        items = read_workload(args.workload)
    except PolicyError as exc:
        print("invalid policy:")
        for problem in exc.problems:
            print(f"  {problem.path}: {problem.message}")
        return 2
    except (OSError, ValueError) as exc:
        print(f"cannot read the workload: {exc}")
        return 2
    results = [replay_sync(p, items, ProgressBar(f"replay {p.name}", force=args.progress)) for p in policies]
    workload = Path(args.workload).name
    if args.json:
        print(json.dumps([summary_of(r) for r in results], indent=2))
    else:
        print(render(results, workload))
    if args.html:
        Path(args.html).write_text(report_html(results, workload), encoding="utf-8")
        print(f"\nwrote {args.html}")
    return 0
