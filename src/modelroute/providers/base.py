"""The provider interface: one upstream API, spoken in its own wire format.

A provider takes an OpenAI chat-completions request body (the shape every client request is
normalised to) and a registry model, calls its upstream on the sidecar's pooled HTTP client
(:mod:`modelroute.providers.transport`; an ``aiohttp`` session where none is given), and
returns an OpenAI-shaped answer: a :class:`Completion`, or a :class:`ChunkStream` of OpenAI
``chat.completion.chunk`` payloads. Providers that speak another format use a translator named by
the pair it converts (``openai_anthropic.py``), created per request.

Every failure is a :class:`ProviderError` whose ``kind`` tells the proxy whether another model
may be tried; fallback rules live in the proxy, not here. Messages never carry keys.
"""

from __future__ import annotations

import abc
import enum
from dataclasses import dataclass
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, AsyncIterator, Awaitable, Protocol

import aiohttp

from modelroute.policy import ModelSpec, ProviderSpec

if TYPE_CHECKING:
    from modelroute.providers.transport import Transport


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


#: Kinds after which the next model of the chain is tried.
RETRYABLE = frozenset(
    {ErrorKind.CONNECT, ErrorKind.TIMEOUT, ErrorKind.RATE_LIMITED, ErrorKind.SERVER, ErrorKind.CONTEXT_LENGTH,
     ErrorKind.AUTH, ErrorKind.NOT_FOUND, ErrorKind.PROTOCOL}
)
#: Kinds that count against a model's circuit breaker.
UNHEALTHY = frozenset({ErrorKind.CONNECT, ErrorKind.TIMEOUT, ErrorKind.SERVER, ErrorKind.AUTH, ErrorKind.PROTOCOL})


class ProviderError(Exception):
    """An upstream attempt failed.

    ``status`` is the upstream HTTP status (None when there was no answer); ``error`` is an
    OpenAI-format error object safe to show the client (for BAD_REQUEST it is the upstream's own,
    translated when needed).
    """

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        error: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
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


class ChunkStream(abc.ABC):
    """An answer streaming in: OpenAI chunk payloads (the JSON after ``data: ``), in order.

    Iteration yields each chunk as bytes; the usage chunk (empty ``choices``) is yielded like the
    others, and ``usage`` is set once it has passed. ``[DONE]`` is not yielded. Iteration raises
    :class:`ProviderError` when the stream breaks.
    """

    usage: Usage | None = None
    #: Parameters the translation had to drop (reported on the span); empty for pass-through.
    dropped: tuple[str, ...] = ()
    #: Chunks already received that the next steps of iteration yield without waiting: the proxy
    #: writes to the client once they are all out, in one write (0: write each chunk at once).
    ready: int = 0

    @abc.abstractmethod
    def __aiter__(self) -> AsyncIterator[bytes]: ...

    @abc.abstractmethod
    async def aclose(self) -> None: ...


class Provider(abc.ABC):
    """One upstream API. Instances are created per policy version and share the proxy's session."""

    def __init__(self, spec: ProviderSpec, session: aiohttp.ClientSession, keys: KeySource,
                 transport: Transport | None = None) -> None:
        self.spec = spec
        self.session = session  # aiohttp: the batch API's file transfers
        self.keys = keys
        #: Provider calls: the sidecar's lean client when given one, else the aiohttp session.
        self.http: HttpClient = transport if transport is not None else session

    @property
    def name(self) -> str:
        return self.spec.name

    @abc.abstractmethod
    async def chat(self, body: Mapping[str, Any], model: ModelSpec, *, timeout: float, headers: Mapping[str, str]) -> Completion:
        """One chat completion, not streamed. ``headers`` are extra headers to send (trace context)."""

    @abc.abstractmethod
    async def chat_stream(
        self, body: Mapping[str, Any], model: ModelSpec, *, timeout: float, idle_timeout: float, headers: Mapping[str, str]
    ) -> ChunkStream:
        """Open a streamed chat completion. Returns once the upstream accepted the request
        (status 200); ``timeout`` bounds that, ``idle_timeout`` each wait for a chunk after it."""

    async def embeddings(self, body: Mapping[str, Any], model: ModelSpec, *, timeout: float, headers: Mapping[str, str]) -> Completion:
        raise ProviderError(ErrorKind.BAD_REQUEST, f"provider {self.name!r} does not serve embeddings", status=400)


class KeySource(abc.ABC):
    """Resolves a provider's API key (env, file, Secret). Never logs the key."""

    @abc.abstractmethod
    def get(self, provider: ProviderSpec) -> str | None: ...
