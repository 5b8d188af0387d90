"""Cross-field rules of the ``rateLimits`` section: a shared store needs the budget store's Redis,
reserves name known routes and models, and no model's reserves add up to its whole limit.

Pure like the rest of :mod:`modelroute.policy`; called from :func:`modelroute.policy.validate.validate_spec`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from modelroute.policy.errors import Problem


def rate_limit_problems(spec: Mapping[str, Any], root: str) -> Iterator[Problem]:
    section = spec.get("rateLimits")
    if not isinstance(section, Mapping):
        return
    path = f"{root}.rateLimits"
    if section.get("store") == "shared" and not ((spec.get("budgetStore") or {}).get("redis") or {}).get("url"):
        yield Problem(f"{path}.store", "a shared store is the Redis of budgetStore: set budgetStore.redis.url")
    models = [m["name"] for m in spec["models"]]
    routes = {r["name"] for r in spec.get("routes") or []} | {"default"}
    held: dict[str, float] = {}
    for i, item in enumerate(section.get("reserve") or []):
        where = f"{path}.reserve[{i}]"
        if item["route"] not in routes:
            yield Problem(f"{where}.route", f"unknown route {item['route']!r} (routes: {', '.join(sorted(routes))})")
        names = item.get("models") or models
        for j, name in enumerate(item.get("models") or []):
            if name not in models:
                yield Problem(f"{where}.models[{j}]", f"unknown model {name!r}")
        for name in names:
            held[name] = held.get(name, 0.0) + float(item["share"])
            if held[name] >= 1:
                yield Problem(f"{where}.share", f"the reserves of model {name!r} add up to {held[name]:g}: they must leave some of its limit")
