"""Write the calibrated RoutingPolicy and its example library.

The policy names the dataset's models by their ids (registry name = upstream model id), prices
them from :data:`ROUTERBENCH_PRICES` or a ``--prices`` file, routes every request through one
embedding strategy whose library sits beside the policy (``library.npz``), and maps each
cascade label to a cascade strategy (first model, then the agreement check with the checkers,
then the top model), each region served by answer (``answers:<region>``) to a cascade whose
``byAnswer`` rules give each of the first model's answers its cell's plan, and a mixed region or
cell to a split strategy serving a share of the region's prompts with each of its two ways. Its
one provider is a placeholder to fill in before serving.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from collections.abc import Mapping
from typing import Any

import yaml

from modelroute.calibrate.cells import Layout
from modelroute.calibrate.fit import Mix
from modelroute.calibrate.plans import ANSWER_CHECKS, Plan
from modelroute.embedding.text import MAX_CHARS, MIN_CHARS

#: USD per 1M tokens (input, output) of the RouterBench models, as their providers listed them.
ROUTERBENCH_PRICES: dict[str, tuple[float, float]] = {
    "gpt-4-1106-preview": (10.0, 30.0),
    "gpt-3.5-turbo-1106": (1.0, 2.0),
    "claude-v1": (8.0, 24.0),
    "claude-v2": (8.0, 24.0),
    "claude-instant-v1": (0.8, 2.4),
    "meta/llama-2-70b-chat": (0.9, 0.9),
    "mistralai/mixtral-8x7b-chat": (0.6, 0.6),
    "zero-one-ai/Yi-34B-Chat": (0.8, 0.8),
    "meta/code-llama-instruct-34b-chat": (0.776, 0.776),
    "WizardLM/WizardLM-13B-V1.2": (0.3, 0.3),
    "mistralai/mistral-7b-chat": (0.2, 0.2),
}
LIBRARY_FILE = "library.npz"


def read_prices(path: str | os.PathLike[str] | None, models: tuple[str, ...]) -> dict[str, tuple[float, float]]:
    """Prices of ``models``: the built-in table, overridden by a YAML/JSON file of
    ``{model: {input: USD/1M, output: USD/1M}}``. Raises ValueError naming models without a price."""
    prices = dict(ROUTERBENCH_PRICES)
    if path is not None:
        loaded = yaml.safe_load(Path(path).read_text())
        if not isinstance(loaded, Mapping):
            raise ValueError(f"{path}: expected a mapping of model -> {{input, output}}")
        for model, p in loaded.items():
            prices[str(model)] = (float(p["input"]), float(p["output"]))
    missing = [m for m in models if m not in prices]
    if missing:
        raise ValueError(f"no prices for {missing}: pass --prices FILE")
    return {m: prices[m] for m in models}


def label_of(plan: Plan) -> str:
    return plan.models[0] if not plan.is_cascade else plan.name


def strategy_name(plan: Plan) -> str:
    name = ("escalate-" if plan.escalates else "cascade-") + "-".join(m.split("/")[-1] for m in plan.models[:-1])
    return (name + (f"-{plan.check}" if plan.check else "")).lower().replace(".", "")


def region_labels(plans: list[Plan], lay: Layout, mixes: tuple[Mix, ...]) -> list[str]:
    """The library label of each region: its plan's label, ``answers:<region>`` when served by
    answer, or ``mix:<region>`` for a mix."""
    out = []
    for r, (conditional, cell) in enumerate(zip(lay.conditional, lay.offsets)):
        out.append(f"answers:{r}" if conditional else label_of(plans[mixes[cell].low]) if mixes[cell].pure else f"mix:{r}")
    return out


def _target(plan: Plan) -> dict[str, str]:
    return {"strategy": strategy_name(plan)} if plan.is_cascade else {"model": plan.models[0]}


def _split(low: dict[str, str], high: dict[str, str], share: float) -> dict[str, Any]:
    """A split serving ``share`` of the prompts with ``high`` and the rest with ``low``, the shares
    written so they add up to 1 exactly."""
    second = round(share, 6)
    return {"type": "split", "targets": [{**low, "share": round(1.0 - second, 6)}, {**high, "share": second}]}


def _cascade(plan: Plan) -> dict[str, Any]:
    checks: dict[str, Any] = {}
    if plan.checkers:
        checks["agreement"] = {"model": plan.checkers[0]} if len(plan.checkers) == 1 else {"models": list(plan.checkers)}
    if plan.check:
        checks["regex"] = ANSWER_CHECKS[plan.check]
    return {"type": "cascade", "chain": [plan.models[0], plan.models[-1]], "checks": checks}


def _rule(key: str, plan: Plan) -> dict[str, Any]:
    match = f"^{re.escape(key)}$" if key else ""  # the last cell: any other answer
    if plan.escalates:
        return {"match": match, "then": "escalate"}
    return {"match": match, "agreement": list(plan.checkers)} if plan.checkers else {"match": match, "then": "accept"}


def _by_answer(plans: list[Plan], lay: Layout, mixes: tuple[Mix, ...], region: int) -> tuple[list[dict[str, Any]], float]:
    """The region's cascade by answer; or two (its mixed cell's low and high plan), and the share
    of the second."""
    start = int(lay.offsets[region])
    keys = (*lay.keys, "")
    cells = [mixes[start + i] for i in range(len(keys))]
    chain = [plans[cells[0].low].models[0], plans[cells[0].low].models[-1]]

    def way(rules: list[dict[str, Any]]) -> dict[str, Any]:
        return {"type": "cascade", "chain": chain, "checks": {"byAnswer": rules}}

    low = way([_rule(key, plans[m.low]) for key, m in zip(keys, cells)])
    for i, m in enumerate(cells):
        if not m.pure:
            return [low, way([_rule(key, plans[c.high if j == i else c.low]) for j, (key, c) in enumerate(zip(keys, cells))])], m.share
    return [low], 0.0


def policy_document(name: str, models: tuple[str, ...], prices: Mapping[str, tuple[float, float]], baseline: str,
                    default: str, plans: list[Plan], lay: Layout, mixes: tuple[Mix, ...], base_url: str,
                    k: int) -> dict[str, Any]:
    strategies: dict[str, Any] = {}
    labels: dict[str, Any] = {}
    for region, label in enumerate(region_labels(plans, lay, mixes)):
        mix = mixes[int(lay.offsets[region])]
        if lay.conditional[region]:
            ways, share = _by_answer(plans, lay, mixes, region)
            strategies[f"answers-{region}"] = ways[0]
            labels[label] = {"strategy": f"answers-{region}"}
            if len(ways) > 1:
                strategies[f"answers-{region}-b"] = ways[1]
                strategies[f"split-{region}"] = _split({"strategy": f"answers-{region}"}, {"strategy": f"answers-{region}-b"}, share)
                labels[label] = {"strategy": f"split-{region}"}
            continue
        for plan in {plans[mix.low], plans[mix.high]}:
            if plan.is_cascade:
                strategies[strategy_name(plan)] = _cascade(plan)
        if mix.pure and plans[mix.low].is_cascade:
            labels[label] = {"strategy": strategy_name(plans[mix.low])}
        elif not mix.pure:
            strategies[f"split-{region}"] = _split(_target(plans[mix.low]), _target(plans[mix.high]), mix.share)
            labels[label] = {"strategy": f"split-{region}"}
    strategies["router"] = {
        "type": "embedding", "library": LIBRARY_FILE, "embedder": "local", "k": k, "minSimilarity": 0.2,
        "default": default, "decide": "vote", "text": {"minChars": MIN_CHARS, "maxChars": MAX_CHARS},
        **({"labels": labels} if labels else {}),
    }
    return {
        "apiVersion": "modelroute.dev/v1alpha1",
        "kind": "RoutingPolicy",
        "metadata": {"name": name},
        "spec": {
            "providers": [{"name": "upstream", "type": "openai", "baseURL": base_url, "apiKey": {"env": "UPSTREAM_API_KEY"}}],
            "models": [{"name": m, "provider": "upstream", "upstreamModel": m,
                        "pricing": {"input": prices[m][0], "output": prices[m][1]}} for m in models],
            "baseline": baseline,
            "default": default,
            "routes": [{"name": "calibrated", "strategy": "router"}],
            "strategies": strategies,
        },
    }


def write(out: Path, doc: dict[str, Any], summary: dict[str, Any]) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / "policy.yaml"
    header = ("# Written by `modelroute calibrate`. Fill in the provider (baseURL, apiKey) before serving.\n"
              + "".join(f"# {line}\n" for line in json.dumps(summary, indent=1, sort_keys=True).splitlines()))
    path.write_text(header + yaml.safe_dump(doc, sort_keys=False, width=120))
    return path
