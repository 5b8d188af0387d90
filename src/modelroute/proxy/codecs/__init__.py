"""Client-API codecs: what differs between the APIs a client may speak, and nothing else.

The request pipeline (:mod:`modelroute.proxy.pipeline`) is one; a codec parameterises it for one
client API: how a body is checked and read (:meth:`ClientCodec.parse`, giving the chat-shaped body
routing reads), how errors are written (whole, and as a stream's last event), how a stream is
framed and ended, and which client headers go upstream when the request passes through natively.
Translation between the client API and a provider's wire format is not a codec's: the translator
table (:mod:`modelroute.providers.translators`) picks it per attempt.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Mapping

from aiohttp import web

from modelroute import _json as json
from modelroute.providers import ProviderError
from modelroute.providers.sse import encode
from modelroute.contract.errors import ClientError
from modelroute.proxy.errors import error_response

if TYPE_CHECKING:
    from modelroute.proxy.exchange import Exchange


@dataclass(slots=True)
class Incoming:
    """A client request, read once."""

    body: dict[str, Any]  # as the client sent it: what a provider speaking the client's API gets
    chat: dict[str, Any]  # in chat's shape: what routing reads (the same object for chat clients)
    stream: bool = False
    #: Why only providers speaking the client's API can serve it (content with no translation), or None.
    native_only: str | None = None
    #: The codec for this request when it differs from its endpoint's (a chat stream hiding usage).
    codec: ClientCodec | None = None


class ClientCodec:
    """One client API. Subclasses set the class attributes and override what differs."""

    api: ClassVar[str] = ""  # chat | messages | responses
    family: ClassVar[str] = "openai"  # openai | anthropic: the error format, the pass-through provider
    operation: ClassVar[str] = "chat"  # gen_ai.operation.name
    #: Client headers sent upstream when the request passes through natively (beta features).
    forwarded: ClassVar[tuple[str, ...]] = ()
    #: What ends a stream after its last event (chat's ``data: [DONE]``).
    stream_end: ClassVar[bytes] = b""
    #: The event that ends a stream broken by the sidecar's own error.
    internal_event: ClassVar[bytes] = b""

    def parse(self, body: dict[str, Any]) -> Incoming:
        """Check ``body`` (BadRequest naming the field) and read it."""
        raise NotImplementedError

    def error_response(self, exc: ClientError, headers: Mapping[str, str] | None = None) -> web.Response:
        return error_response(exc, headers)

    def stream_error(self, exc: ProviderError) -> bytes:
        """The event that ends a stream whose upstream failed after the client had its headers."""
        raise NotImplementedError

    def frame(self, name: bytes | None, data: bytes) -> bytes | None:
        """One upstream event of the client's own API as the client gets it (None: left out)."""
        if name is None:
            return b"data: " + data + b"\n\n"
        return b"event: " + name + b"\ndata: " + data + b"\n\n"

    def frame_event(self, name: str | None, payload: Mapping[str, Any]) -> bytes | None:
        """One translated event as the client gets it (None: left out)."""
        return encode(json.dumps(payload), name)

    def headers(self, ex: Exchange) -> dict[str, str]:
        """Headers this API adds to every answer (Anthropic's ``request-id``)."""
        return {}

    def answered(self, ex: Exchange, answer: Mapping[str, Any] | None) -> None:
        """Called once an answer went out whole or streamed (``answer``: the client's body when
        known): the Responses API keeps it for ``previous_response_id``."""
