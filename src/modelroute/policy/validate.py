"""Validation of a policy spec: JSON Schema first, then the cross-field rules a schema cannot say.

Every problem is reported with its field path (``spec.routes[2].model``); validation never stops
at the first problem.
"""

from __future__ import annotations

from collections import Counter
from functools import lru_cache
from typing import Any, Iterator, Mapping

import jsonschema

from modelroute.policy.errors import Problem
from modelroute.policy.schema import spec_schema
from modelroute.policy.validate_ratelimits import rate_limit_problems
from modelroute.policy.validate_spend import spend_problems
from modelroute.policy.validate_measure import measure_problems
from modelroute.policy.validate_names import api_problems, name_problems

#: The only variable a CEL `when` expression may read.
CEL_ROOT = "request"


def validate_spec(spec: Any, root: str = "spec") -> list[Problem]:
    """All problems of ``spec``; an empty list means it is valid."""
    problems = list(_schema_problems(spec, root))
    try:
        problems += _semantic_problems(spec, root)
    except (KeyError, TypeError, AttributeError, IndexError, ValueError):
        if not problems:  # the semantic checks only trip on shapes the schema already rejected
            raise
    return problems


@lru_cache(maxsize=4)
def _validator(schema_id: int) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(spec_schema())


def _schema_problems(spec: Any, root: str) -> Iterator[Problem]:
    validator = _validator(id(spec_schema()))
    errors = sorted(validator.iter_errors(spec), key=lambda e: [str(p) for p in e.absolute_path])
    for err in errors:
        yield Problem(_path(root, err.absolute_path), _message(err))


def _message(err: jsonschema.ValidationError) -> str:
    message = str(err.message)
    if err.validator == "additionalProperties":
        return message.replace("Additional properties are not allowed", "unknown field")
    if err.validator == "required":
        return message.replace("is a required property", "is required")
    return message


def _path(root: str, parts: Any) -> str:
    out = root
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _duplicates(items: list[Mapping[str, Any]], root: str, what: str) -> Iterator[Problem]:
    counts = Counter(i["name"] for i in items)
    for i, item in enumerate(items):
        if counts[item["name"]] > 1:
            yield Problem(f"{root}[{i}].name", f"duplicate {what} name {item['name']!r}")


def _semantic_problems(spec: Mapping[str, Any], root: str) -> Iterator[Problem]:
    providers = {p["name"]: p for p in spec["providers"]}
    models = {m["name"] for m in spec["models"]}
    strategies = set(spec.get("strategies", {}))
    yield from _duplicates(spec["providers"], f"{root}.providers", "provider")
    yield from _duplicates(spec["models"], f"{root}.models", "model")
    yield from _duplicates(spec.get("routes", []), f"{root}.routes", "route")

    def known(name: str, path: str) -> Iterator[Problem]:
        if name not in models:
            yield Problem(path, f"unknown model {name!r}")

    for i, m in enumerate(spec["models"]):
        if m["provider"] not in providers:
            yield Problem(f"{root}.models[{i}].provider", f"unknown provider {m['provider']!r}")
        if "maxOutputTokens" in m and "contextWindow" in m and m["maxOutputTokens"] > m["contextWindow"]:
            yield Problem(f"{root}.models[{i}].maxOutputTokens", "is larger than contextWindow")
    for key in ("baseline", "default"):
        if key in spec:
            yield from known(spec[key], f"{root}.{key}")
    for i, route in enumerate(spec.get("routes", [])):
        yield from _route_problems(route, f"{root}.routes[{i}]", known, strategies)
    for name, chain in spec.get("fallbacks", {}).items():
        yield from known(name, f"{root}.fallbacks.{name}")
        for j, target in enumerate(chain):
            yield from known(target, f"{root}.fallbacks.{name}[{j}]")
    yield from _cycle_problems(spec.get("fallbacks", {}), models, f"{root}.fallbacks")
    for i, name in enumerate(spec.get("pinnedModels", [])):
        if name != "*":
            yield from known(name, f"{root}.pinnedModels[{i}]")
    yield from spend_problems(spec, root)
    yield from rate_limit_problems(spec, root)
    yield from measure_problems(spec, root)
    yield from name_problems(spec, root)
    yield from api_problems(spec, root)


def _route_problems(route: Mapping[str, Any], path: str, known: Any, strategies: set[str]) -> Iterator[Problem]:
    has_model, has_strategy = "model" in route, "strategy" in route
    if has_model == has_strategy:
        yield Problem(path, "a route needs exactly one of model or strategy")
    if has_model:
        yield from known(route["model"], f"{path}.model")
    if has_strategy and route["strategy"] not in strategies:
        yield Problem(f"{path}.strategy", f"unknown strategy {route['strategy']!r} (not in spec.strategies)")
    for j, target in enumerate(route.get("fallbacks", [])):
        yield from known(target, f"{path}.fallbacks[{j}]")
    match = route.get("match", {})
    for j, name in enumerate(match.get("model", [])):
        if name != "auto":
            yield from known(name, f"{path}.match.model[{j}]")
    for key in ("inputTokens", "tools"):
        rng = match.get(key, {})
        if "min" in rng and "max" in rng and rng["min"] > rng["max"]:
            yield Problem(f"{path}.match.{key}", "min is larger than max")
    if "when" in route:
        error = cel_error(route["when"])
        if error:
            yield Problem(f"{path}.when", error)


def cel_error(source: str) -> str | None:
    """Why a `when` expression cannot be used, or None when it compiles and reads only `request`."""
    import cel

    try:
        program = cel.compile(source)
    except ValueError as exc:
        return "CEL does not compile: " + " ".join(str(exc).split())
    others = sorted(set(program.variables()) - {CEL_ROOT} - _comprehension_vars(source))
    if others:
        return f"CEL reads unknown variables {others}; only {CEL_ROOT!r} is defined"
    return None


def _comprehension_vars(source: str) -> set[str]:
    import re

    return set(re.findall(r"\.(?:all|exists|exists_one|map|filter)\(\s*([A-Za-z_]\w*)\s*,", source))


def _cycle_problems(fallbacks: Mapping[str, list[str]], models: set[str], path: str) -> Iterator[Problem]:
    done: set[str] = set()

    def visit(node: str, stack: list[str]) -> Iterator[Problem]:
        stack.append(node)
        for nxt in fallbacks.get(node, []):
            if nxt in stack:
                cycle = stack[stack.index(nxt):] + [nxt]
                yield Problem(f"{path}.{node}", "fallback cycle: " + " -> ".join(cycle))
            elif nxt not in done:
                yield from visit(nxt, stack)
        stack.pop()
        done.add(node)

    for start in fallbacks:
        if start not in done:
            yield from visit(start, [])
