"""The Files and Batch APIs of an OpenAI-compatible provider, on the sidecar's pooled session.

The provider's key is injected here like for chat (the app's own credentials never go upstream);
error answers become a 502 ``batch_upstream_error`` naming the provider and status, never the body
(an auth error can echo parts of a key).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import aiohttp

from modelroute.providers import Provider
from modelroute.contract.errors import UpstreamFailure

TIMEOUT = aiohttp.ClientTimeout(total=60)


class BatchAPI:
    """One provider's files and batches."""

    def __init__(self, provider: Provider) -> None:
        self.provider = provider
        self.base = provider.spec.base_url

    def _headers(self) -> dict[str, str]:
        headers = dict(self.provider.spec.headers)
        key = self.provider.keys.get(self.provider.spec)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    async def _send(self, method: str, path: str, **kwargs: Any) -> bytes:
        where = f"{self.provider.name} {method} {path.split('/')[1]}"
        try:
            async with self.provider.session.request(method, self.base + path, headers=self._headers(), timeout=TIMEOUT,
                                                     **kwargs) as resp:
                raw = await resp.read()
                status = resp.status
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise UpstreamFailure(f"{where}: {type(exc).__name__}", code="batch_upstream_error") from None
        if status >= 400:
            raise UpstreamFailure(f"{where}: upstream answered {status}", code="batch_upstream_error")
        return raw

    async def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        raw = await self._send(method, path, **kwargs)
        try:
            data = json.loads(raw)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise UpstreamFailure(f"{self.provider.name}: the {path.split('/')[1]} answer is not a JSON object", code="batch_upstream_error")
        return data

    async def upload(self, filename: str, content: bytes) -> dict[str, Any]:
        form = aiohttp.FormData()
        form.add_field("purpose", "batch")
        form.add_field("file", content, filename=filename, content_type="application/jsonl")
        return await self._json("POST", "/files", data=form)

    async def create(self, file_id: str, endpoint: str, window: str, metadata: Mapping[str, str] | None) -> dict[str, Any]:
        body: dict[str, Any] = {"input_file_id": file_id, "endpoint": endpoint, "completion_window": window}
        if metadata:
            body["metadata"] = dict(metadata)
        return await self._json("POST", "/batches", json=body)

    async def get(self, batch_id: str) -> dict[str, Any]:
        return await self._json("GET", f"/batches/{batch_id}")

    async def content(self, file_id: str) -> bytes:
        return await self._send("GET", f"/files/{file_id}/content")
