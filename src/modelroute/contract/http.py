"""Ingress: read and size-check the body, parse it once, check the fields every handler needs."""

from __future__ import annotations

from modelroute import _json as json
from typing import Any, Mapping

from aiohttp import web

from modelroute.contract.errors import BadRequest, PayloadTooLarge


async def read_json(request: web.Request, limit: int) -> dict[str, Any]:
    """The request body as a JSON object; 413 over ``limit`` bytes, 400 when it is not JSON.

    aiohttp's own ``client_max_size`` stops an oversized body while it is read; it lets a chunked
    body one byte over through, so the length is checked once more after reading."""
    if request.content_length is not None and request.content_length > limit:
        raise _too_large(limit)
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise _too_large(limit) from None
    if len(raw) > limit:
        raise _too_large(limit)
    if not raw:
        raise BadRequest("the request body is empty; expected a JSON object", code="invalid_json")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"the request body is not valid JSON: {exc}", code="invalid_json") from None
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object", code="invalid_json")
    return body


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"the request body is larger than the limit of {limit} bytes", code="request_too_large")


def require_chat_fields(body: Mapping[str, Any]) -> None:
    """400 for a missing field or one of the wrong type (``missing_required_parameter``, ``invalid_type``), as OpenAI answers."""
    if "model" not in body:
        raise BadRequest("you must provide a model parameter", param="model", code="missing_required_parameter")
    if not isinstance(body["model"], str):
        raise BadRequest("model must be a string", param="model", code="invalid_type")
    messages = body.get("messages")
    if messages is None:
        raise BadRequest("messages is a required property", param="messages", code="missing_required_parameter")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages must be a non-empty array", param="messages", code="invalid_type")
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict) or not isinstance(msg.get("role"), str):
            raise BadRequest(f"messages[{i}] must be an object with a role", param=f"messages[{i}]", code="invalid_type")
    if body.get("tools") is not None and not isinstance(body["tools"], list):
        raise BadRequest("tools must be an array", param="tools", code="invalid_type")
    if "stream" in body and not isinstance(body["stream"], (bool, type(None))):
        raise BadRequest("stream must be a boolean", param="stream", code="invalid_type")


#: Client headers that routing never sees: the app's own credentials.
CREDENTIAL_HEADERS = frozenset({"authorization", "x-api-key", "api-key", "cookie", "proxy-authorization"})


def lower_headers(request: web.Request) -> dict[str, str]:
    """Request headers with lower-case names, without credentials."""
    out = {}
    for name, value in request.headers.items():
        low = name.lower()
        if low not in CREDENTIAL_HEADERS:
            out[low] = value
    return out
