"""Anthropic's error types and HTTP statuses, both ways.

Upstream: an Anthropic error body (``{"type": "error", "error": {"type", "message"}}``) or a
mid-stream ``error`` event becomes a :class:`ProviderError` whose kind follows the status
(429 -> RATE_LIMITED, 5xx and 529 overloaded -> SERVER: both move on to the next model).
Client side (``/v1/messages``): any error answer is written in Anthropic's format with the type
Anthropic uses for its status, so Anthropic SDKs raise the exception class they would for Claude.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from modelroute.providers.base import ErrorKind, ProviderError
from modelroute.providers.http import http_error, parse_error_body

#: Anthropic error type -> the HTTP status Anthropic answers it with.
ERROR_STATUS: dict[str, int] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}

_STATUS_TYPE: dict[int, str] = {status: kind for kind, status in ERROR_STATUS.items()}
_STATUS_TYPE.update({408: "timeout_error", 422: "invalid_request_error", 502: "api_error", 503: "overloaded_error"})


def error_type_for(status: int) -> str:
    """The Anthropic error type for an HTTP status."""
    if status in _STATUS_TYPE:
        return _STATUS_TYPE[status]
    return "api_error" if status >= 500 else "invalid_request_error"


def anthropic_error_body(status: int, message: str, error_type: str | None = None) -> dict[str, Any]:
    """An error body as Anthropic writes it."""
    return {"type": "error", "error": {"type": error_type or error_type_for(status), "message": message}}


def upstream_error(provider: str, model: str, status: int, headers: Mapping[str, str], raw: bytes) -> ProviderError:
    """The ProviderError for an Anthropic error answer, its client-facing error in OpenAI's format."""
    return _openai_format(http_error(provider, model, status, headers, parse_error_body(raw)))


def stream_error(error: Any, provider: str, model: str) -> ProviderError:
    """The ProviderError for an ``error`` event inside an Anthropic stream (status 200 already sent)."""
    err: Mapping[str, Any] = error if isinstance(error, Mapping) else {}
    status = ERROR_STATUS.get(str(err.get("type") or ""), 500)
    return _openai_format(http_error(provider, model, status, {}, err))


def _openai_format(exc: ProviderError) -> ProviderError:
    """OpenAI's error type and codes on the client-facing error (only client errors carry one)."""
    if exc.error is not None:
        code = exc.error.get("code")
        if exc.kind is ErrorKind.CONTEXT_LENGTH:
            code = "request_too_large" if exc.status == 413 else "context_length_exceeded"
        exc.error = {**exc.error, "type": "invalid_request_error", "code": code}
    return exc
