"""Test harness for the control plane: the API emulator in the test's loop, and real processes.

:class:`Cluster` runs :class:`modelroute.operator.emulator.Emulator` on a real socket and speaks to it
over HTTP like kubectl would. :class:`OperatorProcess` and :class:`SidecarProcess` run
``python -m modelroute operator`` / ``sidecar`` as child processes on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import kmock

from modelroute.operator.emulator import Emulator
from modelroute.policy.wire import BOOTSTRAP_CONFIGMAP

RP = "/apis/modelroute.dev/v1alpha1/namespaces/{ns}/routingpolicies"
PROVIDER_KEY = "sk-provider-secret-0123456789"


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A free port on 127.0.0.1, never the same one twice in this process (many children start at once)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


async def wait_for(check: Any, timeout: float = 10.0, interval: float = 0.05, what: str = "condition") -> Any:
    """Poll ``check`` (sync or async) until it returns something truthy."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def policy_doc(name: str, base_url: str, default: str = "gpt-4o-mini", **spec: Any) -> dict[str, Any]:
    doc = {
        "apiVersion": "modelroute.dev/v1alpha1", "kind": "RoutingPolicy",
        "metadata": {"name": name},
        "spec": {
            "providers": [{"name": "openai", "type": "openai", "baseURL": base_url, "apiKey": {"env": "TEST_PROVIDER_KEY"}}],
            "models": [
                {"name": "gpt-4o-mini", "provider": "openai", "pricing": {"input": 0.15, "output": 0.60}},
                {"name": "gpt-4o", "provider": "openai", "pricing": {"input": 2.50, "output": 10.00}},
            ],
            "baseline": "gpt-4o",
            "default": default,
            "routes": [{"name": "premium", "match": {"headers": {"x-user-tier": "premium"}}, "model": "gpt-4o"}],
        },
    }
    doc["spec"].update(spec)
    return doc


@dataclass
class Pod:
    namespace: str
    name: str
    uid: str
    token: str
    labels: dict[str, str]


class Cluster:
    """The emulator on a real port, and kubectl-like calls to it."""

    def __init__(self) -> None:
        self.emulator = Emulator()
        self._server: kmock.Server | None = None
        self.session: aiohttp.ClientSession | None = None
        self.url = ""

    async def __aenter__(self) -> Cluster:
        await self.emulator.__aenter__()
        self._server = kmock.Server(self.emulator)
        await self._server.__aenter__()
        self.url = str(self._server.url).rstrip("/")
        self.session = aiohttp.ClientSession()
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None and self.session is not None
        await self.session.close()
        await self._server.__aexit__(*exc)
        await self.emulator.__aexit__(*exc)

    async def call(self, method: str, path: str, body: Any = None, ctype: str = "application/json") -> tuple[int, Any]:
        assert self.session is not None
        data = None if body is None else json.dumps(body)
        async with self.session.request(method, self.url + path, data=data, headers={"Content-Type": ctype}) as r:
            return r.status, await r.json(content_type=None)

    async def apply(self, doc: dict[str, Any], ns: str = "default") -> dict[str, Any]:
        """Create, or replace the spec of, a RoutingPolicy (like ``kubectl apply``)."""
        name = doc["metadata"]["name"]
        status, body = await self.call("POST", RP.format(ns=ns), {**doc, "metadata": {**doc["metadata"], "namespace": ns}})
        if status == 409:
            status, body = await self.call("PATCH", RP.format(ns=ns) + f"/{name}", [
                {"op": "replace", "path": "/spec", "value": doc["spec"]}], "application/json-patch+json")
        assert status < 300, body
        return dict(body)

    async def delete(self, name: str, ns: str = "default") -> None:
        status, body = await self.call("DELETE", RP.format(ns=ns) + f"/{name}")
        assert status < 300, body

    async def get(self, name: str, ns: str = "default") -> dict[str, Any] | None:
        status, body = await self.call("GET", RP.format(ns=ns) + f"/{name}")
        return dict(body) if status == 200 else None

    async def condition(self, name: str, ctype: str, ns: str = "default") -> dict[str, Any] | None:
        obj = await self.get(name, ns) or {}
        return next((c for c in (obj.get("status") or {}).get("conditions", []) if c["type"] == ctype), None)

    async def events(self, ns: str = "default") -> list[dict[str, Any]]:
        _, body = await self.call("GET", f"/api/v1/namespaces/{ns}/events")
        return list(body.get("items", []))

    async def bootstrap_data(self, ns: str = "default") -> dict[str, str]:
        status, body = await self.call("GET", f"/api/v1/namespaces/{ns}/configmaps/{BOOTSTRAP_CONFIGMAP}")
        return dict(body.get("data") or {}) if status == 200 else {}

    async def add_pod(self, name: str, labels: dict[str, str] | None = None, ns: str = "default") -> Pod:
        """An injected pod (as the webhook leaves it) and a projected token bound to it."""
        labels = {"modelroute.dev/inject": "true", **(labels or {})}
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": name, "namespace": ns, "labels": labels,
                            "annotations": {"modelroute.dev/injected": "test"}},
               "spec": {"containers": [{"name": "app", "image": "app"}]}}
        status, body = await self.call("POST", f"/api/v1/namespaces/{ns}/pods", pod)
        assert status < 300, body
        token = "tok-" + uuid.uuid4().hex
        self.emulator.add_pod_token(token, ns, name, body["metadata"]["uid"])
        return Pod(ns, name, body["metadata"]["uid"], token, labels)

    async def relabel_pod(self, pod: Pod, labels: dict[str, str]) -> None:
        pod.labels = {"modelroute.dev/inject": "true", **labels}
        status, body = await self.call("PATCH", f"/api/v1/namespaces/{pod.namespace}/pods/{pod.name}",
                                       {"metadata": {"labels": pod.labels}},
                                       "application/merge-patch+json")
        assert status < 300, body


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBECONFIG", "OTEL_"))}
    env.update(PYTHONUNBUFFERED="1", TEST_PROVIDER_KEY=PROVIDER_KEY, **extra)
    return env


@dataclass
class Process:
    args: list[str]
    env: dict[str, str]
    port: int
    log_path: str = ""
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        if not self.log_path:
            fd, self.log_path = tempfile.mkstemp(prefix="modelroute-", suffix=".log")
            os.close(fd)
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child owns it
        self.proc = subprocess.Popen([sys.executable, "-m", "modelroute", *self.args], env=self.env,
                                     stdout=log, stderr=subprocess.STDOUT)
        log.close()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def output(self) -> str:
        with open(self.log_path, encoding="utf-8", errors="replace") as fh:
            return fh.read()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def wait_ready(self, path: str = "/readyz", timeout: float = 30.0, status: int = 200) -> None:
        async def check() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.args[0]} exited {self.proc.returncode}:\n{self.output()[-3000:]}")
            try:
                async with aiohttp.ClientSession() as s, s.get(self.url + path, timeout=aiohttp.ClientTimeout(total=2)) as r:
                    return r.status == status
            except (TimeoutError, aiohttp.ClientError):
                return False

        await wait_for(check, timeout, 0.1, f"{self.args[0]} on {self.url}{path}")


def operator_process(cluster: Cluster, **opts: str) -> Process:
    port = free_port()
    args = ["operator", "--host", "127.0.0.1", "--port", str(port), "--kube-api", cluster.url, "--log-level", "WARNING"]
    for key, value in opts.items():
        args += [f"--{key.replace('_', '-')}", value]
    return Process(args, _env(), port)


@dataclass
class SidecarFiles:
    dir: str = field(default_factory=lambda: tempfile.mkdtemp(prefix="modelroute-pod-"))

    def write(self, pod: Pod, bootstrap: dict[str, str] | None = None) -> None:
        with open(os.path.join(self.dir, "token"), "w", encoding="utf-8") as fh:
            fh.write(pod.token)
        with open(os.path.join(self.dir, "labels"), "w", encoding="utf-8") as fh:
            fh.write("\n".join(f'{k}="{v}"' for k, v in sorted(pod.labels.items())))
        os.makedirs(os.path.join(self.dir, "bootstrap"), exist_ok=True)
        for key, text in (bootstrap or {}).items():
            with open(os.path.join(self.dir, "bootstrap", key), "w", encoding="utf-8") as fh:
                fh.write(text)


def sidecar_process(operator_url: str, pod: Pod, no_policy: list[str] | None = None,
                    bootstrap: dict[str, str] | None = None) -> Process:
    files = SidecarFiles()
    files.write(pod, bootstrap)
    port = free_port()
    args = ["sidecar", "--port", str(port), "--operator-url", operator_url,
            "--token-file", os.path.join(files.dir, "token"), "--labels-file", os.path.join(files.dir, "labels"),
            "--bootstrap-dir", os.path.join(files.dir, "bootstrap"), "--log-level", "warning", *(no_policy or [])]
    return Process(args, _env(POD_NAME=pod.name, POD_NAMESPACE=pod.namespace, POD_UID=pod.uid), port)


async def chat(session: aiohttp.ClientSession, sidecar: Process, headers: dict[str, str] | None = None,
               model: str = "auto") -> tuple[int, dict[str, Any], dict[str, str]]:
    body = {"model": model, "messages": [{"role": "user", "content": "hello"}]}
    async with session.post(sidecar.url + "/v1/chat/completions", json=body, headers=headers or {},
                            timeout=aiohttp.ClientTimeout(total=10)) as r:
        return r.status, await r.json(content_type=None), dict(r.headers)


async def served_by_sidecar(session: aiohttp.ClientSession, sidecar: Process, **headers: str) -> str | None:
    """The model that answered a chat request through ``sidecar`` (or "HTTP <status>: <code>")."""
    status, body, _ = await chat(session, sidecar, headers)
    return body.get("model") if status == 200 else f"HTTP {status}: {body.get('error', {}).get('code')}"
