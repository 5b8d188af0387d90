"""Cross-field rules of the measurement sections (``experiments``, ``quality``) a schema cannot say.

Called from :func:`modelroute.policy.validate._semantic_problems` once the core checks ran.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any

from modelroute.policy.errors import Problem

#: Route names every policy has besides its own routes.
BUILTIN_ROUTES = frozenset({"default", "pinned"})


def measure_problems(spec: Mapping[str, Any], root: str) -> Iterator[Problem]:
    models = {m["name"] for m in spec["models"]}
    routes = {r["name"] for r in spec.get("routes", [])} | BUILTIN_ROUTES
    yield from _experiment_problems(spec.get("experiments", []), f"{root}.experiments", models, routes)
    yield from _quality_problems(spec.get("quality", {}), f"{root}.quality", models)


def _experiment_problems(experiments: list[Mapping[str, Any]], root: str, models: set[str], routes: set[str]) -> Iterator[Problem]:
    names = Counter(e["name"] for e in experiments)
    claimed: dict[str, str] = {}
    for i, exp in enumerate(experiments):
        path = f"{root}[{i}]"
        if names[exp["name"]] > 1:
            yield Problem(f"{path}.name", f"duplicate experiment name {exp['name']!r}")
        arms = exp["arms"]
        arm_names = Counter(a["name"] for a in arms)
        for j, arm in enumerate(arms):
            if arm_names[arm["name"]] > 1:
                yield Problem(f"{path}.arms[{j}].name", f"duplicate arm name {arm['name']!r}")
            if arm["model"] not in models:
                yield Problem(f"{path}.arms[{j}].model", f"unknown model {arm['model']!r}")
        if sum(float(a.get("weight", 1)) for a in arms) <= 0:
            yield Problem(f"{path}.arms", "the weights add up to 0: no arm would get traffic")
        for j, route in enumerate(exp["appliesTo"]):
            if route not in routes:
                yield Problem(f"{path}.appliesTo[{j}]", f"unknown route {route!r}")
            elif route in claimed:
                yield Problem(f"{path}.appliesTo[{j}]", f"route {route!r} is already split by experiment {claimed[route]!r}")
            else:
                claimed[route] = exp["name"]


def _quality_problems(quality: Mapping[str, Any], root: str, models: set[str]) -> Iterator[Problem]:
    judge = quality.get("judge")
    if judge is not None and judge["model"] not in models:
        yield Problem(f"{root}.judge.model", f"unknown model {judge['model']!r}")
    if "regret" in quality and judge is None:
        yield Problem(f"{root}.regret", "regret sampling needs quality.judge: the judge compares both answers")
