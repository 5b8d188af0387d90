"""Anthropic providers (``type: anthropic``): the Messages API upstream.

``baseURL`` is the API root without ``/v1`` (``https://api.anthropic.com``), as the Anthropic SDKs
take it. The provider sets ``x-api-key`` (from the key source, never the client's key) and
``anthropic-version`` (from the provider spec); ``headers`` of the spec (``anthropic-beta``) are
sent, joined with a client's own ``anthropic-beta`` on native pass-through.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp

from modelroute.policy import ModelSpec
from modelroute.providers.anthropic_errors import upstream_error
from modelroute.providers.base import ProviderError
from modelroute.providers.http import loads_object, network_errors
from modelroute.providers.provider import Provider

MESSAGES = "/v1/messages"
COUNT_TOKENS = "/v1/messages/count_tokens"
#: Parameters count_tokens refuses (they shape the answer, not the input).
_NOT_COUNTED = ("max_tokens", "stream", "temperature", "top_p", "top_k", "stop_sequences", "metadata", "service_tier")


class AnthropicProvider(Provider):
    def path(self, api: str) -> str:
        return MESSAGES

    def url(self, path: str) -> str:
        return self.spec.base_url.rstrip("/") + path

    def auth_headers(self) -> dict[str, str]:
        key = self.key()
        return {"anthropic-version": self.spec.anthropic_version, **({"x-api-key": key} if key else {})}

    def headers(self, extra: Mapping[str, str]) -> dict[str, str]:
        headers = super().headers(extra)
        beta = [v for v in (self.spec.headers.get("anthropic-beta"), extra.get("anthropic-beta")) if v]
        if len(beta) == 2:  # the policy's betas and the client's (native pass-through) together
            headers["anthropic-beta"] = ",".join(beta)
        return headers

    def error(self, model: str, status: int, headers: Mapping[str, str], raw: bytes) -> ProviderError:
        return upstream_error(self.name, model, status, headers, raw)

    async def count_tokens(self, body: Mapping[str, Any], model: ModelSpec, *, timeout: float,
                           headers: Mapping[str, str]) -> dict[str, Any]:
        payload = {k: v for k, v in body.items() if k not in _NOT_COUNTED}
        payload["model"] = model.upstream_model
        async with network_errors(self.name, model.name):
            resp = await self._post(COUNT_TOKENS, payload, model, aiohttp.ClientTimeout(total=timeout), headers)
            async with resp:
                raw = await resp.read()
        return loads_object(raw, self.name, model.name)
