"""Cross-field rules of the spend sections (``budgets``, ``budgetStore``, route ``batch``), and the
route-level spend settings the compiled policy carries in ``extensions``.

Pure like the rest of :mod:`modelroute.policy`; called from :func:`modelroute.policy.validate.validate_spec`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any

from modelroute.policy.errors import Problem

#: Headers the sidecar never lets routing see (the app's credentials): they cannot scope a budget.
CREDENTIAL_HEADERS = frozenset({"authorization", "x-api-key", "api-key", "cookie", "proxy-authorization"})


def spend_problems(spec: Mapping[str, Any], root: str) -> Iterator[Problem]:
    budgets = spec.get("budgets") or []
    models = {m["name"]: m for m in spec["models"]}
    counts = Counter(b["name"] for b in budgets)
    for i, budget in enumerate(budgets):
        path = f"{root}.budgets[{i}]"
        if counts[budget["name"]] > 1:
            yield Problem(f"{path}.name", f"duplicate budget name {budget['name']!r}")
        scope = budget.get("scope", "policy")
        if isinstance(scope, Mapping) and str(scope.get("header", "")).lower() in CREDENTIAL_HEADERS:
            yield Problem(f"{path}.scope.header", "a credential header cannot scope a budget (the sidecar never reads it)")
        on_exceed = budget.get("onExceed")
        if isinstance(on_exceed, Mapping) and on_exceed.get("downgradeTo") not in models:
            yield Problem(f"{path}.onExceed.downgradeTo", f"unknown model {on_exceed.get('downgradeTo')!r}")
    if budgets:
        for i, m in enumerate(spec["models"]):
            if "maxOutputTokens" not in m and "contextWindow" not in m and "embeddings" not in (m.get("capabilities") or ()):
                yield Problem(f"{root}.models[{i}]", "budgets need every model's output cap: set maxOutputTokens or contextWindow")
    for i, route in enumerate(spec.get("routes") or []):
        if route.get("batch") == "preferred" and "model" in route and route["model"] in models:
            provider = next((p for p in spec["providers"] if p["name"] == models[route["model"]]["provider"]), None)
            caps = models[route["model"]].get("capabilities")
            if provider is not None and (provider["type"] != "openai" or (caps is not None and "batch" not in caps)):
                yield Problem(f"{root}.routes[{i}].batch", f"model {route['model']!r} has no batch API (an openai provider and the batch capability)")


def route_extensions(spec: Mapping[str, Any]) -> dict[str, Any]:
    """``{"routeBatch": {route: "preferred"}}`` when a route sets ``batch``, else nothing."""
    batch = {r["name"]: r["batch"] for r in spec.get("routes") or [] if "batch" in r}
    return {"routeBatch": batch} if batch else {}
