"""Reading an Anthropic Messages request: the fields Anthropic requires, and the chat-shaped copy routing reads.

The Messages codec (:mod:`modelroute.proxy.codecs.messages`) reads ``POST /v1/messages`` with these,
and the Message Batches feature (:mod:`modelroute.batch.messages`) reads each batched request's
``params`` with the same ones, so a batched request is routed exactly as it would be in real
time. They live below the proxy because features may not import it.
"""

from __future__ import annotations

from typing import Any, Mapping

from modelroute.contract.errors import BadRequest
from modelroute.contract.shapes import check_messages
from modelroute.providers import ProviderError
from modelroute.providers.anthropic_openai import AnthropicToOpenAI


def require(body: Mapping[str, Any], count: bool = False) -> None:
    """400 for what Anthropic would refuse before anything else (``count``: a count_tokens body,
    which has no ``max_tokens``)."""
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


def as_chat(body: Mapping[str, Any]) -> tuple[dict[str, Any], str | None]:
    """The request in chat's shape, and why only Messages providers can serve it (or None)."""
    try:
        return AnthropicToOpenAI().request(body), None
    except ProviderError as exc:  # TranslationError: content with no chat equivalent
        why = exc.message
    try:
        return AnthropicToOpenAI(lenient=True).request(body), why
    except ProviderError as exc:
        raise BadRequest(exc.message, code="unsupported_content") from None
