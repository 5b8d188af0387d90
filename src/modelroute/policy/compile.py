"""Compile a validated spec into a :class:`CompiledPolicy` (pure: no I/O).

The version is a content hash of the policy name and the normalised spec, so the same policy
compiles to the same version in the operator, in ``modelroute validate`` and in the sidecar.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any, Mapping

from modelroute.policy.errors import PolicyError
from modelroute.policy.model import (
    ApiKeyRef,
    CircuitBreaker,
    CompiledPolicy,
    IntRange,
    Limits,
    Match,
    ModelSpec,
    Pricing,
    ProviderSpec,
    ResponsesStore,
    Route,
    Telemetry,
    Timeouts,
)
from modelroute.policy.schema import API_VERSION, EXTENSIONS, KIND, SPEC
from modelroute.policy.validate import validate_spec
from modelroute.policy.validate_spend import route_extensions


def split_document(doc: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]]:
    """(name, spec) of a RoutingPolicy resource, or of a bare spec."""
    if "spec" in doc or "apiVersion" in doc or "kind" in doc:
        problems = []
        if doc.get("apiVersion") != API_VERSION:
            problems.append(("apiVersion", f"must be {API_VERSION!r}"))
        if doc.get("kind") != KIND:
            problems.append(("kind", f"must be {KIND!r}"))
        if not isinstance(doc.get("spec"), Mapping):
            problems.append(("spec", "is required and must be an object"))
        meta = doc.get("metadata") or {}
        if not isinstance(meta, Mapping):
            problems.append(("metadata", "must be an object"))
        elif not isinstance(meta.get("name", ""), str):
            problems.append(("metadata.name", "must be a string"))
        if problems:
            raise PolicyError(problems)
        return str(meta.get("name", "policy")), doc["spec"]
    return "policy", doc


def compile_policy(doc: Mapping[str, Any], base_dir: str | None = None) -> CompiledPolicy:
    """Validate and compile a RoutingPolicy document (or bare spec). Raises PolicyError."""
    name, spec = split_document(doc)
    problems = validate_spec(spec)
    if problems:
        raise PolicyError(problems)
    return compile_spec(name, spec, base_dir)


def policy_version(name: str, spec: Mapping[str, Any]) -> str:
    canonical = json.dumps({"name": name, "spec": spec}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def compile_spec(name: str, spec: Mapping[str, Any], base_dir: str | None = None) -> CompiledPolicy:
    """Compile a spec that :func:`validate_spec` accepted."""
    known = set(SPEC["properties"]) - set(EXTENSIONS)
    models = {m["name"]: _model(m) for m in spec["models"]}
    providers = {p["name"]: _provider(p, base_dir) for p in spec["providers"]}
    return CompiledPolicy(
        name=name,
        version=policy_version(name, spec),
        providers=providers,
        models=models,
        baseline=spec.get("baseline", spec["default"]),
        default=spec["default"],
        routes=tuple(_route(r) for r in spec.get("routes", [])),
        fallbacks={k: tuple(v) for k, v in spec.get("fallbacks", {}).items()},
        pinned_models=frozenset(spec.get("pinnedModels", [])),
        timeouts=_timeouts(spec.get("timeouts", {})),
        circuit_breaker=_breaker(spec.get("circuitBreaker", {})),
        telemetry=Telemetry(record_prompts=bool(spec.get("telemetry", {}).get("recordPrompts", False)),
                            max_recorded_chars=int(spec.get("telemetry", {}).get("maxRecordedChars", 4096))),
        strategies={k: _resolve_paths(dict(v), base_dir) for k, v in spec.get("strategies", {}).items()},
        extensions={**{k: v for k, v in spec.items() if k not in known}, **route_extensions(spec)},
        passthrough=_passthrough(spec.get("passthrough", {}), providers, models[spec["default"]].provider),
        responses_store=_responses_store(spec.get("responses", {}).get("store", {})),
        model_names=model_names(spec["models"]),
    )


def model_names(models: list[Mapping[str, Any]]) -> dict[str, str]:
    """Aliases and upstream ids -> registry name. An alias wins over an upstream id; an upstream id
    shared by two models resolves to neither (validation refuses that unless an alias says which)."""
    names: dict[str, str] = {}
    upstream: dict[str, list[str]] = {}
    for m in models:
        upstream.setdefault(m.get("upstreamModel", m["name"]), []).append(m["name"])
    for uid, owners in upstream.items():
        if len(owners) == 1 and uid != owners[0]:
            names[uid] = owners[0]
    for m in models:
        for alias in m.get("aliases", []):
            names[alias] = m["name"]
    registry = {m["name"] for m in models}
    return {k: v for k, v in names.items() if k not in registry}


def _passthrough(section: Mapping[str, Any], providers: Mapping[str, ProviderSpec], default_provider: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for family in ("openai", "anthropic"):
        named = section.get(family)
        if named is not None:
            out[family] = "" if named == "none" else named
            continue
        fits = [p for p in providers.values() if p.family == family]
        preferred = providers[default_provider]
        chosen = preferred if preferred.family == family else fits[0] if fits else None
        out[family] = chosen.name if chosen is not None else ""
    return out


def _responses_store(s: Mapping[str, Any]) -> ResponsesStore:
    d = ResponsesStore()
    return ResponsesStore(max_bytes=int(float(s.get("maxMB", d.max_bytes / 1048576)) * 1048576),
                          ttl_seconds=float(s.get("ttlSeconds", d.ttl_seconds)))


def _resolve(path: str, base_dir: str | None) -> str:
    return path if base_dir is None or os.path.isabs(path) else os.path.normpath(os.path.join(base_dir, path))


def _resolve_paths(block: dict[str, Any], base_dir: str | None) -> dict[str, Any]:
    """Fields named ``*file``/``*path``/``library`` in strategy blocks are paths relative to the policy."""
    for key, value in block.items():
        if isinstance(value, str) and (key.lower().endswith(("file", "path")) or key == "library"):
            block[key] = _resolve(value, base_dir)
    return block


def _provider(p: Mapping[str, Any], base_dir: str | None) -> ProviderSpec:
    key = p.get("apiKey")
    ref = None
    if key:
        secret = key.get("secretKeyRef") or {}
        ref = ApiKeyRef(
            env=key.get("env"),
            file=_resolve(key["file"], base_dir) if "file" in key else None,
            secret_name=secret.get("name"),
            secret_key=secret.get("key"),
        )
    return ProviderSpec(
        name=p["name"],
        type=p["type"],
        base_url=p["baseURL"].rstrip("/"),
        api_key=ref,
        headers=dict(p.get("headers", {})),
        anthropic_version=p.get("anthropicVersion", "2023-06-01"),
        apis=frozenset(p.get("apis", ())),
    )


def _model(m: Mapping[str, Any]) -> ModelSpec:
    pr = m["pricing"]
    caps = m.get("capabilities")
    limits = m.get("limits", {})
    return ModelSpec(
        name=m["name"],
        provider=m["provider"],
        upstream_model=m.get("upstreamModel", m["name"]),
        pricing=Pricing(
            input=float(pr["input"]),
            output=float(pr["output"]),
            cached_input=_opt_float(pr.get("cachedInput")),
            cache_write=_opt_float(pr.get("cacheWrite")),
            batch_discount=_opt_float(pr.get("batchDiscount")),
        ),
        context_window=m.get("contextWindow"),
        max_output_tokens=m.get("maxOutputTokens"),
        capabilities=frozenset(caps) if caps is not None else None,
        limits=Limits(rpm=limits.get("rpm"), tpm=limits.get("tpm")),
        timeout_seconds=_opt_float(m.get("timeoutSeconds")),
        aliases=tuple(m.get("aliases", ())),
    )


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _range(value: Mapping[str, Any] | None) -> IntRange | None:
    return None if value is None else IntRange(min=value.get("min"), max=value.get("max"))


def _strings(value: Any) -> tuple[str, ...] | None:
    return None if value is None else tuple(value)


def _match(m: Mapping[str, Any] | None) -> Match | None:
    if not m:
        return None
    headers = None
    if "headers" in m:
        headers = {k.lower(): (v,) if isinstance(v, str) else tuple(v) for k, v in m["headers"].items()}
    return Match(
        task=_strings(m.get("task")),
        headers=headers,
        model=_strings(m.get("model")),
        input_tokens=_range(m.get("inputTokens")),
        tools=_range(m.get("tools")),
        response_format=_strings(m.get("responseFormat")),
        stream=m.get("stream"),
    )


def _route(r: Mapping[str, Any]) -> Route:
    return Route(
        name=r["name"],
        model=r.get("model"),
        match=_match(r.get("match")),
        when=r.get("when"),
        fallbacks=_strings(r.get("fallbacks")),
        strategy=r.get("strategy"),
    )


def _timeouts(t: Mapping[str, Any]) -> Timeouts:
    d = Timeouts()
    return Timeouts(
        request_seconds=float(t.get("requestSeconds", d.request_seconds)),
        attempt_seconds=float(t.get("attemptSeconds", d.attempt_seconds)),
        connect_seconds=float(t.get("connectSeconds", d.connect_seconds)),
        stream_idle_seconds=float(t.get("streamIdleSeconds", d.stream_idle_seconds)),
    )


def _breaker(b: Mapping[str, Any]) -> CircuitBreaker:
    d = CircuitBreaker()
    return CircuitBreaker(
        failure_threshold=int(b.get("failureThreshold", d.failure_threshold)),
        cooldown_seconds=float(b.get("cooldownSeconds", d.cooldown_seconds)),
    )
