"""The operator in-process against the API emulator over HTTP: subscription auth and isolation,
conflicting policies, restart from the bootstrap ConfigMap, and the injecting webhook."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import jsonpatch
import pytest

from modelroute.operator.inject import InjectConfig
from modelroute.operator.main import Options, run
from modelroute.policy.wire import Message
from tests.operator.harness import Cluster, Pod, free_port, policy_doc, wait_for

BASE = "http://127.0.0.1:1/v1"


class Operator:
    """The operator in a thread with its own event loop: kopf cancels every task of its loop when
    it stops, so it must not share the test's loop (where the emulator runs)."""

    def __init__(self, cluster: Cluster, **opts: Any) -> None:
        self.opts = Options(host="127.0.0.1", port=free_port(), kube_api=cluster.url, **opts)
        self.url = f"http://127.0.0.1:{self.opts.port}"
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None

    async def start(self) -> None:
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._main, name="operator", daemon=True)
        self.thread.start()

        async def ready() -> bool:
            try:
                async with aiohttp.ClientSession() as s, s.get(self.url + "/readyz") as r:
                    return r.status == 200
            except aiohttp.ClientError:
                return False

        await wait_for(ready, 15, 0.05, "operator ready")

    def _main(self) -> None:
        try:
            asyncio.run(run(self.opts, self.stop))  # type: ignore[arg-type]
        except asyncio.CancelledError:
            pass  # kopf ends its own task by cancellation once the stop flag is set

    async def close(self) -> None:
        self.stop.set()
        if self.thread is not None:
            await asyncio.to_thread(self.thread.join, 15)
            assert not self.thread.is_alive(), "the operator did not stop"


@pytest.fixture
async def operator(cluster: Cluster) -> AsyncIterator[Operator]:
    op = Operator(cluster, webhook_port=free_port(), webhook_insecure=True,
                  inject=InjectConfig(image="modelroute:test", operator_url="http://op:8080"))
    await op.start()
    yield op
    await op.close()


async def first_messages(op: Operator, token: str | None, n: int = 1) -> tuple[int, list[Message]]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as s, s.get(op.url + "/v1/subscribe", headers=headers) as r:
        if r.status != 200:
            return r.status, []
        out = []
        while len(out) < n:
            msg = Message.decode(await asyncio.wait_for(r.content.readline(), 5))
            if msg.type != "ping":
                out.append(msg)
        return r.status, out


async def test_a_sidecar_authenticates_and_receives_only_its_pods_policy(cluster: Cluster, operator: Operator) -> None:
    await cluster.apply(policy_doc("web", BASE, selector={"matchLabels": {"app": "web"}}))
    await cluster.apply(policy_doc("batch", BASE, default="gpt-4o", selector={"matchLabels": {"app": "batch"}}))
    web: Pod = await cluster.add_pod("web-1", {"app": "web"})
    batch: Pod = await cluster.add_pod("batch-1", {"app": "batch"})
    for name in ("web", "batch"):
        await wait_for(lambda name=name: _status_is(cluster, name, "observedGeneration", 1), 5, what=f"{name} handled")
    assert (await first_messages(operator, None))[0] == 401
    assert (await first_messages(operator, "forged"))[0] == 401
    status, (msg,) = await first_messages(operator, web.token)
    assert (status, msg.name, msg.compiled().default) == (200, "web", "gpt-4o-mini")
    status, (msg,) = await first_messages(operator, batch.token)
    assert (status, msg.name, msg.compiled().default) == (200, "batch", "gpt-4o")
    # the ack of a version shows in the status
    async with aiohttp.ClientSession() as s:
        r = await s.post(operator.url + "/v1/ack", data=json.dumps({"version": msg.version, "applied": True}),
                         headers={"Authorization": f"Bearer {batch.token}"})
        assert r.status == 204
    obj = await wait_for(lambda: _status_is(cluster, "batch", "synced", "1/1"), 5, what="batch synced 1/1")
    assert obj["status"]["policyVersion"] == msg.version
    assert [e["reason"] for e in await cluster.events()].count("Accepted") == 2


async def _status_is(cluster: Cluster, name: str, key: str, value: Any) -> dict[str, Any] | None:
    obj = await cluster.get(name) or {}
    return obj if (obj.get("status") or {}).get(key) == value else None


async def test_two_policies_select_one_pod_priority_decides_and_both_say_so(cluster: Cluster, operator: Operator) -> None:
    await cluster.apply(policy_doc("catch-all", BASE))
    await cluster.apply(policy_doc("premium", BASE, default="gpt-4o", priority=10, selector={"matchLabels": {"tier": "premium"}}))
    pod = await cluster.add_pod("vip", {"tier": "premium"})
    await cluster.add_pod("plain", {})
    for name in ("catch-all", "premium"):
        await wait_for(lambda name=name: _status_is(cluster, name, "observedGeneration", 1), 5, what=f"{name} handled")
    _, (msg,) = await first_messages(operator, pod.token)
    assert msg.name == "premium"
    loser = await wait_for(lambda: _status_is(cluster, "catch-all", "shadowedPods", ["vip (served by premium)"]), 5, what="shadowed")
    assert loser["status"]["selectedPods"] == 1  # plain
    synced = next(c for c in loser["status"]["conditions"] if c["type"] == "Synced")
    assert "vip (served by premium)" in synced["message"]
    await wait_for(lambda: _status_is(cluster, "premium", "selectedPods", 1), 5, what="premium serves vip")


async def test_restarted_operator_keeps_the_last_good_version_of_an_invalid_policy(cluster: Cluster, operator: Operator) -> None:
    await cluster.apply(policy_doc("p", BASE, default="gpt-4o"))
    pod = await cluster.add_pod("app", {})
    await wait_for(lambda: _status_is(cluster, "p", "observedGeneration", 1), 5, what="p handled")
    _, (good,) = await first_messages(operator, pod.token)
    await wait_for(cluster.bootstrap_data, 5, what="bootstrap ConfigMap")
    await operator.close()
    await cluster.apply(policy_doc("p", BASE, default="missing"))  # edited while the operator is down
    await operator.start()
    cond = await wait_for(lambda: _rejected(cluster), 10, what="Accepted=False")
    assert "spec.default" in cond["message"] and good.version in cond["message"]
    _, (msg,) = await first_messages(operator, pod.token)
    assert msg.version == good.version  # rejected generations never reach a sidecar
    assert any(e["reason"] == "Rejected" and "spec.default" in e["message"] for e in await cluster.events())


async def _rejected(cluster: Cluster) -> dict[str, Any] | None:
    cond = await cluster.condition("p", "Accepted")
    return cond if cond and cond["status"] == "False" else None


async def test_webhook_injects_a_native_sidecar(cluster: Cluster, operator: Operator) -> None:
    await cluster.apply(policy_doc("p", BASE, providers=[{"name": "openai", "type": "openai", "baseURL": BASE,
                                                          "apiKey": {"secretKeyRef": {"name": "llm-keys", "key": "openai"}}}]))
    await wait_for(cluster.bootstrap_data, 5, what="policy accepted")
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "app", "namespace": "default", "labels": {"modelroute.dev/inject": "true"}},
           "spec": {"containers": [{"name": "app", "image": "app", "env": [{"name": "ANTHROPIC_BASE_URL", "value": "mine"}]}]}}
    review = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "r1", "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"}, "namespace": "default",
        "operation": "CREATE", "object": pod, "userInfo": {"username": "test"}, "dryRun": False}}
    url = f"http://127.0.0.1:{operator.opts.webhook_port}/inject"
    async with aiohttp.ClientSession() as s, s.post(url, json=review) as r:
        answer = await r.json()
    resp = answer["response"]
    assert resp["allowed"] is True and resp["uid"] == "r1"
    mutated = jsonpatch.apply_patch(pod, json.loads(base64.b64decode(resp["patch"])))
    sidecar = mutated["spec"]["initContainers"][0]
    assert (sidecar["name"], sidecar["restartPolicy"], sidecar["image"]) == ("modelroute-sidecar", "Always", "modelroute:test")
    env = {e["name"]: e.get("value") for e in mutated["spec"]["containers"][0]["env"]}
    assert env == {"OPENAI_BASE_URL": "http://127.0.0.1:4000/v1", "ANTHROPIC_BASE_URL": "mine"}
    volumes = {v["name"]: v for v in mutated["spec"]["volumes"]}
    assert volumes["modelroute-secret-llm-keys"]["secret"]["secretName"] == "llm-keys"
    assert volumes["modelroute-token"]["projected"]["sources"][0]["serviceAccountToken"]["audience"] == "modelroute"
    assert not any(m["name"].startswith("modelroute-secret") for m in
                   mutated["spec"]["containers"][0].get("volumeMounts", [])), "keys are mounted into the sidecar alone"


async def _preview_of(cluster: Cluster, version_not: str | None = None) -> dict[str, Any] | None:
    status = ((await cluster.get("p")) or {}).get("status") or {}
    if "preview" not in status or status.get("policyVersion") == version_not:
        return None
    return dict(status)


async def test_accepted_changes_write_an_impact_preview(cluster: Cluster, operator: Operator) -> None:
    lines = [{"request": {"model": "auto", "messages": [{"role": "user", "content": f"question number {i}"}]}} for i in range(8)]
    lines += [{"request": {"model": "auto", "messages": [{"role": "user", "content": "hi"}]}, "headers": {"x-user-tier": "premium"}}] * 2
    status, body = await cluster.call("POST", "/api/v1/namespaces/default/configmaps", {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "sample", "namespace": "default"},
        "data": {"workload.jsonl": "\n".join(json.dumps(line) for line in lines)}})
    assert status < 300, body
    preview_spec = {"configMap": {"name": "sample"}, "maxCostIncreasePercent": 10}
    await cluster.apply(policy_doc("p", BASE, preview=preview_spec))
    first = await wait_for(lambda: _preview_of(cluster), 10, what="status.preview")
    p1 = first["preview"]
    assert p1["requests"] == 10 and p1.get("previous") is None  # (a merge patch drops nulls)
    assert {(r["route"], r["model"], r["requests"]) for r in p1["routeMix"]} == {("default", "gpt-4o-mini", 8), ("premium", "gpt-4o", 2)}
    assert float(p1["costPer1000"]) < float(p1["baselineCostPer1000"])

    await cluster.apply(policy_doc("p", BASE, default="gpt-4o", preview=preview_spec))  # everything on the big model
    second = await wait_for(lambda: _preview_of(cluster, version_not=first["policyVersion"]), 10, what="a new preview")
    p2 = second["preview"]
    assert p2["previous"]["policyVersion"] == first["policyVersion"]
    assert p2["costChangePercent"] > 10 and p2["costIncreaseExceeded"] is True
    events = await cluster.events()
    assert any(e["reason"] == "CostIncrease" for e in events)
