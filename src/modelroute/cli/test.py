"""``modelroute test POLICY CASES.yaml``: unit tests for a policy, like ``opa test``.

CASES.yaml is a list of cases (or ``{cases: [...]}``); each case is::

    - name: code goes to gpt-4o
      request: {model: auto, messages: [{role: user, content: "write a parser"}]}
      headers: {x-modelroute-task: code_generation}
      expect: {route: code, model: gpt-4o}

``expect`` may check ``route``, ``model`` (the first candidate), ``candidates`` (the whole chain),
``strategy``, ``experiment``, ``arm``, or ``error`` (the sidecar's error code, e.g.
``model_not_found``, ``no_eligible_model``). Each result is printed; the exit code is 1 when a case
fails and 2 when the policy or the cases cannot be read: usable in CI before ``kubectl apply``.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from modelroute.policy import PolicyError
from modelroute.replay.offline import NoModelClient, OfflineModelCall, Outcome, decide_offline
from modelroute.routing import Router

EXPECTABLE = ("route", "model", "candidates", "strategy", "experiment", "arm", "error")


def register(sub: Any) -> None:
    p = sub.add_parser("test", help="run a policy's test cases (exit 1 when one fails)", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("policy", metavar="POLICY")
    p.add_argument("cases", metavar="CASES.yaml")
    p.add_argument("-v", "--verbose", action="store_true", help="show the decision of passing cases too")
    p.set_defaults(func=run)


def load_cases(path: str) -> list[Mapping[str, Any]]:
    doc = yaml.safe_load(Path(path).read_text())
    cases = doc.get("cases") if isinstance(doc, Mapping) else doc
    if not isinstance(cases, list):
        raise ValueError(f"{path}: expected a list of cases (or a mapping with 'cases')")
    for i, case in enumerate(cases):
        if not isinstance(case, Mapping) or not isinstance(case.get("request"), Mapping) or not isinstance(case.get("expect"), Mapping):
            raise ValueError(f"{path}: case {i + 1} needs a request and an expect mapping")
        unknown = set(case["expect"]) - set(EXPECTABLE)
        if unknown:
            raise ValueError(f"{path}: case {i + 1} expects unknown fields {sorted(unknown)}; known: {list(EXPECTABLE)}")
    return cases


def actual(outcome: Outcome) -> dict[str, Any]:
    d = outcome.decision
    return {
        "route": d.route if d else None,
        "model": outcome.model,
        "candidates": list(d.candidates) if d else [],
        "strategy": d.strategy if d else None,
        "experiment": d.annotations.get("experiment") if d else None,
        "arm": d.annotations.get("arm") if d else None,
        "error": outcome.error,
    }


def mismatches(expect: Mapping[str, Any], got: Mapping[str, Any]) -> list[str]:
    out = []
    for key, want in expect.items():
        have = got[key]
        if key == "candidates":
            want = list(want)
        if have != want:
            out.append(f"{key}: expected {want!r}, got {have!r}")
    if "error" not in expect and got["error"]:
        out.append(f"error: {got['error']}")
    return out


async def run_cases(router: Router, cases: list[Mapping[str, Any]], verbose: bool) -> int:
    failed = 0
    for i, case in enumerate(cases):
        name = str(case.get("name") or f"case {i + 1}")
        try:
            outcome = await decide_offline(router, case["request"], case.get("headers"))
        except OfflineModelCall as exc:
            failed += 1
            print(f"ERROR {name}: {exc}")
            continue
        got = actual(outcome)
        problems = mismatches(case["expect"], got)
        summary = f"{got['route']} -> {got['model']}" if not got["error"] else f"error {got['error']}"
        if problems:
            failed += 1
            print(f"FAIL  {name} ({summary})")
            for problem in problems:
                print(f"        {problem}")
        else:
            print(f"PASS  {name}" + (f" ({summary})" if verbose else ""))
    total = len(cases)
    print("-" * 60)
    print(f"PASS: {total - failed}/{total}")
    if failed:
        print(f"FAIL: {failed}/{total}")
    return 1 if failed else 0


def run(args: argparse.Namespace) -> int:
    from modelroute.proxy.reload import load_policy_file

    try:
        policy = load_policy_file(args.policy)
        router = Router(policy, NoModelClient())
        cases = load_cases(args.cases)
    except PolicyError as exc:
        print(f"{args.policy}: invalid policy")
        for problem in exc.problems:
            print(f"  {problem.path}: {problem.message}")
        return 2
    except (OSError, ValueError, yaml.YAMLError) as exc:
        print(f"cannot read the cases: {exc}")
        return 2
    return asyncio.run(run_cases(router, cases, args.verbose))
