"""Cross-field rules of the names clients use and the APIs providers speak.

A client may ask for a model by its registry name, an alias, or the provider's own id
(``upstreamModel``): each of those must name one model. A provider's ``apis`` must be wire formats
its type can speak, and each ``passthrough`` provider must speak its family's API.
"""

from __future__ import annotations

from typing import Any, Iterator, Mapping

from modelroute.policy.errors import Problem

#: Wire formats each provider type can speak.
TYPE_APIS = {"openai": frozenset({"chat", "responses"}), "anthropic": frozenset({"messages"})}
FAMILY_TYPE = {"openai": "openai", "anthropic": "anthropic"}


def name_problems(spec: Mapping[str, Any], root: str) -> Iterator[Problem]:
    models: list[Mapping[str, Any]] = spec["models"]
    registry = {m["name"]: i for i, m in enumerate(models)}
    aliases: dict[str, int] = {}
    for i, m in enumerate(models):
        for j, alias in enumerate(m.get("aliases", [])):
            path = f"{root}.models[{i}].aliases[{j}]"
            if alias in registry and registry[alias] != i:
                yield Problem(path, f"{alias!r} is the name of another model (spec.models[{registry[alias]}])")
            elif alias in aliases and aliases[alias] != i:
                yield Problem(path, f"{alias!r} is also an alias of {models[aliases[alias]]['name']!r} (spec.models[{aliases[alias]}])")
            aliases.setdefault(alias, i)
    owners: dict[str, list[int]] = {}
    for i, m in enumerate(models):
        owners.setdefault(m.get("upstreamModel", m["name"]), []).append(i)
    for uid, found in owners.items():
        if len(found) < 2 or uid in registry or uid in aliases:
            continue
        first, *others = found
        for i in others:
            yield Problem(f"{root}.models[{i}].upstreamModel",
                          f"{uid!r} is also the upstream model of {models[first]['name']!r} (spec.models[{first}]): a client asking "
                          f"for {uid!r} could mean either; list it in the aliases of the one that should serve it")


def api_problems(spec: Mapping[str, Any], root: str) -> Iterator[Problem]:
    providers: list[Mapping[str, Any]] = spec["providers"]
    by_name = {p["name"]: p for p in providers}
    for i, p in enumerate(providers):
        allowed = TYPE_APIS.get(p["type"], frozenset())
        for j, api in enumerate(p.get("apis", [])):
            if api not in allowed:
                yield Problem(f"{root}.providers[{i}].apis[{j}]", f"a provider of type {p['type']!r} cannot speak {api!r}; "
                                                                 f"it speaks {sorted(allowed)}")
    for family, name in (spec.get("passthrough") or {}).items():
        if name == "none":
            continue
        provider = by_name.get(name)
        if provider is None:
            yield Problem(f"{root}.passthrough.{family}", f"unknown provider {name!r}")
        elif provider["type"] != FAMILY_TYPE[family]:
            yield Problem(f"{root}.passthrough.{family}", f"provider {name!r} is of type {provider['type']!r}; "
                                                          f"{family} clients' paths need a provider of type {FAMILY_TYPE[family]!r}")
