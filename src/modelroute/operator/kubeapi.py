"""A small async Kubernetes API client for what kopf does not do for us.

TokenReview (sidecar authentication), the bootstrap ConfigMap, and RoutingPolicy status patches.
It uses the same credentials kopf logged in with (:meth:`KubeAPI.configure` is called from the
operator's login handler with kopf's ``ConnectionInfo``), so it works in a pod, with a kubeconfig,
and against the API emulator of the tests alike.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import ssl
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

log = logging.getLogger("modelroute.operator")


class KubeError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


@dataclass(frozen=True)
class Credentials:
    server: str
    token: str | None = None
    ssl: ssl.SSLContext | bool = True


def credentials_from(info: Any) -> Credentials:
    """Build :class:`Credentials` from a ``kopf.ConnectionInfo``."""
    server = str(info.server).rstrip("/")
    if not server.startswith("https"):
        return Credentials(server=server, token=info.token)
    if info.insecure:
        return Credentials(server=server, token=info.token, ssl=False)
    ctx = ssl.create_default_context()
    if info.ca_path:
        ctx.load_verify_locations(cafile=info.ca_path)
    elif info.ca_data:
        data = info.ca_data if isinstance(info.ca_data, bytes) else info.ca_data.encode()
        ctx.load_verify_locations(cadata=_pem(data).decode())
    cert, key = _path_or_file(info.certificate_path, info.certificate_data), _path_or_file(info.private_key_path, info.private_key_data)
    if cert:
        ctx.load_cert_chain(certfile=cert, keyfile=key)
    return Credentials(server=server, token=info.token, ssl=ctx)


def _pem(data: bytes) -> bytes:
    return data if data.lstrip().startswith(b"-----") else base64.b64decode(data)


def _path_or_file(path: Any, data: str | bytes | None) -> str | None:
    if path:
        return str(path)
    if not data:
        return None
    raw = _pem(data if isinstance(data, bytes) else data.encode())
    fh = tempfile.NamedTemporaryFile(prefix="modelroute-", suffix=".pem", delete=False)  # noqa: SIM115
    with fh:
        fh.write(raw)
    return fh.name


class KubeAPI:
    """JSON over HTTP to the API server, with the operator's credentials."""

    def __init__(self) -> None:
        self._creds: Credentials | None = None
        self._session: aiohttp.ClientSession | None = None

    def configure(self, creds: Credentials) -> None:
        self._creds = creds

    @property
    def configured(self) -> bool:
        return self._creds is not None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def request(self, method: str, path: str, body: Any = None, content_type: str = "application/json") -> Any:
        if self._creds is None:
            raise KubeError(0, "not logged in yet")
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type
        if self._creds.token:
            headers["Authorization"] = f"Bearer {self._creds.token}"
        try:
            async with self._session.request(method, self._creds.server + path, json=body, headers=headers,
                                             ssl=self._creds.ssl) as resp:
                data = await resp.json(content_type=None) if resp.content_length != 0 else None
                if resp.status >= 400:
                    message = data.get("message", "") if isinstance(data, dict) else ""
                    raise KubeError(resp.status, str(message)[:300])
                return data
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
            raise KubeError(0, f"{method} {path}: {exc.__class__.__name__} {exc}") from None

    # --- the calls the operator makes --------------------------------------------------------

    async def token_review(self, token: str, audiences: list[str]) -> Mapping[str, Any]:
        review = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                  "spec": {"token": token, "audiences": audiences}}
        data = await self.request("POST", "/apis/authentication.k8s.io/v1/tokenreviews", review)
        return dict((data or {}).get("status") or {})

    async def patch_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        path = f"/apis/modelroute.dev/v1alpha1/namespaces/{namespace}/routingpolicies/{name}/status"
        await self.request("PATCH", path, {"status": status}, "application/merge-patch+json")

    async def get_configmap(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        try:
            return dict(await self.request("GET", f"/api/v1/namespaces/{namespace}/configmaps/{name}"))
        except KubeError as exc:
            if exc.status == 404:
                return None
            raise

    async def patch_configmap(self, namespace: str, name: str, data: Mapping[str, str | None],
                              labels: Mapping[str, str]) -> None:
        """Merge ``data`` into the ConfigMap (None removes a key), creating it when absent."""
        path = f"/api/v1/namespaces/{namespace}/configmaps/{name}"
        try:
            await self.request("PATCH", path, {"data": dict(data)}, "application/merge-patch+json")
            return
        except KubeError as exc:
            if exc.status != 404:
                raise
        body = {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
                "data": {k: v for k, v in data.items() if v is not None}}
        try:
            await self.request("POST", f"/api/v1/namespaces/{namespace}/configmaps", body)
        except KubeError as exc:
            if exc.status != 409:
                raise
            await self.request("PATCH", path, {"data": dict(data)}, "application/merge-patch+json")  # created meanwhile
