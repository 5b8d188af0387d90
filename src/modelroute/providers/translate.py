"""The translator interface: one request carried from the client's API to an upstream's, and back.

A translator is created per request and named by the pair it converts, client API first
(``OpenAIToAnthropic`` serves an OpenAI client from an Anthropic upstream). It converts the request
body once (:meth:`Translator.request`), then either a whole answer (:meth:`Translator.response`) or
a stream, event by event (:meth:`Translator.event`, then :meth:`Translator.end`). A translator keeps
the state a stream needs (open content blocks, tool indexes, usage) and the list of what it had to
drop: parameters or content with no equivalent on the other side, never guessed at, reported on the
span as ``modelroute.translation.dropped``.

Stream events are ``(event name, payload)`` pairs; the name is None for OpenAI chunks, which have
none on the wire.
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar, Mapping

from modelroute.providers.base import ErrorKind, ProviderError, Usage

#: One stream event: (SSE event name or None, JSON payload).
Event = tuple[str | None, dict[str, Any]]


def obj(value: Any) -> dict[str, Any]:
    """``value`` when it is a JSON object, else an empty one (bodies are parsed JSON: dicts)."""
    return value if isinstance(value, dict) else {}


class TranslationError(ProviderError):
    """The request cannot be expressed in the target API at all (e.g. audio input to Claude).

    A client error for this model; the message names what could not be carried.
    """

    def __init__(self, message: str) -> None:
        super().__init__(
            ErrorKind.BAD_REQUEST,
            message,
            status=400,
            error={"message": message, "type": "invalid_request_error", "param": None, "code": "unsupported_content"},
        )


class Translator(abc.ABC):
    """Converts one request from ``source`` (the client's API) to ``target`` (the upstream's)."""

    source: ClassVar[str]
    target: ClassVar[str]

    def __init__(self) -> None:
        self.dropped: list[str] = []
        self.usage: Usage | None = None

    def drop(self, what: str) -> None:
        """Record something that could not be carried across (each name once)."""
        if what not in self.dropped:
            self.dropped.append(what)

    @abc.abstractmethod
    def request(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """The request body in the target API's shape."""

    @abc.abstractmethod
    def response(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """A whole target-API answer in the source API's shape; sets :attr:`usage`."""

    @abc.abstractmethod
    def event(self, name: str | None, data: Mapping[str, Any]) -> list[Event]:
        """The source-API events for one target-API stream event (often none, sometimes several)."""

    @abc.abstractmethod
    def end(self) -> list[Event]:
        """The events that close the stream once the upstream's has ended normally."""

    @property
    @abc.abstractmethod
    def finished(self) -> bool:
        """True once the upstream stream has signalled its normal end."""
