"""OpenAI-compatible providers (``type: openai``): the request goes through with its model renamed.

Streams always ask for usage (``stream_options.include_usage``) so that every streamed answer is
costed exactly; the proxy hides that extra chunk from clients that did not ask for it.
"""

from __future__ import annotations

import asyncio
from modelroute import _json as json
from collections.abc import Mapping
from typing import Any, AsyncIterator

import aiohttp

from modelroute.policy import ModelSpec
from modelroute.providers.base import ChunkStream, Completion, ErrorKind, HttpResponse, Provider, ProviderError, Usage
from modelroute.providers.http import http_error, loads_object, network_errors, parse_error_body
from modelroute.providers.sse import SSEParser
from modelroute.providers.translate import answer_errors

#: A chunk carrying usage (OpenAI sends ``"usage": null`` in every other chunk of such a stream).
_USAGE, _USAGE_SPACED = b'"usage":{', b'"usage": {'


class OpenAIProvider(Provider):
    def _headers(self, extra: Mapping[str, str]) -> dict[str, str]:
        headers = {"Content-Type": "application/json", **self.spec.headers, **extra}
        key = self.keys.get(self.spec)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def _timeout(self, total: float | None, idle: float | None = None) -> aiohttp.ClientTimeout:
        return aiohttp.ClientTimeout(total=total, sock_read=idle)

    async def _post(self, path: str, payload: Mapping[str, Any], model: ModelSpec, timeout: aiohttp.ClientTimeout,
                    headers: Mapping[str, str]) -> HttpResponse:
        resp = await self.http.post(
            self.spec.base_url + path, data=json.dumps(payload), headers=self._headers(headers), timeout=timeout
        )
        if resp.status != 200:
            try:
                raw = await resp.read()
            finally:
                resp.release()
            raise http_error(self.name, model.name, resp.status, resp.headers, parse_error_body(raw))
        return resp

    async def _call(self, path: str, body: Mapping[str, Any], model: ModelSpec, timeout: float,
                    headers: Mapping[str, str]) -> Completion:
        payload = {**body, "model": model.upstream_model}
        async with network_errors(self.name, model.name):  # the session's total timeout bounds it all
            resp = await self._post(path, payload, model, self._timeout(timeout), headers)
            async with resp:
                raw = await resp.read()
        data = loads_object(raw, self.name, model.name)
        with answer_errors(f"{self.name}/{model.name}"):
            return Completion(body=data, usage=Usage.from_openai(data.get("usage")), raw=raw)

    async def chat(self, body: Mapping[str, Any], model: ModelSpec, *, timeout: float, headers: Mapping[str, str]) -> Completion:
        result = await self._call("/chat/completions", body, model, timeout, headers)
        if not isinstance(result.body.get("choices"), list):
            raise ProviderError(ErrorKind.PROTOCOL, f"{self.name}/{model.name}: the answer has no choices")
        return result

    async def embeddings(self, body: Mapping[str, Any], model: ModelSpec, *, timeout: float, headers: Mapping[str, str]) -> Completion:
        return await self._call("/embeddings", body, model, timeout, headers)

    async def chat_stream(
        self, body: Mapping[str, Any], model: ModelSpec, *, timeout: float, idle_timeout: float, headers: Mapping[str, str]
    ) -> ChunkStream:
        options = body.get("stream_options")
        options = {**options, "include_usage": True} if isinstance(options, Mapping) else {"include_usage": True}
        payload = {**body, "model": model.upstream_model, "stream": True, "stream_options": options}
        async with network_errors(self.name, model.name), asyncio.timeout(timeout):
            resp = await self._post("/chat/completions", payload, model, self._timeout(None, idle_timeout), headers)
        return OpenAIChunkStream(resp, self.name, model.name)


class OpenAIChunkStream(ChunkStream):
    """The upstream's chunks as they arrive, untouched; reads usage from the chunk carrying it."""

    def __init__(self, resp: HttpResponse, provider: str, model: str) -> None:
        self._resp = resp
        self._where = (provider, model)
        self.usage = None
        self._done = False  # [DONE] seen: the answer ended as it should

    async def __aiter__(self) -> AsyncIterator[bytes]:
        parser = SSEParser()
        async with network_errors(*self._where):
            try:
                async for raw in self._resp.content.iter_any():
                    events = parser.feed(raw)
                    for index, (_, data) in enumerate(events):
                        if data == b"[DONE]":
                            self._done = True
                            return
                        if _USAGE in data or _USAGE_SPACED in data or b'"error"' in data:
                            self._inspect(data)
                        self.ready = len(events) - index - 1
                        yield data
                    self.ready = 0
                for _, data in parser.close():
                    if data == b"[DONE]":
                        self._done = True
                        return
                raise ProviderError(ErrorKind.CONNECT, f"{self._where[0]}/{self._where[1]}: the stream ended before [DONE]")
            finally:
                self._resp.release()

    def _inspect(self, data: bytes) -> None:
        try:
            chunk = json.loads(data)
        except ValueError:
            raise ProviderError(ErrorKind.PROTOCOL, f"{self._where[0]}/{self._where[1]}: a chunk is not JSON") from None
        if isinstance(chunk, dict) and isinstance(chunk.get("error"), dict):
            raise ProviderError(ErrorKind.SERVER, f"{self._where[0]}/{self._where[1]}: error event in the stream")
        with answer_errors(f"{self._where[0]}/{self._where[1]}"):
            usage = Usage.from_openai(chunk.get("usage")) if isinstance(chunk, dict) else None
        if usage is not None:
            self.usage = usage

    async def aclose(self) -> None:
        if not self._done:  # left before its end: the connection cannot serve again
            self._resp.close()
