"""OpenAI Chat Completions clients (``POST /v1/chat/completions``).

The body is the routing body itself. Streams end with ``data: [DONE]``; an upstream failure after
the first chunk is an ``error`` chunk the OpenAI SDK raises as ``APIError``. The sidecar always asks
a chat upstream for the usage chunk (so every stream is costed exactly) and hides it from clients
that did not ask for it.
"""

from __future__ import annotations

from typing import Any, Mapping

from modelroute import _json as json
from modelroute.providers import ProviderError
from modelroute.providers.sse import DONE
from modelroute.proxy.codecs import ClientCodec, Incoming
from modelroute.contract.http import require_chat_fields
from modelroute.contract.shapes import check_chat

INTERNAL = b"data: " + json.dumps({"error": {"message": "internal error in the modelroute sidecar", "type": "server_error",
                                             "param": None, "code": None}}) + b"\n\n"


def is_usage_only(chunk: bytes) -> bool:
    """The extra chunk carrying only usage (empty choices)."""
    if b'"choices":[]' not in chunk and b'"choices": []' not in chunk:
        return False
    try:
        data = json.loads(chunk)
    except ValueError:
        return False
    return isinstance(data, dict) and data.get("choices") == [] and data.get("usage") is not None


class ChatCodec(ClientCodec):
    api = "chat"
    family = "openai"
    stream_end = DONE
    internal_event = INTERNAL + DONE

    def parse(self, body: dict[str, Any]) -> Incoming:
        require_chat_fields(body)
        check_chat(body)
        stream = bool(body.get("stream"))
        options = body.get("stream_options")
        hide = stream and not (isinstance(options, Mapping) and options.get("include_usage"))
        return Incoming(body, body, stream=stream, codec=CHAT_HIDING_USAGE if hide else None)

    def stream_error(self, exc: ProviderError) -> bytes:
        error = {"error": {"message": "the upstream stream failed: " + exc.kind.value, "type": "upstream_error",
                           "param": None, "code": "stream_" + exc.kind.value}}
        return b"data: " + json.dumps(error) + b"\n\n" + DONE


class HidingUsage(ChatCodec):
    """A chat stream whose client did not ask for the usage chunk: it is left out."""

    def frame(self, name: bytes | None, data: bytes) -> bytes | None:
        return None if is_usage_only(data) else b"data: " + data + b"\n\n"

    def frame_event(self, name: str | None, payload: Mapping[str, Any]) -> bytes | None:
        if payload.get("choices") == [] and payload.get("usage") is not None:
            return None
        return b"data: " + json.dumps(payload) + b"\n\n"


CHAT_HIDING_USAGE = HidingUsage()
CHAT = ChatCodec()
