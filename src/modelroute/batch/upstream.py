"""The batch APIs of providers, on the sidecar's pooled session: OpenAI's Files + Batch API and
Anthropic's Message Batches.

The provider's key is injected here as for real-time calls (the app's own credentials never go
upstream). Error answers become a 502 ``batch_upstream_error`` naming the provider and status,
never the body (an auth error can echo parts of a key); a key that cannot be read is named by the
variable or file it is expected in. Results are read line by line as they stream in, so a batch's
output never has to fit in memory.

Each kind also says when one of its batches has ended and what usage a result line carries: the
rest of the batch feature is the same for both (:data:`KINDS`).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, ClassVar

import aiohttp

from modelroute.batch.records import ANTHROPIC, OPENAI, Part
from modelroute.contract.errors import UpstreamFailure
from modelroute.policy.model import MESSAGES
from modelroute.providers import Provider, ProviderError, Usage
from modelroute.providers.formats import anthropic_usage

TIMEOUT = aiohttp.ClientTimeout(total=60)
#: Results may be large: no total limit, but no read may stall for long.
STREAM_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=120)


class UpstreamBatches:
    """One provider's batch API."""

    kind: ClassVar[str] = ""
    #: Provider batch statuses after which nothing changes.
    ENDED: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, provider: Provider) -> None:
        self.provider = provider

    def url(self, path: str) -> str:
        raise NotImplementedError

    def _headers(self) -> dict[str, str]:
        try:
            return {**self.provider.spec.headers, **self.provider.auth_headers()}
        except ProviderError as exc:  # the key cannot be read: say where it is expected, never a key
            raise UpstreamFailure(exc.message, code="batch_upstream_error") from None

    def _where(self, method: str, path: str) -> str:
        return f"{self.provider.name} {method} {path.split('?')[0]}"

    async def _send(self, method: str, path: str, **kwargs: Any) -> bytes:
        where = self._where(method, path)
        try:
            async with self.provider.session.request(method, self.url(path), headers=self._headers(), timeout=TIMEOUT,
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
            raise UpstreamFailure(f"{self._where(method, path)}: the answer is not a JSON object", code="batch_upstream_error")
        return data

    async def _lines(self, path: str) -> AsyncIterator[bytes]:
        """The non-empty lines of a JSONL answer, as they arrive."""
        where = self._where("GET", path)
        try:
            async with self.provider.session.get(self.url(path), headers=self._headers(), timeout=STREAM_TIMEOUT) as resp:
                if resp.status >= 400:
                    raise UpstreamFailure(f"{where}: upstream answered {resp.status}", code="batch_upstream_error")
                rest = b""
                async for chunk in resp.content.iter_any():
                    *lines, rest = (rest + chunk).split(b"\n")
                    for line in lines:
                        if line.strip():
                            yield line
                if rest.strip():
                    yield rest
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise UpstreamFailure(f"{where}: {type(exc).__name__}", code="batch_upstream_error") from None

    @classmethod
    def ended(cls, upstream: Mapping[str, Any]) -> bool:
        raise NotImplementedError

    async def get(self, batch_id: str) -> dict[str, Any]:
        raise NotImplementedError

    async def cancel(self, batch_id: str) -> dict[str, Any]:
        raise NotImplementedError

    def results(self, part: Part) -> AsyncIterator[bytes]:
        """The result lines of an ended part."""
        raise NotImplementedError

    def usage(self, line: bytes) -> Usage | None:
        """The billed usage of one result line; None for a line without (an error, a cancel)."""
        raise NotImplementedError


class OpenAIBatches(UpstreamBatches):
    """Files and Batches of an OpenAI-compatible provider (``baseURL`` ends in ``/v1``)."""

    kind = OPENAI
    ENDED = frozenset({"completed", "failed", "expired", "cancelled"})

    def url(self, path: str) -> str:
        return self.provider.spec.base_url + path

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

    @classmethod
    def ended(cls, upstream: Mapping[str, Any]) -> bool:
        return str(upstream.get("status")) in cls.ENDED

    async def get(self, batch_id: str) -> dict[str, Any]:
        return await self._json("GET", f"/batches/{batch_id}")

    async def cancel(self, batch_id: str) -> dict[str, Any]:
        return await self._json("POST", f"/batches/{batch_id}/cancel")

    async def results(self, part: Part) -> AsyncIterator[bytes]:
        out_id = part.upstream.get("output_file_id")  # a failed or expired batch may have answered some lines
        if out_id:
            async for line in self._lines(f"/files/{out_id}/content"):
                yield line

    def usage(self, line: bytes) -> Usage | None:
        try:
            body = json.loads(line)["response"]["body"]
            return Usage.from_openai(body.get("usage")) if isinstance(body, dict) else None
        except (ValueError, KeyError, TypeError, AttributeError):
            return None


class MessageBatchesAPI(UpstreamBatches):
    """Anthropic's Message Batches, beside the provider's Messages endpoint (``/v1/messages/batches``)."""

    kind = ANTHROPIC
    ENDED = frozenset({"ended"})

    def url(self, path: str) -> str:
        return self.provider.url(self.provider.path(MESSAGES) + "/batches" + path)

    async def create(self, requests: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        return await self._json("POST", "", json={"requests": list(requests)})

    @classmethod
    def ended(cls, upstream: Mapping[str, Any]) -> bool:
        return str(upstream.get("processing_status")) in cls.ENDED

    async def get(self, batch_id: str) -> dict[str, Any]:
        return await self._json("GET", f"/{batch_id}")

    async def cancel(self, batch_id: str) -> dict[str, Any]:
        return await self._json("POST", f"/{batch_id}/cancel")

    async def delete(self, batch_id: str) -> dict[str, Any]:
        return await self._json("DELETE", f"/{batch_id}")

    async def results(self, part: Part) -> AsyncIterator[bytes]:
        # the results are read at their documented path, never at a URL an answer names (the key goes with it)
        async for line in self._lines(f"/{part.upstream_id}/results"):
            yield line

    def usage(self, line: bytes) -> Usage | None:
        try:
            result = json.loads(line)["result"]
            return anthropic_usage(result["message"].get("usage")) if result.get("type") == "succeeded" else None
        except (ValueError, KeyError, TypeError, AttributeError):
            return None


#: The batch API of each kind.
KINDS: dict[str, type[UpstreamBatches]] = {OPENAI: OpenAIBatches, ANTHROPIC: MessageBatchesAPI}
