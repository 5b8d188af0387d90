"""kopf handlers: RoutingPolicy lifecycle, injected pods, and the injecting admission webhook.

Handlers are registered on an explicit registry (:func:`register`) around one :class:`Context`,
so the operator has no module-level state. Validation and compilation are the sidecar's own
(:func:`modelroute.policy.compile_policy`); a rejected generation never reaches a sidecar, whose pods
keep the last accepted version (kept in memory and in the bootstrap ConfigMap, so a restarted
operator still has it).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import kopf

from modelroute.operator import crd, preview
from modelroute.operator.inject import INJECT_LABEL, INJECTED_ANNOTATION, InjectConfig, mutate
from modelroute.operator.kubeapi import KubeAPI, KubeError
from modelroute.operator.state import ControlState, PodRecord, PolicyRecord
from modelroute.operator.status import StatusWriter
from modelroute.policy import API_VERSION, KIND, CompiledPolicy, PolicyError, compile_policy
from modelroute.policy.wire import BOOTSTRAP_CONFIGMAP, Bundle, Candidate, bundle_key

log = logging.getLogger("modelroute.operator")
LABELS = {"app.kubernetes.io/managed-by": "modelroute-operator"}


@dataclass
class Context:
    state: ControlState
    writer: StatusWriter
    api: KubeAPI
    inject: InjectConfig


def candidate_of(name: str, meta: Mapping[str, Any], spec: Mapping[str, Any]) -> Candidate:
    return Candidate(name=name, priority=int(spec.get("priority") or 0),
                     created=str(meta.get("creationTimestamp") or ""), selector=dict(spec.get("selector") or {}))


def compile_body(name: str, spec: Mapping[str, Any]) -> CompiledPolicy:
    """The sidecar's validator and compiler, on the resource's spec. Raises PolicyError."""
    return compile_policy({"apiVersion": API_VERSION, "kind": KIND, "metadata": {"name": name}, "spec": _plain(spec)})


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


async def reconcile(ctx: Context, body: Any, name: str, namespace: str) -> PolicyRecord:
    meta, spec = body.get("metadata", {}), body.get("spec", {})
    key = (namespace, name)
    ctx.writer.seed(key, body.get("status"))
    previous = ctx.state.policies.get(key)
    rec = PolicyRecord(namespace=namespace, name=name, candidate=candidate_of(name, meta, spec),
                       generation=int(meta.get("generation") or 0))
    try:
        rec.compiled = compile_body(name, spec)
    except PolicyError as exc:
        rec.problems = tuple(str(p) for p in exc.problems)
        rec.compiled = previous.compiled if previous else await _last_good(ctx, namespace, name)
        ctx.state.upsert_policy(rec)
        kopf.warn(body, reason="Rejected", message=_clip("; ".join(rec.problems)))
        return rec
    changed = previous is None or previous.compiled is None or previous.compiled.version != rec.compiled.version
    if changed:
        rec.preview = await preview.compute(ctx.api, namespace, rec.compiled, previous.compiled if previous else None)
        preview.announce(body, rec.preview)
    elif previous is not None:
        rec.preview = previous.preview
    ctx.state.upsert_policy(rec)
    await _store_bundle(ctx, rec)
    if changed:
        kopf.info(body, reason="Accepted", message=f"version {rec.compiled.version}: {len(rec.compiled.models)} models, "
                  f"default {rec.compiled.default}")
    return rec


def _clip(text: str, limit: int = 1000) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


async def _store_bundle(ctx: Context, rec: PolicyRecord) -> None:
    assert rec.compiled is not None
    text = Bundle(rec.candidate, rec.compiled.to_dict()).encode()
    try:
        await ctx.api.patch_configmap(rec.namespace, BOOTSTRAP_CONFIGMAP, {bundle_key(rec.name): text}, LABELS)
    except (KubeError, OSError) as exc:
        log.warning("bootstrap ConfigMap of %s not updated: %s", rec.namespace, exc)


async def _last_good(ctx: Context, namespace: str, name: str) -> CompiledPolicy | None:
    """The last accepted version, from the bootstrap ConfigMap (after an operator restart)."""
    try:
        cm = await ctx.api.get_configmap(namespace, BOOTSTRAP_CONFIGMAP)
        text = ((cm or {}).get("data") or {}).get(bundle_key(name))
        return CompiledPolicy.from_dict(Bundle.decode(text).policy) if text else None
    except (KubeError, OSError, ValueError, KeyError, PolicyError) as exc:
        log.warning("no last good version of %s/%s: %s", namespace, name, exc)
        return None


async def forget(ctx: Context, name: str, namespace: str) -> None:
    key = (namespace, name)
    ctx.state.remove_policy(key)
    ctx.writer.forget(key)
    try:
        await ctx.api.patch_configmap(namespace, BOOTSTRAP_CONFIGMAP, {bundle_key(name): None}, LABELS)
    except (KubeError, OSError) as exc:
        log.warning("bootstrap ConfigMap of %s not cleaned: %s", namespace, exc)


def track_pod(ctx: Context, event: Mapping[str, Any]) -> None:
    pod = event.get("object") or {}
    meta = pod.get("metadata") or {}
    key = (str(meta.get("namespace")), str(meta.get("name")))
    labels = dict(meta.get("labels") or {})
    injected = labels.get(INJECT_LABEL) == "true" and INJECTED_ANNOTATION in (meta.get("annotations") or {})
    finished = (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")
    if event.get("type") == "DELETED" or not injected or finished:
        ctx.state.remove_pod(key)
    else:
        ctx.state.upsert_pod(PodRecord(namespace=key[0], name=key[1], uid=str(meta.get("uid") or ""), labels=labels))


def secrets_for(ctx: Context, namespace: str) -> list[str]:
    """Secrets referenced by the namespace's policies: mounted into injected sidecars."""
    names: set[str] = set()
    for rec in ctx.state.policies.values():
        if rec.namespace == namespace and rec.compiled is not None:
            for provider in rec.compiled.providers.values():
                if provider.api_key is not None and provider.api_key.secret_name:
                    names.add(provider.api_key.secret_name)
    return sorted(names)


def register(registry: kopf.OperatorRegistry, ctx: Context, webhook: bool = False) -> None:
    res = (crd.GROUP, crd.VERSION, crd.PLURAL)

    @kopf.on.resume(*res, registry=registry)
    @kopf.on.create(*res, registry=registry)
    @kopf.on.update(*res, registry=registry)
    async def policy_changed(body: Any, name: str, namespace: str | None, **_: Any) -> None:
        await reconcile(ctx, body, name, namespace or "default")

    @kopf.on.delete(*res, registry=registry)
    async def policy_deleted(name: str, namespace: str | None, **_: Any) -> None:
        await forget(ctx, name, namespace or "default")

    @kopf.on.event("", "v1", "pods", registry=registry)
    def pod_event(event: Mapping[str, Any], **_: Any) -> None:
        track_pod(ctx, event)

    if not webhook:
        return

    @kopf.on.mutate("", "v1", "pods", operations={"CREATE"}, id="inject", registry=registry,
                    labels={INJECT_LABEL: "true"}, ignore_failures=True, side_effects=False)
    def inject(body: Any, patch: kopf.Patch, namespace: str | None, **_: Any) -> None:
        ns = namespace or body.get("metadata", {}).get("namespace") or "default"
        changes = mutate(_plain(body), ctx.inject, secrets_for(ctx, ns))
        if changes is None:
            return
        patch.metadata["annotations"] = changes["metadata"]["annotations"]
        for field, value in changes["spec"].items():
            patch.spec[field] = value
