"""OpenAI-compatible providers (``type: openai``): Chat Completions, and Responses where served.

``baseURL`` is the API root with ``/v1`` (``https://api.openai.com/v1``), as the OpenAI SDKs take
it. The key goes in ``Authorization: Bearer``; the spec's ``headers`` are sent too (Azure's
``api-version`` is a query parameter of ``baseURL``, its key header a ``headers`` entry).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp

from modelroute.policy import ModelSpec
from modelroute.providers.base import Completion, ProviderError, Usage
from modelroute.providers.http import http_error, loads_object, network_errors, parse_error_body
from modelroute.providers.provider import Provider

PATHS = {"chat": "/chat/completions", "responses": "/responses"}
EMBEDDINGS = "/embeddings"


class OpenAIProvider(Provider):
    def path(self, api: str) -> str:
        return PATHS[api]

    def auth_headers(self) -> dict[str, str]:
        key = self.key()
        return {"Authorization": f"Bearer {key}"} if key else {}

    def error(self, model: str, status: int, headers: Mapping[str, str], raw: bytes) -> ProviderError:
        return http_error(self.name, model, status, headers, parse_error_body(raw))

    async def embeddings(self, body: Mapping[str, Any], model: ModelSpec, *, timeout: float, headers: Mapping[str, str]) -> Completion:
        payload = {**body, "model": model.upstream_model}
        async with network_errors(self.name, model.name):  # the client's total timeout bounds it all
            resp = await self._post(EMBEDDINGS, payload, model, aiohttp.ClientTimeout(total=timeout), headers)
            async with resp:
                raw = await resp.read()
        data = loads_object(raw, self.name, model.name)
        usage = data.get("usage")
        return Completion(body=data, usage=Usage.from_openai(usage) if isinstance(usage, dict) else None, raw=raw,
                          headers=resp.headers)
