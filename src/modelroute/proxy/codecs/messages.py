"""Anthropic Messages clients (``POST /v1/messages``).

Apps written against the Anthropic SDK point ``base_url`` at the sidecar. The body is read once into
chat's shape (:class:`AnthropicToOpenAI`) so routing reads the same view as for any client; content
with no chat equivalent (server tool history, a document by URL) does not refuse the request: routing
reads a copy without it, and only providers speaking Messages are candidates.

Every error leaves in Anthropic's format (``{"type": "error", "error": {"type", "message"}}``) with
the type Anthropic uses for the status, and every answer carries ``request-id``; a stream that fails
after its first event ends with an ``error`` event.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from aiohttp import web

from modelroute import _json as json
from modelroute.providers import ErrorKind, ProviderError
from modelroute.providers.anthropic_errors import anthropic_error_body, error_type_for
from modelroute.providers.sse import encode
from modelroute.proxy.codecs import ClientCodec, Incoming
from modelroute.contract.errors import ClientError
#: Reading a Messages body lives in the contract: Message Batches read each batched request the same way.
from modelroute.contract.messages import as_chat, require

if TYPE_CHECKING:
    from modelroute.proxy.exchange import Exchange


def error_response(exc: ClientError, headers: Mapping[str, str] | None = None) -> web.Response:
    """A ClientError in Anthropic's error format."""
    body = anthropic_error_body(exc.status, exc.message, error_type_for(exc.status))
    return web.Response(status=exc.status, body=json.dumps(body), content_type="application/json",
                        headers={**(headers or {}), **exc.headers})


INTERNAL = encode(json.dumps(anthropic_error_body(500, "internal error in the modelroute sidecar", "api_error")), "error")


class MessagesCodec(ClientCodec):
    api = "messages"
    family = "anthropic"
    forwarded = ("anthropic-beta",)
    internal_event = INTERNAL

    def parse(self, body: dict[str, Any]) -> Incoming:
        require(body)
        chat, native_only = as_chat(body)
        return Incoming(body, chat, stream=bool(body.get("stream")), native_only=native_only)

    def error_response(self, exc: ClientError, headers: Mapping[str, str] | None = None) -> web.Response:
        return error_response(exc, headers)

    def stream_error(self, exc: ProviderError) -> bytes:
        if exc.kind is ErrorKind.RATE_LIMITED:
            kind = "rate_limit_error"
        elif exc.kind is ErrorKind.TIMEOUT:
            kind = "timeout_error"
        else:
            kind = "overloaded_error" if exc.status == 529 else "api_error"
        return encode(json.dumps(anthropic_error_body(500, "the upstream stream failed: " + exc.kind.value, kind)), "error")

    def headers(self, ex: Exchange) -> dict[str, str]:
        return {"request-id": ex.request_id}


MESSAGES = MessagesCodec()
