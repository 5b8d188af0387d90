"""What every HTTP provider shares: classifying failures into :class:`ProviderError`."""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
from modelroute import _json as json
import time
from typing import Any, Mapping

import aiohttp

from modelroute.providers.base import ErrorKind, ProviderError
from modelroute.providers.transport import BodyError

_CONTEXT_HINTS = ("context_length", "context length", "maximum context", "too many tokens", "prompt is too long")


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from ``retry-after-ms`` / ``retry-after`` (seconds or an HTTP date)."""
    ms = headers.get("retry-after-ms")
    if ms:
        with contextlib.suppress(ValueError):
            return max(0.0, float(ms) / 1000)
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    with contextlib.suppress(TypeError, ValueError):
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - time.time())
    return None


def kind_for(status: int, error: Mapping[str, Any]) -> ErrorKind:
    text = " ".join(str(error.get(k) or "") for k in ("code", "type", "message")).lower()
    if status == 429:
        return ErrorKind.RATE_LIMITED
    if status >= 500:
        return ErrorKind.SERVER
    if status in (401, 403):
        return ErrorKind.AUTH
    if status == 413 or any(hint in text for hint in _CONTEXT_HINTS):
        return ErrorKind.CONTEXT_LENGTH
    if status == 404:
        return ErrorKind.NOT_FOUND
    return ErrorKind.BAD_REQUEST


def parse_error_body(raw: bytes) -> dict[str, Any]:
    """The error object of an error body (``{"error": {...}}``), or a stand-in for a non-JSON body."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return {}
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict):
            return err
        if isinstance(err, str):
            return {"message": err}
    return {}


def http_error(provider: str, model: str, status: int, headers: Mapping[str, str], error: Mapping[str, Any]) -> ProviderError:
    """The ProviderError for an upstream error answer. Only BAD_REQUEST and CONTEXT_LENGTH keep
    the upstream message for the client: auth errors can echo parts of keys."""
    kind = kind_for(status, error)
    where = f"{provider}/{model}"
    if kind in (ErrorKind.BAD_REQUEST, ErrorKind.CONTEXT_LENGTH):
        message = str(error.get("message") or f"upstream answered {status}")
        safe = {
            "message": message,
            "type": str(error.get("type") or "invalid_request_error"),
            "param": error.get("param"),
            "code": error.get("code"),
        }
        return ProviderError(kind, f"{where}: {status} {message}", status=status, error=safe)
    return ProviderError(kind, f"{where}: upstream answered {status}", status=status, retry_after=retry_after(headers))


class network_errors:  # noqa: N801 - used like a function: ``async with network_errors(p, m):``
    """Turn aiohttp and timeout exceptions into ProviderError. (A class, not a generator-based
    context manager: it is entered on every upstream call.)"""

    __slots__ = ("provider", "model")

    def __init__(self, provider: str, model: str) -> None:
        self.provider, self.model = provider, model

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if exc is None or isinstance(exc, ProviderError):
            return
        mapped = network_error(exc, f"{self.provider}/{self.model}")
        if mapped is not None:
            raise mapped from None


def network_error(exc: BaseException, where: str) -> ProviderError | None:
    """The ProviderError a network or timeout exception stands for (None: not one of those)."""
    if isinstance(exc, (asyncio.TimeoutError, aiohttp.ServerTimeoutError)):
        return ProviderError(ErrorKind.TIMEOUT, f"{where}: timed out")
    if isinstance(exc, (aiohttp.ClientPayloadError, BodyError)):
        return ProviderError(ErrorKind.CONNECT, f"{where}: the connection broke mid-answer")
    if isinstance(exc, (aiohttp.ClientError, OSError)):
        return ProviderError(ErrorKind.CONNECT, f"{where}: {type(exc).__name__}")
    return None


def loads_object(raw: bytes, provider: str, model: str) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        data = None
    if not isinstance(data, dict):
        raise ProviderError(ErrorKind.PROTOCOL, f"{provider}/{model}: the answer is not a JSON object")
    return data
