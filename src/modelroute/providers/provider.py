"""The provider base class: one upstream endpoint, called in a wire format it serves natively.

A type says where each wire format lives (:meth:`Provider.path`), how it authenticates
(:meth:`Provider.auth_headers`) and how its errors read (:meth:`Provider.error`); the calls are
shared. A provider never translates: the request pipeline picks the translator for each (client
API, wire format) pair from :mod:`modelroute.providers.translators`. :meth:`Provider.chat` and
:meth:`Provider.chat_stream` are the one convenience, a chat-shaped call through that table for code
that only speaks chat (a strategy's classifier, the judge).
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import aiohttp

from modelroute import _json as json
from modelroute.policy import ModelSpec, ProviderSpec
from modelroute.providers.base import ChunkStream, Completion, ErrorKind, HttpClient, HttpResponse, KeySource, ProviderError
from modelroute.providers.formats import STREAMS, USAGE, EventStream, check_answer
from modelroute.providers.http import loads_object, network_errors
from modelroute.providers.translate import answer_errors

if TYPE_CHECKING:
    from modelroute.providers.transport import Transport


class Provider(abc.ABC):
    """One upstream endpoint. Instances are created per policy version and share the proxy's
    HTTP client. A type says where each wire format lives (:meth:`path`), how it authenticates
    (:meth:`auth_headers`) and how its errors read (:meth:`error`); the calls are shared."""

    def __init__(self, spec: ProviderSpec, session: aiohttp.ClientSession, keys: KeySource,
                 transport: Transport | None = None) -> None:
        self.spec = spec
        self.session = session  # aiohttp: pass-through and the batch API's file transfers
        self.keys = keys
        #: Provider calls: the sidecar's lean client when given one, else the aiohttp session.
        self.http: HttpClient = transport if transport is not None else session

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def apis(self) -> frozenset[str]:
        return self.spec.apis

    @abc.abstractmethod
    def path(self, api: str) -> str:
        """The path of a wire format's endpoint, after ``baseURL``."""

    @abc.abstractmethod
    def auth_headers(self) -> dict[str, str]:
        """Headers carrying the provider's key (and its version headers). ProviderError NO_KEY
        when a key is configured but cannot be read."""

    @abc.abstractmethod
    def error(self, model: str, status: int, headers: Mapping[str, str], raw: bytes) -> ProviderError:
        """The ProviderError for an error answer of this provider."""

    def redacted(self, exc: ProviderError) -> ProviderError:
        """``exc`` without this provider's key in what the client may see (an upstream's error
        message can echo the key it was sent)."""
        key = self.keys.get(self.spec) if self.spec.api_key is not None else None
        if key and len(key) >= 8 and exc.error is not None:
            message = str(exc.error.get("message") or "")
            if key in message:
                exc.error = {**exc.error, "message": message.replace(key, "[redacted]")}
                exc.message = exc.message.replace(key, "[redacted]")
        return exc

    def url(self, path: str) -> str:
        return self.spec.base_url + path

    def key(self) -> str | None:
        """The provider's key; ProviderError NO_KEY when one is configured and cannot be read."""
        if self.spec.api_key is None:
            return None
        key = self.keys.get(self.spec)
        if key is None:
            raise ProviderError(ErrorKind.NO_KEY, f"provider {self.name!r} has no key: {self.keys.describe(self.spec)}")
        return key

    def headers(self, extra: Mapping[str, str]) -> dict[str, str]:
        return {"Content-Type": "application/json", **self.spec.headers, **extra, **self.auth_headers()}

    def payload(self, api: str, body: Mapping[str, Any], model: ModelSpec, stream: bool) -> dict[str, Any]:
        """``body`` (already in ``api``'s shape) as sent: the upstream model id, the stream flag; a
        chat stream always asks for usage, so every streamed answer is costed exactly."""
        payload = {**body, "model": model.upstream_model}
        if stream:
            payload["stream"] = True
            if api == "chat":
                options = body.get("stream_options")
                payload["stream_options"] = {**options, "include_usage": True} if isinstance(options, Mapping) else {"include_usage": True}
        else:
            payload.pop("stream", None)
            payload.pop("stream_options", None)
        return payload

    async def _post(self, path: str, payload: Mapping[str, Any], model: ModelSpec, timeout: aiohttp.ClientTimeout,
                    headers: Mapping[str, str]) -> HttpResponse:
        resp = await self.http.post(self.url(path), data=json.dumps(payload), headers=self.headers(headers), timeout=timeout)
        if resp.status != 200:
            try:
                raw = await resp.read()
            finally:
                resp.release()
            exc = self.redacted(self.error(model.name, resp.status, resp.headers, raw))
            exc.headers = resp.headers
            raise exc
        return resp

    async def call(self, api: str, body: Mapping[str, Any], model: ModelSpec, *, timeout: float,
                   headers: Mapping[str, str]) -> Completion:
        """One whole answer in ``api``'s wire format (``raw``: the upstream's bytes)."""
        payload = self.payload(api, body, model, stream=False)
        async with network_errors(self.name, model.name), asyncio.timeout(timeout):
            resp = await self._post(self.path(api), payload, model, aiohttp.ClientTimeout(total=timeout), headers)
            async with resp:
                raw = await resp.read()
        data = loads_object(raw, self.name, model.name)
        where = f"{self.name}/{model.name}"
        check_answer(api, data, where)
        with answer_errors(where):
            return Completion(body=data, usage=USAGE[api](data), raw=raw, headers=resp.headers)

    async def stream(self, api: str, body: Mapping[str, Any], model: ModelSpec, *, timeout: float, idle_timeout: float,
                     headers: Mapping[str, str]) -> EventStream:
        """Open a streamed answer in ``api``'s wire format. Returns once the upstream accepted
        the request (status 200); ``timeout`` bounds that, ``idle_timeout`` each wait after it."""
        payload = self.payload(api, body, model, stream=True)
        async with network_errors(self.name, model.name), asyncio.timeout(timeout):
            resp = await self._post(self.path(api), payload, model, aiohttp.ClientTimeout(total=None, sock_read=idle_timeout), headers)
        return STREAMS[api](resp, self.name, model.name)

    async def embeddings(self, body: Mapping[str, Any], model: ModelSpec, *, timeout: float, headers: Mapping[str, str]) -> Completion:
        raise ProviderError(ErrorKind.BAD_REQUEST, f"provider {self.name!r} does not serve embeddings", status=400)

    async def count_tokens(self, body: Mapping[str, Any], model: ModelSpec, *, timeout: float,
                           headers: Mapping[str, str]) -> dict[str, Any]:
        """The input tokens of a Messages request, counted by the provider (those speaking Messages)."""
        raise ProviderError(ErrorKind.BAD_REQUEST, f"provider {self.name!r} does not count tokens", status=400)

    async def chat(self, body: Mapping[str, Any], model: ModelSpec, *, timeout: float, headers: Mapping[str, str]) -> Completion:
        """A chat completion (chat-shaped request and answer), translated when the provider speaks
        another wire format."""
        from modelroute.providers.translators import chat_call

        return await chat_call(self, body, model, timeout=timeout, headers=headers)

    async def chat_stream(self, body: Mapping[str, Any], model: ModelSpec, *, timeout: float, idle_timeout: float,
                          headers: Mapping[str, str]) -> ChunkStream:
        """A streamed chat completion: chat chunk payloads, translated when needed."""
        from modelroute.providers.translators import chat_stream

        return await chat_stream(self, body, model, timeout=timeout, idle_timeout=idle_timeout, headers=headers)
