"""``modelroute explain POLICY REQUEST.json [--header k=v]``: the decision trace of one request.

Prints every route in order and why it matched or not, what labelling and routing strategies
said, the experiment arm, the chosen model and its fallbacks (and the models left out, with why),
and the expected cost: estimated input tokens plus ``max_tokens`` (or ``--output-tokens``) at each
candidate's prices, against the baseline. ``--json`` prints the same as one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

from modelroute.policy import CompiledPolicy, PolicyError
from modelroute.replay.offline import (
    NoModelClient,
    OfflineModelCall,
    Outcome,
    decide_offline,
    expected_cost,
    expected_usage,
)
from modelroute.routing import Router
from modelroute.telemetry.cost import format_usd


def register(sub: Any) -> None:
    p = sub.add_parser("explain", help="trace how a policy routes one request", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("policy", metavar="POLICY")
    p.add_argument("request", metavar="REQUEST.json", help="a chat completion body (or {request, headers})")
    p.add_argument("--header", action="append", default=[], metavar="K=V", help="a request header (repeatable)")
    p.add_argument("--output-tokens", type=int, default=None, help="output tokens assumed when the request sets no max_tokens")
    p.add_argument("--json", action="store_true", help="print the trace as JSON")
    p.set_defaults(func=run)


def trace(router: Router, outcome: Outcome, output_tokens: int | None) -> dict[str, Any]:
    """The decision trace as plain data."""
    policy, view, d = router.policy, outcome.view, outcome.decision
    verdicts = router.explain_routes(view)
    chosen = d.route if d else None
    reached = True
    routes = []
    for compiled, verdict in zip(router.routes, verdicts):
        if d is not None and d.strategy == "pinned":
            state = "not evaluated (the client named a pinned model)"
        elif not reached:
            state = "not reached (an earlier route served the request)"
        elif verdict.route == chosen:
            state, reached = "chosen", False
        elif verdict.matched:
            state = f"matched, but strategy {compiled.route.strategy!r} passed" if compiled.route.strategy else "matched"
        else:
            state = "no match"
        target = compiled.route.model or f"strategy {compiled.route.strategy}"
        routes.append({"route": verdict.route, "target": target, "matched": verdict.matched, "why": verdict.reason, "state": state})
    out: dict[str, Any] = {
        "policy": policy.name, "version": policy.version, "requested_model": view.requested_model,
        "input_tokens": view.input_tokens, "max_tokens": view.max_tokens, "stream": view.stream, "task": view.task,
        "labels": dict(view.labels), "routes": routes, "error": outcome.error, "message": outcome.message,
    }
    if d is not None:
        usage = expected_usage(view, output_tokens)
        out["decision"] = {"route": d.route, "strategy": d.strategy, "reason": d.reason,
                           "annotations": {k: v for k, v in d.annotations.items() if _plain(v)},
                           "candidates": list(d.candidates), "skipped": [{"model": s.model, "reason": s.reason} for s in d.skipped]}
        out["expected_cost"] = {
            "input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens,
            "candidates": {m: format_usd(expected_cost(policy, m, usage)) for m in d.candidates},
            "baseline": {"model": policy.baseline, "usd": format_usd(expected_cost(policy, policy.baseline, usage))},
        }
    return out


def _plain(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def render(t: dict[str, Any]) -> str:
    lines = [f"policy {t['policy']} (version {t['version']})",
             f"request: model {t['requested_model']}, ~{t['input_tokens']} input tokens, max_tokens {t['max_tokens'] or '-'}, "
             f"stream {str(t['stream']).lower()}" + (f", task {t['task']}" if t["task"] else "")]
    if t["labels"]:
        lines.append("labels: " + ", ".join(f"{k}={v}" for k, v in t["labels"].items()))
    lines.append("routes, in order (first match wins):")
    width = max([len(r["route"]) for r in t["routes"]] + [5])
    for i, r in enumerate(t["routes"], 1):
        why = f"on its own it {'would match' if r['matched'] else 'would not match'} ({r['why']})" \
            if r["state"].startswith("not ") else r["why"]
        lines.append(f"  {i}. {r['route']:<{width}}  -> {r['target']:<18} {r['state']}: {why}")
    if not t["routes"]:
        lines.append("  (the policy has no routes)")
    d = t.get("decision")
    if d is not None:
        lines.append(f"decision: route {d['route']} by {d['strategy']}: {d['reason']}")
        extra = {k: v for k, v in d["annotations"].items() if k not in ("experiment", "arm")}
        if extra:
            lines.append("  strategy outputs: " + json.dumps(extra, sort_keys=True))
        if "arm" in d["annotations"]:
            lines.append(f"  experiment {d['annotations'].get('experiment')}: arm {d['annotations']['arm']}")
        if d["candidates"]:
            lines.append(f"  model: {d['candidates'][0]}; fallbacks: {', '.join(d['candidates'][1:]) or 'none'}")
        for skip in d["skipped"]:
            lines.append(f"  left out: {skip['model']} ({skip['reason']})")
    if t["error"]:
        lines.append(f"the sidecar would answer with an error: {t['error']}: {t['message']}")
    cost = t.get("expected_cost")
    if cost and cost["candidates"]:
        first = next(iter(cost["candidates"].items()))
        lines.append(f"expected cost ({cost['input_tokens']} in, {cost['output_tokens']} out): {first[0]} USD {first[1]}; "
                     f"baseline {cost['baseline']['model']} USD {cost['baseline']['usd']}")
        for model, usd in list(cost["candidates"].items())[1:]:
            lines.append(f"  if it falls back to {model}: USD {usd}")
    return "\n".join(lines)


def read_request(path: str, headers: list[str]) -> tuple[dict[str, Any], dict[str, str]]:
    doc = json.loads(Path(path).read_text())
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: expected a JSON object")
    body, given = (doc["request"], dict(doc.get("headers") or {})) if isinstance(doc.get("request"), dict) else (doc, {})
    for item in headers:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--header {item!r}: expected NAME=VALUE")
        given[key.strip()] = value
    return body, given


def run(args: argparse.Namespace) -> int:
    from modelroute.proxy.reload import load_policy_file

    try:
        policy: CompiledPolicy = load_policy_file(args.policy)
        router = Router(policy, NoModelClient())
        body, headers = read_request(args.request, args.header)
        outcome = asyncio.run(decide_offline(router, body, headers))
    except PolicyError as exc:
        print(f"{args.policy}: invalid policy")
        for problem in exc.problems:
            print(f"  {problem.path}: {problem.message}")
        return 2
    except (OSError, ValueError, OfflineModelCall) as exc:
        print(f"cannot explain: {exc}")
        return 2
    t = trace(router, outcome, args.output_tokens)
    print(json.dumps(t, indent=2) if args.json else render(t))
    return 1 if outcome.error else 0
