"""Anthropic providers (``type: anthropic``): the Messages API upstream.

OpenAI-shaped requests (``chat`` / ``chat_stream``) go through an :class:`OpenAIToAnthropic`
translator created per request; the answer comes back as an OpenAI completion or a stream of
OpenAI chunk payloads ending with a usage chunk. Requests that already are Anthropic's (the
sidecar's ``/v1/messages``) go through natively with :meth:`AnthropicProvider.messages`,
:meth:`AnthropicProvider.messages_stream` and :meth:`AnthropicProvider.count_tokens`.

``baseURL`` is the API root without ``/v1`` (``https://api.anthropic.com``), as the Anthropic SDKs
take it. The provider sets ``x-api-key`` (from the key source, never the client's key) and
``anthropic-version`` (from the provider spec); ``headers`` of the spec (``anthropic-beta``) are sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, AsyncIterator

import aiohttp

from modelroute import _json as json
from modelroute.policy import ModelSpec
from modelroute.providers.anthropic_errors import stream_error, upstream_error
from modelroute.providers.base import ChunkStream, Completion, ErrorKind, HttpResponse, Provider, ProviderError, Usage
from modelroute.providers.http import loads_object, network_errors
from modelroute.providers.openai_anthropic import OpenAIToAnthropic, openai_usage
from modelroute.providers.translate import answer_errors
from modelroute.providers.sse import SSEParser, encode

MESSAGES = "/v1/messages"
COUNT_TOKENS = "/v1/messages/count_tokens"


def usage_of(usage: Any) -> Usage | None:
    """Anthropic usage as :class:`Usage` (input tokens include cache reads and writes)."""
    return Usage.from_openai(openai_usage(usage)) if isinstance(usage, Mapping) else None


class AnthropicProvider(Provider):
    def _headers(self, extra: Mapping[str, str]) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "anthropic-version": self.spec.anthropic_version,
                   **self.spec.headers, **extra}
        beta = [v for v in (self.spec.headers.get("anthropic-beta"), extra.get("anthropic-beta")) if v]
        if len(beta) == 2:  # the policy's betas and the client's (native pass-through) together
            headers["anthropic-beta"] = ",".join(beta)
        key = self.keys.get(self.spec)
        if key:
            headers["x-api-key"] = key
        return headers

    def _where(self, model: ModelSpec) -> str:
        return f"{self.name}/{model.name}"

    async def _post(self, path: str, payload: Mapping[str, Any], model: ModelSpec, timeout: aiohttp.ClientTimeout,
                    headers: Mapping[str, str]) -> HttpResponse:
        resp = await self.http.post(self.spec.base_url.rstrip("/") + path, data=json.dumps(payload),
                                       headers=self._headers(headers), timeout=timeout)
        if resp.status != 200:
            try:
                raw = await resp.read()
            finally:
                resp.release()
            raise upstream_error(self.name, model.name, resp.status, resp.headers, raw)
        return resp

    async def _call(self, path: str, payload: Mapping[str, Any], model: ModelSpec, timeout: float,
                    headers: Mapping[str, str]) -> tuple[dict[str, Any], bytes]:
        async with network_errors(self.name, model.name), asyncio.timeout(timeout):
            resp = await self._post(path, payload, model, aiohttp.ClientTimeout(total=timeout), headers)
            async with resp:
                raw = await resp.read()
        return loads_object(raw, self.name, model.name), raw

    async def _open(self, payload: Mapping[str, Any], model: ModelSpec, timeout: float, idle_timeout: float,
                    headers: Mapping[str, str]) -> HttpResponse:
        async with network_errors(self.name, model.name), asyncio.timeout(timeout):
            return await self._post(MESSAGES, payload, model, aiohttp.ClientTimeout(total=None, sock_read=idle_timeout), headers)

    # -- OpenAI-shaped requests ----------------------------------------------------------------
    async def chat(self, body: Mapping[str, Any], model: ModelSpec, *, timeout: float, headers: Mapping[str, str]) -> Completion:
        translator = OpenAIToAnthropic(model)
        payload = translator.request(body)
        payload.pop("stream", None)
        data, _ = await self._call(MESSAGES, payload, model, timeout, headers)
        if data.get("type") != "message" or not isinstance(data.get("content"), list):
            raise ProviderError(ErrorKind.PROTOCOL, f"{self._where(model)}: the answer is not a message")
        with answer_errors(self._where(model)):
            result = translator.response(data)
        return Completion(body=result, usage=translator.usage, dropped=tuple(translator.dropped))

    async def chat_stream(
        self, body: Mapping[str, Any], model: ModelSpec, *, timeout: float, idle_timeout: float, headers: Mapping[str, str]
    ) -> ChunkStream:
        translator = OpenAIToAnthropic(model)
        payload = {**translator.request(body), "stream": True}
        resp = await self._open(payload, model, timeout, idle_timeout, headers)
        return TranslatedStream(resp, translator, self.name, model.name)

    # -- Anthropic-shaped requests (native pass-through) ---------------------------------------
    async def messages(self, body: Mapping[str, Any], model: ModelSpec, *, timeout: float, headers: Mapping[str, str]) -> Completion:
        """A Messages request as the client sent it (model renamed); the answer untouched in ``raw``."""
        payload = {**body, "model": model.upstream_model}
        payload.pop("stream", None)
        data, raw = await self._call(MESSAGES, payload, model, timeout, headers)
        if data.get("type") != "message":
            raise ProviderError(ErrorKind.PROTOCOL, f"{self._where(model)}: the answer is not a message")
        with answer_errors(self._where(model)):
            return Completion(body=data, usage=usage_of(data.get("usage")), raw=raw)

    async def messages_stream(self, body: Mapping[str, Any], model: ModelSpec, *, timeout: float, idle_timeout: float,
                              headers: Mapping[str, str]) -> ChunkStream:
        """A streamed Messages request; the stream yields the upstream's SSE events, re-framed whole."""
        payload = {**body, "model": model.upstream_model, "stream": True}
        resp = await self._open(payload, model, timeout, idle_timeout, headers)
        return NativeStream(resp, self.name, model.name)

    async def count_tokens(self, body: Mapping[str, Any], model: ModelSpec, *, timeout: float,
                           headers: Mapping[str, str]) -> dict[str, Any]:
        payload = {k: v for k, v in body.items() if k not in ("max_tokens", "stream", "temperature", "top_p", "top_k",
                                                                "stop_sequences", "metadata", "service_tier")}
        payload["model"] = model.upstream_model
        data, _ = await self._call(COUNT_TOKENS, payload, model, timeout, headers)
        return data


class _EventStream(ChunkStream):
    """Reads the upstream's SSE events until ``message_stop``; subclasses turn each into output."""

    def __init__(self, resp: HttpResponse, provider: str, model: str) -> None:
        self._resp = resp
        self._where = (provider, model)
        self._label = f"{provider}/{model}"
        self.usage = None
        self._done = False

    def _output(self, name: bytes | None, data: bytes) -> list[bytes]:
        raise NotImplementedError

    def _read(self, name: bytes | None, data: bytes) -> list[bytes]:
        with answer_errors(self._label):  # once per event: the label is built once per stream
            return self._output(name, data)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        parser = SSEParser()
        async with network_errors(*self._where):
            try:
                async for raw in self._resp.content.iter_any():
                    for name, data in parser.feed(raw):
                        for out in self._read(name, data):
                            yield out
                        if self._done:
                            return
                for name, data in parser.close():
                    for out in self._read(name, data):
                        yield out
                if not self._done:
                    raise ProviderError(ErrorKind.CONNECT, f"{self._where[0]}/{self._where[1]}: the stream ended before message_stop")
            finally:
                self._resp.release()

    def _json(self, data: bytes) -> dict[str, Any]:
        try:
            event = json.loads(data)
        except ValueError:
            event = None
        if not isinstance(event, dict):
            raise ProviderError(ErrorKind.PROTOCOL, f"{self._where[0]}/{self._where[1]}: an event is not a JSON object")
        return event

    async def aclose(self) -> None:
        if not self._done:  # left before its end: the connection cannot serve again
            self._resp.close()


class TranslatedStream(_EventStream):
    """Anthropic events in, OpenAI ``chat.completion.chunk`` payloads out (usage chunk last)."""

    def __init__(self, resp: HttpResponse, translator: OpenAIToAnthropic, provider: str, model: str) -> None:
        super().__init__(resp, provider, model)
        self._translator = translator
        self.dropped = tuple(translator.dropped)

    def _output(self, name: bytes | None, data: bytes) -> list[bytes]:
        t = self._translator
        count = len(t.dropped)
        events = t.event(name.decode() if name else None, self._json(data))
        if len(t.dropped) != count:
            self.dropped = tuple(t.dropped)
        if t.finished:
            self._done, self.usage = True, t.usage
        return [json.dumps(payload) for _, payload in events]


class NativeStream(_EventStream):
    """Anthropic events in and out (``event: ...`` / ``data: ...`` frames); reads usage on the way."""

    _LOOK = (b"message_start", b"message_delta", b"error")

    def __init__(self, resp: HttpResponse, provider: str, model: str) -> None:
        super().__init__(resp, provider, model)
        self._usage: dict[str, Any] = {}

    def _output(self, name: bytes | None, data: bytes) -> list[bytes]:
        if name in self._LOOK or (name is None and b'"type"' in data):
            event = self._json(data)
            kind = event.get("type")
            if kind == "error":
                raise stream_error(event.get("error"), *self._where)
            usage = (event.get("message") or {}).get("usage") if kind == "message_start" else event.get("usage")
            if isinstance(usage, Mapping):
                self._usage.update({k: v for k, v in usage.items() if v is not None})
                self.usage = usage_of(self._usage)
            if kind == "message_stop":
                self._done = True
        elif name == b"message_stop":
            self._done = True
        return [encode(data, name.decode() if name else None)]
