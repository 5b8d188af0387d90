"""Sidecar injection: the pod mutation, as a pure function of the pod and the injection settings.

Pods labelled ``modelroute.dev/inject: "true"`` get the modelroute sidecar as a *native sidecar*
(an init container with ``restartPolicy: Always``: it starts before the app containers and stops after
them). App containers get ``OPENAI_BASE_URL`` / ``ANTHROPIC_BASE_URL`` pointing at it (unless they set
their own). The sidecar alone mounts: its projected ServiceAccount token (audience ``modelroute``),
its labels (downward API), the bootstrap ConfigMap, and the Secrets the namespace's policies reference.
Idempotent (an already injected pod is left alone); the annotation ``modelroute.dev/inject: "false"``
opts a pod out.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from modelroute.policy.wire import BOOTSTRAP_CONFIGMAP, TOKEN_AUDIENCE

INJECT_LABEL = "modelroute.dev/inject"
INJECTED_ANNOTATION = "modelroute.dev/injected"
SIDECAR_NAME = "modelroute-sidecar"
TOKEN_DIR = "/var/run/secrets/modelroute"
PODINFO_DIR = "/etc/modelroute/podinfo"
BOOTSTRAP_DIR = "/etc/modelroute/bootstrap"
SECRETS_DIR = "/var/run/modelroute/secrets"


@dataclass(frozen=True)
class InjectConfig:
    """Injection settings (the chart's ``sidecar`` values)."""

    image: str = "ghcr.io/modelroute/modelroute:latest"
    image_pull_policy: str = "IfNotPresent"
    port: int = 4000
    operator_url: str = "http://modelroute-operator.modelroute.svc:8080"
    resources: Mapping[str, Any] = field(default_factory=lambda: {
        "requests": {"cpu": "50m", "memory": "96Mi"}, "limits": {"memory": "256Mi"}})
    no_policy: str = "refuse"  # "refuse" | "passthrough"
    passthrough: Mapping[str, str] = field(default_factory=dict)  # baseURL, model, type, secretName, secretKey
    extra_env: Mapping[str, str] = field(default_factory=dict)

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> InjectConfig:
        names = {"image": "image", "imagePullPolicy": "image_pull_policy", "port": "port", "operatorURL": "operator_url",
                 "resources": "resources", "noPolicy": "no_policy", "passthrough": "passthrough", "env": "extra_env"}
        return InjectConfig(**{names[k]: v for k, v in data.items() if k in names})


def wants_injection(pod: Mapping[str, Any]) -> bool:
    meta = pod.get("metadata") or {}
    if (meta.get("labels") or {}).get(INJECT_LABEL) != "true":
        return False
    return (meta.get("annotations") or {}).get(INJECT_LABEL) != "false"


def is_injected(pod: Mapping[str, Any]) -> bool:
    spec = pod.get("spec") or {}
    return any(c.get("name") == SIDECAR_NAME for c in spec.get("initContainers") or [])


def sidecar_container(cfg: InjectConfig) -> dict[str, Any]:
    def field_env(name: str, path: str) -> dict[str, Any]:
        return {"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}}

    env = [
        field_env("POD_NAME", "metadata.name"), field_env("POD_NAMESPACE", "metadata.namespace"),
        field_env("POD_UID", "metadata.uid"),
        {"name": "MODELROUTE_OPERATOR_URL", "value": cfg.operator_url},
        {"name": "MODELROUTE_NO_POLICY", "value": cfg.no_policy},
    ]
    for key, name in (("baseURL", "MODELROUTE_PASSTHROUGH_BASE_URL"), ("model", "MODELROUTE_PASSTHROUGH_MODEL"),
                      ("type", "MODELROUTE_PASSTHROUGH_TYPE")):
        if cfg.passthrough.get(key):
            env.append({"name": name, "value": str(cfg.passthrough[key])})
    if cfg.passthrough.get("secretName") and cfg.passthrough.get("secretKey"):
        env.append({"name": "MODELROUTE_PASSTHROUGH_API_KEY", "valueFrom": {"secretKeyRef": {
            "name": cfg.passthrough["secretName"], "key": cfg.passthrough["secretKey"], "optional": True}}})
    env += [{"name": k, "value": str(v)} for k, v in sorted(cfg.extra_env.items())]
    probe = {"httpGet": {"path": "/readyz", "port": cfg.port}, "periodSeconds": 1}
    return {
        "name": SIDECAR_NAME,
        "image": cfg.image,
        "imagePullPolicy": cfg.image_pull_policy,
        "restartPolicy": "Always",
        "args": ["sidecar", "--host", "127.0.0.1", "--port", str(cfg.port)],
        "env": env,
        "resources": copy.deepcopy(dict(cfg.resources)),
        "startupProbe": {**probe, "failureThreshold": 120},
        "readinessProbe": {**probe, "periodSeconds": 5},
        "securityContext": {"runAsNonRoot": True, "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": [
            {"name": "modelroute-token", "mountPath": TOKEN_DIR, "readOnly": True},
            {"name": "modelroute-podinfo", "mountPath": PODINFO_DIR, "readOnly": True},
            {"name": "modelroute-bootstrap", "mountPath": BOOTSTRAP_DIR, "readOnly": True},
        ],
    }


def sidecar_volumes(secrets: Iterable[str]) -> list[dict[str, Any]]:
    vols: list[dict[str, Any]] = [
        {"name": "modelroute-token", "projected": {"sources": [{"serviceAccountToken": {
            "audience": TOKEN_AUDIENCE, "expirationSeconds": 3600, "path": "token"}}]}},
        {"name": "modelroute-podinfo", "downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}},
        {"name": "modelroute-bootstrap", "configMap": {"name": BOOTSTRAP_CONFIGMAP, "optional": True}},
    ]
    for name in sorted(set(secrets)):
        vols.append({"name": secret_volume(name), "secret": {"secretName": name, "optional": True}})
    return vols


def secret_volume(name: str) -> str:
    return f"modelroute-secret-{name}"[:63].rstrip("-.")


def mutate(pod: Mapping[str, Any], cfg: InjectConfig, secrets: Iterable[str] = ()) -> dict[str, Any] | None:
    """The fields to set on ``pod`` (``metadata.annotations``, ``spec.*``), or None to leave it alone."""
    if not wants_injection(pod) or is_injected(pod):
        return None
    spec = pod.get("spec") or {}
    secrets = sorted(set(secrets))
    sidecar = sidecar_container(cfg)
    sidecar["volumeMounts"] += [{"name": secret_volume(s), "mountPath": f"{SECRETS_DIR}/{s}", "readOnly": True} for s in secrets]
    base = f"http://127.0.0.1:{cfg.port}"
    containers = []
    for container in spec.get("containers") or []:
        c = copy.deepcopy(dict(container))
        env = list(c.get("env") or [])
        have = {e.get("name") for e in env}
        env += [e for e in ({"name": "OPENAI_BASE_URL", "value": f"{base}/v1"},
                            {"name": "ANTHROPIC_BASE_URL", "value": base}) if e["name"] not in have]
        c["env"] = env
        containers.append(c)
    annotations = dict((pod.get("metadata") or {}).get("annotations") or {})
    annotations[INJECTED_ANNOTATION] = cfg.image
    return {
        "metadata": {"annotations": annotations},
        "spec": {
            "initContainers": [sidecar] + list(spec.get("initContainers") or []),
            "containers": containers,
            "volumes": list(spec.get("volumes") or []) + sidecar_volumes(secrets),
        },
    }
