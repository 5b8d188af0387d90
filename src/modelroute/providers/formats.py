"""The three wire formats an upstream may speak, read as they stream in.

An answer streams in as server-sent events in the upstream's own format; :class:`EventStream` reads
them in batches (the complete events of each network read, which leave for the client together, in
one write) and looks only at the events that carry what the sidecar needs: usage, the end of the
answer, an error. Everything else passes by as bytes, unparsed.

=============  =========================================  ==================================
wire format     the end                                    usage
=============  =========================================  ==================================
``chat``        ``data: [DONE]`` (not passed on)           the chunk carrying ``usage``
``messages``    ``message_stop``                           ``message_start`` + ``message_delta``
``responses``   ``response.completed`` / ``.incomplete``   the final event's ``response.usage``
=============  =========================================  ==================================

An ``error`` event (and ``response.failed``) raises :class:`ProviderError` with the kind its type
says, so a stream that fails before its first byte reaches the client falls back invisibly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, AsyncIterator, Callable, ClassVar

from modelroute import _json as json
from modelroute.policy.model import CHAT, MESSAGES, RESPONSES
from modelroute.providers.anthropic_errors import stream_error
from modelroute.providers.base import ErrorKind, HttpResponse, ProviderError, Usage
from modelroute.providers.http import network_errors
from modelroute.providers.openai_anthropic import openai_usage
from modelroute.providers.responses_objects import usage_of as responses_usage
from modelroute.providers.sse import SSEParser
from modelroute.providers.translate import answer_errors

#: One server-sent event as it came: (event name or None, data).
RawEvent = tuple["bytes | None", bytes]


def anthropic_usage(usage: Any) -> Usage | None:
    """Anthropic usage (input tokens exclude cache reads and writes) as :class:`Usage`."""
    return Usage.from_openai(openai_usage(usage)) if isinstance(usage, Mapping) else None


#: How each wire format's whole answer reports usage.
USAGE: dict[str, Callable[[Mapping[str, Any]], Usage | None]] = {
    CHAT: lambda body: Usage.from_openai(body.get("usage")),
    MESSAGES: lambda body: anthropic_usage(body.get("usage")),
    RESPONSES: lambda body: responses_usage(body.get("usage")),
}


def check_answer(api: str, body: Mapping[str, Any], where: str) -> None:
    """PROTOCOL unless ``body`` is the kind of object the API answers with."""
    if api == CHAT:
        ok = isinstance(body.get("choices"), list)
    elif api == MESSAGES:
        ok = body.get("type") == "message" and isinstance(body.get("content"), list)
    else:
        ok = body.get("object") == "response" and isinstance(body.get("output"), list)
    if not ok:
        raise ProviderError(ErrorKind.PROTOCOL, f"{where}: the answer is not a {api} answer")


class EventStream:
    """An upstream answer streaming in, in its own wire format. Iterate :meth:`batches`; ``usage``
    is set once the event carrying it has passed; ``finished`` once the answer ended normally."""

    api: ClassVar[str] = ""

    def __init__(self, resp: HttpResponse, provider: str, model: str) -> None:
        self._resp = resp
        self.where = f"{provider}/{model}"
        self._names = (provider, model)
        self.usage: Usage | None = None
        self.finished = False
        self.headers: Mapping[str, str] = resp.headers
        self._failed: ProviderError | None = None  # raised after the events before it went out

    def _look(self, name: bytes | None, data: bytes) -> bool:
        """Inspect one event; False to leave it out of the answer. Raises ProviderError."""
        raise NotImplementedError

    async def batches(self) -> AsyncIterator[list[RawEvent]]:
        parser = SSEParser()
        async with network_errors(*self._names):
            try:
                async for raw in self._resp.content.iter_any():
                    events = parser.feed(raw)
                    if events:
                        out = self._pass(events)
                        if out:
                            yield out
                        if self._failed is not None:
                            raise self._failed
                        if self.finished:
                            return
                tail = self._pass(parser.close())
                if tail:
                    yield tail
                if self._failed is not None:
                    raise self._failed
                if not self.finished:
                    raise ProviderError(ErrorKind.CONNECT, f"{self.where}: the stream ended before its end event")
            finally:
                self._resp.release()

    def _pass(self, events: list[RawEvent]) -> list[RawEvent]:
        """The events that are part of the answer; a failure is kept for after those before it."""
        out = []
        for name, data in events:
            try:
                keep = self._look(name, data)
            except ProviderError as exc:
                self._failed = exc
                break
            if keep:
                out.append((name, data))
            if self.finished:  # anything after the end is not part of the answer
                break
        return out

    def _json(self, data: bytes) -> dict[str, Any]:
        try:
            event = json.loads(data)
        except ValueError:
            event = None
        if not isinstance(event, dict):
            raise ProviderError(ErrorKind.PROTOCOL, f"{self.where}: an event is not a JSON object")
        return event

    async def aclose(self) -> None:
        if not self.finished:  # left before its end: the connection cannot serve again
            self._resp.close()


class ChatEvents(EventStream):
    """Chat Completions chunks; ``[DONE]`` ends the stream and is not passed on."""

    api = CHAT
    _USAGE, _USAGE_SPACED = b'"usage":{', b'"usage": {'

    def _look(self, name: bytes | None, data: bytes) -> bool:
        if data == b"[DONE]":
            self.finished = True
            return False
        if self._USAGE in data or self._USAGE_SPACED in data or b'"error"' in data:
            chunk = self._json(data)
            if isinstance(chunk.get("error"), dict):
                raise ProviderError(ErrorKind.SERVER, f"{self.where}: error event in the stream")
            with answer_errors(self.where):
                usage = Usage.from_openai(chunk.get("usage"))
            if usage is not None:
                self.usage = usage
        return True


class MessagesEvents(EventStream):
    """Anthropic Messages events up to ``message_stop``; usage from ``message_start`` and ``message_delta``."""

    api = MESSAGES
    _LOOK = (b"message_start", b"message_delta", b"error", b"message_stop")

    def __init__(self, resp: HttpResponse, provider: str, model: str) -> None:
        super().__init__(resp, provider, model)
        self._usage: dict[str, Any] = {}

    def _look(self, name: bytes | None, data: bytes) -> bool:
        if name in self._LOOK or (name is None and b'"type"' in data):
            event = self._json(data)
            kind = event.get("type")
            if kind == "error":
                raise stream_error(event.get("error"), *self._names)
            with answer_errors(self.where):
                usage = (event.get("message") or {}).get("usage") if kind == "message_start" else event.get("usage")
                if isinstance(usage, Mapping):
                    self._usage.update({k: v for k, v in usage.items() if v is not None})
                    self.usage = anthropic_usage(self._usage)
            if kind == "message_stop":
                self.finished = True
        return True


#: Responses events that end an answer.
RESPONSES_END = (b"response.completed", b"response.incomplete")


class ResponsesEvents(EventStream):
    """Responses API semantic events up to ``response.completed`` (or ``.incomplete``); a
    ``response.failed`` or ``error`` event raises with the kind its error code says."""

    api = RESPONSES
    _LOOK = (*RESPONSES_END, b"response.failed", b"error")

    def _look(self, name: bytes | None, data: bytes) -> bool:
        if name in self._LOOK or (name is None and (b'"response.completed"' in data or b'"response.incomplete"' in data
                                                      or b'"response.failed"' in data or b'"type":"error"' in data)):
            event = self._json(data)
            kind = event.get("type")
            if kind == "error" or kind == "response.failed":
                error = event.get("error") if kind == "error" else (event.get("response") or {}).get("error")
                raise responses_stream_error(error, self.where)
            with answer_errors(self.where):
                self.usage = responses_usage((event.get("response") or {}).get("usage")) or self.usage
            self.finished = True
        return True


def responses_stream_error(error: Any, where: str) -> ProviderError:
    """A Responses stream's failure, by its error code (rate limits retry elsewhere, as 429s do)."""
    err: Mapping[str, Any] = error if isinstance(error, Mapping) else {}
    code = str(err.get("code") or err.get("type") or "")
    if "rate_limit" in code:
        kind = ErrorKind.RATE_LIMITED
    elif "context_length" in code:
        kind = ErrorKind.CONTEXT_LENGTH
    else:
        kind = ErrorKind.SERVER
    return ProviderError(kind, f"{where}: the stream failed ({code or 'no code'})")


STREAMS: dict[str, type[EventStream]] = {CHAT: ChatEvents, MESSAGES: MessagesEvents, RESPONSES: ResponsesEvents}
