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
from modelroute.providers.anthropic_openai import AnthropicToOpenAI
from modelroute.providers.sse import encode
from modelroute.proxy.codecs import ClientCodec, Incoming
from modelroute.contract.errors import BadRequest, ClientError
from modelroute.contract.shapes import check_messages

if TYPE_CHECKING:
    from modelroute.proxy.exchange import Exchange


def error_response(exc: ClientError, headers: Mapping[str, str] | None = None) -> web.Response:
    """A ClientError in Anthropic's error format."""
    body = anthropic_error_body(exc.status, exc.message, error_type_for(exc.status))
    return web.Response(status=exc.status, body=json.dumps(body), content_type="application/json",
                        headers={**(headers or {}), **exc.headers})


def require(body: Mapping[str, Any], count: bool = False) -> None:
    """400 for what Anthropic would refuse before anything else."""
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise BadRequest("model: Field required", param="model")
    if not count and (not isinstance(body.get("max_tokens"), int) or isinstance(body["max_tokens"], bool)):
        raise BadRequest("max_tokens: Field required", param="max_tokens")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages: Field required (a non-empty list)", param="messages")
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict) or msg.get("role") not in ("user", "assistant"):
            raise BadRequest(f"messages.{i}.role: Input should be 'user' or 'assistant'", param=f"messages.{i}")
        if msg.get("content") is None:
            raise BadRequest(f"messages.{i}.content: Field required", param=f"messages.{i}.content")
    if "stream" in body and not isinstance(body["stream"], (bool, type(None))):
        raise BadRequest("stream: Input should be a valid boolean", param="stream")
    check_messages(body)


def as_chat(body: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """The request in chat's shape, and why only Messages providers can serve it (or None)."""
    try:
        return AnthropicToOpenAI().request(body), None
    except ProviderError as exc:  # TranslationError: content with no chat equivalent
        why = exc.message
    try:
        return AnthropicToOpenAI(lenient=True).request(body), why
    except ProviderError as exc:
        raise BadRequest(exc.message, code="unsupported_content") from None


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
