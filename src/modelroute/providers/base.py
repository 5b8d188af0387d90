"""What every provider shares: token usage, the failure kinds and :class:`ProviderError`, a whole
answer (:class:`Completion`), a chat-shaped stream (:class:`ChunkStream`), key sources, and the
part of an HTTP client providers use. The :class:`~modelroute.providers.provider.Provider` base
class is in :mod:`modelroute.providers.provider`.

Every failure is a :class:`ProviderError` whose ``kind`` tells the proxy whether another model
may be tried; fallback rules live in the proxy, not here. Messages never carry keys.
"""

from __future__ import annotations

import abc
import enum
from dataclasses import dataclass, field
from collections.abc import Mapping
from typing import Any, AsyncIterator, Awaitable, Protocol

import aiohttp

from modelroute.policy import ProviderSpec



class HttpResponse(Protocol):
    """The part of an upstream answer providers read (aiohttp's ClientResponse has it too)."""

    status: int

    @property
    def headers(self) -> Mapping[str, str]: ...

    @property
    def content(self) -> Any: ...  # ``content.iter_any()``: the body as it arrives

    async def read(self) -> bytes: ...

    def release(self) -> Any: ...

    def close(self) -> None: ...

    async def __aenter__(self) -> Any: ...

    async def __aexit__(self, *exc: Any) -> Any: ...


class HttpClient(Protocol):
    """What providers call upstream with: :class:`~modelroute.providers.transport.Transport`, or
    an ``aiohttp.ClientSession`` (same call, an answer with the same surface)."""

    def post(self, url: str, *, data: bytes, headers: Mapping[str, str], timeout: aiohttp.ClientTimeout) -> Awaitable[HttpResponse]: ...


@dataclass(slots=True)
class Usage:
    """Token usage as the provider reported it. ``input_tokens`` includes cached tokens."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0

    @classmethod
    def from_openai(cls, usage: Mapping[str, Any] | None) -> Usage | None:
        if not isinstance(usage, Mapping):
            return None
        prompt_details = usage.get("prompt_tokens_details") or {}
        completion_details = usage.get("completion_tokens_details") or {}
        return cls(
            input_tokens=int(usage.get("prompt_tokens") or 0),
            output_tokens=int(usage.get("completion_tokens") or 0),
            cached_input_tokens=int(prompt_details.get("cached_tokens") or 0),
            cache_write_tokens=int(prompt_details.get("cache_creation_tokens") or 0),
            reasoning_tokens=int(completion_details.get("reasoning_tokens") or 0),
        )


class ErrorKind(str, enum.Enum):
    CONNECT = "connect"  # could not connect, or the connection broke
    TIMEOUT = "timeout"
    RATE_LIMITED = "rate_limited"  # 429 (and Anthropic's 529 overloaded is SERVER)
    SERVER = "server"  # 5xx
    CONTEXT_LENGTH = "context_length"  # the input does not fit this model
    AUTH = "auth"  # the provider refused our key (401/403)
    BAD_REQUEST = "bad_request"  # the client's request is wrong: no other model will do better
    NOT_FOUND = "not_found"  # the upstream model id does not exist there
    PROTOCOL = "protocol"  # the upstream answered something that is not its API
    NO_KEY = "missing_key"  # the provider's key cannot be read (an unset variable, a missing file)


#: Kinds after which the next model of the chain is tried.
RETRYABLE = frozenset(
    {ErrorKind.CONNECT, ErrorKind.TIMEOUT, ErrorKind.RATE_LIMITED, ErrorKind.SERVER, ErrorKind.CONTEXT_LENGTH,
     ErrorKind.AUTH, ErrorKind.NOT_FOUND, ErrorKind.PROTOCOL, ErrorKind.NO_KEY}
)
#: Kinds that count against a model's circuit breaker.
UNHEALTHY = frozenset({ErrorKind.CONNECT, ErrorKind.TIMEOUT, ErrorKind.SERVER, ErrorKind.AUTH, ErrorKind.PROTOCOL})


class ProviderError(Exception):
    """An upstream attempt failed.

    ``status`` is the upstream HTTP status (None when there was no answer); ``error`` is an
    OpenAI-format error object safe to show the client (for BAD_REQUEST it is the upstream's own,
    translated when needed); ``headers`` are the upstream's response headers when it answered
    (what it says of its rate limits), never shown to the client.
    """

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        error: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.headers: Mapping[str, str] = headers if headers is not None else {}
        self.kind = kind
        self.message = message
        self.status = status
        self.retry_after = retry_after
        self.error = error

    @property
    def retryable(self) -> bool:
        return self.kind in RETRYABLE


@dataclass(slots=True)
class Completion:
    """A whole (non-streamed) answer in OpenAI format.

    ``raw`` holds the upstream bytes when they are already the OpenAI body, so the proxy can pass
    them through without serialising again.
    """

    body: Mapping[str, Any]
    usage: Usage | None
    raw: bytes | None = None
    #: Parameters the translation had to drop (reported on the span); empty for pass-through.
    dropped: tuple[str, ...] = ()
    #: The upstream's response headers (rate-limit figures), when it answered.
    headers: Mapping[str, str] = field(default_factory=dict)


class ChunkStream(abc.ABC):
    """A chat-shaped answer streaming in: ``chat.completion.chunk`` payloads (the JSON after
    ``data: ``), in order, the usage chunk (empty ``choices``) last; ``[DONE]`` is not yielded.
    Iteration raises :class:`ProviderError` when the stream breaks."""

    usage: Usage | None = None
    #: Parameters the translation had to drop (reported on the span); empty for pass-through.
    dropped: tuple[str, ...] = ()

    @abc.abstractmethod
    def __aiter__(self) -> AsyncIterator[bytes]: ...

    @abc.abstractmethod
    async def aclose(self) -> None: ...


class KeySource(abc.ABC):
    """Resolves a provider's API key (env, file, Secret). Never logs the key."""

    @abc.abstractmethod
    def get(self, provider: ProviderSpec) -> str | None: ...

    def describe(self, provider: ProviderSpec) -> str:
        """Where the key is expected, for an operator to fix (never the key)."""
        ref = provider.api_key
        if ref is None:
            return "no key is configured"
        if ref.env:
            return f"environment variable {ref.env} is not set"
        if ref.file:
            return f"file {ref.file} cannot be read"
        return f"Secret {ref.secret_name} key {ref.secret_key} is not mounted"
