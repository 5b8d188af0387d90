"""Run each Kubernetes example for real and print what kubectl and the sidecar answer (for the READMEs).

No cluster is needed: the Kubernetes API emulator (tests' harness) stands in for the API server,
the operator and one sidecar per example pod run as real processes, and fake OpenAI / Anthropic
servers stand in for the providers (the policies' baseURLs are pointed at them). kubectl comes from
scripts/install-helm.sh. The emulator has no server-side table printing, so the printer columns are
asked for with ``-o custom-columns`` (a real API server prints them for plain ``kubectl get rp``).

    .venv/bin/python scripts/capture-examples.py 02-fallback-chain > /tmp/out.md
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import tempfile
from typing import Any

import aiohttp
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from modelroute.testing.fake_anthropic import FakeAnthropic
from modelroute.testing.fake_openai import FakeOpenAI
from tests.operator.harness import Cluster, operator_process, sidecar_process, wait_for

KUBECTL = shutil.which("kubectl", path=os.path.join(ROOT, ".venv", "bin")) or "kubectl"
COLUMNS = ("NAME:.metadata.name,DEFAULT:.spec.default,MODELS:.status.models,SYNCED:.status.synced,"
           'ACCEPTED:.status.conditions[?(@.type=="Accepted")].status,VERSION:.status.policyVersion')
PODS = {"01-quickstart": [("web-7d9f", {"app": "web"})], "02-fallback-chain": [("support-bot-0", {"app": "support-bot"})],
        "03-premium-tier": [("api-premium-0", {"app": "api", "tier": "premium"}), ("api-free-0", {"app": "api", "tier": "free"})],
        "04-long-context": [("summarizer-0", {"app": "summarizer"})]}


def point_at_fakes(doc: dict[str, Any], openai: FakeOpenAI, anthropic: FakeAnthropic) -> dict[str, Any]:
    for p in doc["spec"]["providers"]:
        p["baseURL"] = openai.base_url if p["type"] == "openai" else anthropic.base_url
    return doc


async def sh(*args: str, show: str | None = None) -> str:
    proc = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate()
    text = out.decode().rstrip()
    print(f"$ {show or ' '.join(args)}\n{text}\n")
    return text


async def ask(session: aiohttp.ClientSession, port: int, pod: str, headers: dict[str, str], content: str) -> None:
    body = {"model": "auto", "messages": [{"role": "user", "content": content}]}
    async with session.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=body, headers=headers) as r:
        data = await r.json(content_type=None)
        shown = {k: v for k, v in r.headers.items() if k.lower().startswith("x-modelroute-") and k.lower() != "x-modelroute-request-id"}
    hdr = " ".join(f"-H '{k}: {v}'" for k, v in headers.items())
    prompt = content if len(content) < 40 else f"<{len(content)} characters>"
    print(f"$ kubectl exec {pod} -c app -- curl -si $OPENAI_BASE_URL/chat/completions {hdr} -d '{{\"model\": \"auto\", ... \"{prompt}\"}}'")
    print(f"HTTP {r.status}  model={data.get('model')}")
    for k, v in shown.items():
        print(f"{k}: {v}")
    print()


async def run(example: str) -> None:
    folder = os.path.join(ROOT, "examples", example)
    openai, anthropic = FakeOpenAI(record=False), FakeAnthropic()
    await openai.start()
    await anthropic.start()
    tmp = tempfile.mkdtemp(prefix="modelroute-example-")
    os.makedirs(os.path.join(tmp, "secrets", "llm-keys"))
    for key in ("openai", "anthropic"):
        with open(os.path.join(tmp, "secrets", "llm-keys", key), "w", encoding="utf-8") as fh:
            fh.write(f"sk-{key}-example")
    procs = []
    async with Cluster() as cluster, aiohttp.ClientSession() as session:
        operator = operator_process(cluster)
        operator.start()
        procs.append(operator)
        await operator.wait_ready()
        kubectl = [KUBECTL, f"--server={cluster.url}", "-n", "default"]
        files = sorted(f for f in os.listdir(folder) if f.endswith(".yaml"))
        for name in files:
            doc = point_at_fakes(yaml.safe_load(open(os.path.join(folder, name), encoding="utf-8")), openai, anthropic)
            path = os.path.join(tmp, name)
            with open(path, "w", encoding="utf-8") as fh:
                yaml.safe_dump(doc, fh)
            await sh(*kubectl, "apply", "--validate=false", "-f", path, show=f"kubectl apply -f {name}")
        sidecars = {}
        for pod_name, labels in PODS[example]:
            pod = await cluster.add_pod(pod_name, labels)
            sc = sidecar_process(operator.url, pod)
            sc.args += ["--secrets-dir", os.path.join(tmp, "secrets")]
            sc.args = [a if a != "warning" else "info" for a in sc.args]
            sc.start()
            procs.append(sc)
            sidecars[pod_name] = sc
        for sc in sidecars.values():
            await sc.wait_ready()
        names = [yaml.safe_load(open(os.path.join(folder, f), encoding="utf-8"))["metadata"]["name"] for f in files]
        for n in names:
            await wait_for(lambda n=n: _settled(cluster, n), 10, what="status settled")
        await sh(*kubectl, "get", "routingpolicies", "-o", f"custom-columns={COLUMNS}", show="kubectl get rp")
        for n in names:
            obj = await cluster.get(n) or {}
            print(f"$ kubectl get rp {n} -o jsonpath='{{.status.conditions}}' | jq -c '.[] | [.type, .status, .message]'")
            for c in obj["status"]["conditions"]:
                print(json.dumps([c["type"], c["status"], c["message"]]))
            print()
        await scenario(example, session, sidecars, openai)
        if example == "01-quickstart":
            await invalid_edit(cluster, kubectl, tmp, session, sidecars)
        for pod_name, sc in sidecars.items():
            lines = [ln for ln in sc.output().splitlines() if "modelroute.subscription" in ln or "modelroute:" in ln]
            print(f"$ kubectl logs {pod_name} -c modelroute-sidecar\n" + "\n".join(lines[:6]) + "\n")
        for proc in procs:
            proc.stop()
    await openai.close()
    await anthropic.close()


async def invalid_edit(cluster: Cluster, kubectl: list[str], tmp: str, session: aiohttp.ClientSession,
                       sidecars: dict[str, Any]) -> None:
    path = os.path.join(tmp, "policy.yaml")
    doc = yaml.safe_load(open(path, encoding="utf-8"))
    doc["spec"]["default"] = "gpt-4o-mni"
    doc["spec"]["routes"][0]["model"] = "gpt-5"
    with open(path, "w", encoding="utf-8") as fh:
        yaml.safe_dump(doc, fh)
    print("# an edit with two typos: spec.default: gpt-4o-mni, spec.routes[0].model: gpt-5\n")
    await sh(*kubectl, "apply", "--validate=false", "-f", path, show="kubectl apply -f policy.yaml")

    async def rejected() -> bool:
        c = await cluster.condition("quickstart", "Accepted")
        return bool(c and c["status"] == "False")

    await wait_for(rejected, 10, what="rejected")
    await sh(*kubectl, "get", "routingpolicies", "-o", f"custom-columns={COLUMNS}", show="kubectl get rp")
    cond = await cluster.condition("quickstart", "Accepted") or {}
    print(f"$ kubectl get rp quickstart -o jsonpath='{{.status.conditions[?(@.type==\"Accepted\")].message}}'\n{cond.get('message')}\n")
    events = [e for e in await cluster.events() if e.get("reason") in ("Accepted", "Rejected")]
    print("$ kubectl get events --field-selector involvedObject.name=quickstart -o custom-columns=TYPE:.type,REASON:.reason,MESSAGE:.message")
    print("TYPE      REASON     MESSAGE")
    for e in events:
        print(f"{e.get('type', ''):<9} {e.get('reason', ''):<10} {e.get('message', '')}")
    print()
    name, sc = next(iter(sidecars.items()))
    await ask(session, sc.port, name, {}, "hello")


async def _settled(cluster: Cluster, name: str) -> bool:
    st = ((await cluster.get(name)) or {}).get("status") or {}
    return bool(st.get("synced")) and st.get("syncedPods") == st.get("selectedPods")


async def scenario(example: str, session: aiohttp.ClientSession, sidecars: dict[str, Any], openai: FakeOpenAI) -> None:
    first = next(iter(sidecars))
    port = sidecars[first].port
    if example == "01-quickstart":
        await ask(session, port, first, {}, "hello")
        await ask(session, port, first, {"x-user-tier": "premium"}, "hello")
        await ask(session, port, first, {"x-modelroute-task": "code_generation"}, "write a parser")
    elif example == "02-fallback-chain":
        await ask(session, port, first, {}, "where is my order?")
        openai.fail("gpt-4o-mini", status=503)
        print("# the fake OpenAI now answers 503 for gpt-4o-mini\n")
        await ask(session, port, first, {}, "where is my order?")
    elif example == "03-premium-tier":
        for pod_name, sc in sidecars.items():
            await ask(session, sc.port, pod_name, {}, "hi there")
            await ask(session, sc.port, pod_name, {}, "summarise this contract clause and list its risks. " * 30)
    elif example == "04-long-context":
        await ask(session, port, first, {}, "a short question")
        await ask(session, port, first, {}, "lorem ipsum " * 40000)


if __name__ == "__main__":
    asyncio.run(run(sys.argv[1]))
