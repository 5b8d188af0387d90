"""Against a real cluster (kind or k3d on a laptop): runs only when KUBECONFIG is set.

    kind create cluster && export KUBECONFIG=~/.kube/config
    .venv/bin/python -m pytest tests/operator/test_real_cluster.py -m cluster -v

What a real API server checks that the emulator cannot: the CRD is accepted (structural schema, CEL
cost), its CEL rules reject a bad policy at `kubectl apply`, printer columns, TokenReview of a real
pod-bound token. The operator and a sidecar run on this machine (kubeconfig credentials); a `pause`
pod stands in for an injected app pod. Everything is created in a throw-away namespace.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from typing import Any

import aiohttp
import pytest

from modelroute.operator.crd import crd_yaml
from modelroute.testing.fake_openai import FakeOpenAI
from tests.operator.harness import (
    Pod,
    Process,
    _env,
    free_port,
    policy_doc,
    served_by_sidecar,
    sidecar_process,
    wait_for,
)

KUBECTL = shutil.which("kubectl", path=os.path.dirname(sys.executable)) or shutil.which("kubectl")
pytestmark = [
    pytest.mark.cluster,
    pytest.mark.skipif(not os.environ.get("KUBECONFIG") or KUBECTL is None, reason="needs KUBECONFIG and kubectl"),
]


def kubectl(*args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    assert KUBECTL is not None
    done = subprocess.run([KUBECTL, *args], input=stdin, capture_output=True, text=True, timeout=120)
    if check and done.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)}: {done.stderr}")
    return done


@pytest.fixture(scope="module")
def namespace() -> Any:
    kubectl("apply", "-f", "-", stdin=crd_yaml())
    kubectl("wait", "--for=condition=Established", "crd/routingpolicies.modelroute.dev", "--timeout=60s")
    ns = "modelroute-test-" + uuid.uuid4().hex[:6]
    kubectl("create", "namespace", ns)
    yield ns
    kubectl("delete", "namespace", ns, "--wait=false", check=False)


def test_cel_rules_reject_a_bad_policy_at_apply(namespace: str) -> None:
    doc = policy_doc("bad", "http://127.0.0.1:1/v1", default="missing")
    done = kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(doc), check=False)
    assert done.returncode != 0 and "spec.default must name a model" in done.stderr


async def test_operator_and_sidecar_on_a_real_api_server(namespace: str, fake: FakeOpenAI) -> None:
    port = free_port()
    operator = Process(["operator", "--host", "127.0.0.1", "--port", str(port), "--namespace", namespace],
                       {**_env(), "KUBECONFIG": os.environ["KUBECONFIG"]}, port)
    operator.start()
    sidecar: Process | None = None
    try:
        await operator.wait_ready(timeout=60)
        kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(policy_doc("chat", fake.base_url)))
        pod_doc = {"apiVersion": "v1", "kind": "Pod", "metadata": {
            "name": "app", "labels": {"modelroute.dev/inject": "true"}, "annotations": {"modelroute.dev/injected": "manual"}},
            "spec": {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.9"}]}}
        kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(pod_doc))
        uid = kubectl("get", "pod", "app", "-n", namespace, "-o", "jsonpath={.metadata.uid}").stdout
        token = kubectl("create", "token", "default", "-n", namespace, "--audience", "modelroute",
                        "--bound-object-kind", "Pod", "--bound-object-name", "app").stdout.strip()
        sidecar = sidecar_process(operator.url, Pod(namespace, "app", uid, token, pod_doc["metadata"]["labels"]))
        sidecar.start()
        await sidecar.wait_ready(timeout=30)
        async with aiohttp.ClientSession() as session:
            assert await served_by_sidecar(session, sidecar) == "gpt-4o-mini"

        def synced() -> bool:
            out = kubectl("get", "rp", "chat", "-n", namespace, "-o", "jsonpath={.status.synced}").stdout
            return out == "1/1"

        await wait_for(synced, 30, 0.5, "status synced 1/1")
        table = kubectl("get", "rp", "-n", namespace).stdout
        assert table.split()[:6] == ["NAME", "DEFAULT", "MODELS", "SYNCED", "ACCEPTED", "AGE"]
        kubectl("delete", "rp", "chat", "-n", namespace, "--timeout=30s")
    finally:
        for proc in (operator, sidecar):
            if proc is not None:
                proc.stop()
