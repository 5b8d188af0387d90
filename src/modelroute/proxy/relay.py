"""One attempt's stream, relayed: the upstream's events as the client's frames, a network read at a time.

:func:`open_relay` opens the upstream stream and waits for its first frames inside the attempt, so a
stream that fails before its first byte falls back invisibly. A :class:`Relay` then gives the
client's frames batch by batch (the events of one network read leave in one write): the upstream's
own events when the client speaks its wire format (unparsed, except those carrying usage or an
end), else each event translated. With a cascade's commit point (:meth:`Relay.hold`) frames are read
ahead until about ``tokens`` output tokens or ``ms`` milliseconds, and the reviewer judges the
partial answer before the client sees a byte.

A :class:`ChatTap` keeps the answer in chat's shape for those who read it (a review, the quality
hooks), taking it from where it is cheapest: the upstream's chunks when the upstream speaks chat,
the client's when the client does, else a chat translator running beside the client's.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Mapping

from modelroute import _json as json
from modelroute.policy import ModelSpec
from modelroute.policy.model import CHAT
from modelroute.providers import ErrorKind, EventStream, ProviderError, Usage
from modelroute.providers.translate import SHAPE_ERRORS, Translator, answer_errors
from modelroute.providers.translators import translator
from modelroute.proxy.codecs import ClientCodec
from modelroute.routing.answers import AnswerBuilder

Frames = list[bytes]


class ChatTap:
    """The answer in chat's shape, as chunk payloads (bytes or parsed), reassembled when read."""

    __slots__ = ("mode", "chunks", "live", "strict", "_reader")

    def __init__(self, client: str, wire: str, model: ModelSpec, *, strict: bool) -> None:
        #: upstream: the upstream's chunks are chat's; client: the client's are; translated: neither
        self.mode = "upstream" if wire == CHAT else "client" if client == CHAT else "translated"
        #: a review reads the answer: one it cannot read fails the attempt (PROTOCOL). Otherwise only
        #: the hooks read it, and an unreadable event stops the tap, never the client's stream.
        self.strict = strict
        self.chunks: list[bytes | Mapping[str, Any]] = []
        self.live: AnswerBuilder | None = None  # fed as chunks come, while a commit point holds
        self._reader: Translator | None = translator(CHAT, wire, model) if self.mode == "translated" else None

    def upstream(self, name: bytes | None, data: bytes, parsed: Mapping[str, Any] | None) -> None:
        if self.mode == "upstream":
            self._add(data)
        elif self._reader is not None:
            try:
                event = parsed if parsed is not None else json.loads(data)
                chunks = self._reader.event(name.decode() if name else None, event)
            except SHAPE_ERRORS:
                if self.strict:
                    raise
                self._reader, self.chunks = None, []  # the hooks get no answer rather than a wrong one
                return
            for chunk in chunks:
                self._add(chunk[1])

    def client(self, payload: Mapping[str, Any]) -> None:
        if self.mode == "client":
            self._add(payload)

    def _add(self, chunk: bytes | Mapping[str, Any]) -> None:
        self.chunks.append(chunk)
        if self.live is not None:
            data = json.loads(chunk) if isinstance(chunk, bytes) else chunk
            if isinstance(data, dict):
                self.live.add(data)

    def start_live(self) -> AnswerBuilder:
        self.live = AnswerBuilder()
        for chunk in self.chunks:
            data = json.loads(chunk) if isinstance(chunk, bytes) else chunk
            if isinstance(data, dict):
                self.live.add(data)
        return self.live

    def answer(self) -> dict[str, Any]:
        """The chat.completion the chunks add up to."""
        if all(isinstance(c, bytes) for c in self.chunks):
            return AnswerBuilder.from_chunks(self.chunks)  # type: ignore[arg-type]
        builder = AnswerBuilder()
        for chunk in self.chunks:
            data = json.loads(chunk) if isinstance(chunk, bytes) else chunk
            if isinstance(data, dict):
                builder.add(data)
        return builder.body()


class Relay:
    """An upstream stream as the client's frames, with frames held back until released."""

    def __init__(self, events: EventStream, t: Translator | None, codec: ClientCodec, tap: ChatTap | None) -> None:
        self.events = events
        self.translator = t
        self.codec = codec
        self.tap = tap
        self.seen = 0  # upstream events passed on: the estimate of output tokens of a stream cut short
        self._batches = events.batches().__aiter__()
        self._held: list[Frames] = []
        self._pending: asyncio.Task[Any] | None = None
        self._ended = False

    @property
    def dropped(self) -> tuple[str, ...]:
        return tuple(self.translator.dropped) if self.translator is not None else ()

    async def _read(self) -> Frames | None:
        """The frames of the next network read that has any; None at the stream's normal end."""
        while True:
            if self._pending is not None:
                task, self._pending = self._pending, None
                batch = await task
            else:
                try:
                    batch = await self._batches.__anext__()
                except StopAsyncIteration:
                    batch = None
            if batch is None:
                self._ended = True
                return None
            frames = self._frames(batch)
            if frames:
                return frames

    async def _next_batch(self) -> Any:
        try:
            return await self._batches.__anext__()
        except StopAsyncIteration:
            return None

    def _frames(self, batch: list[tuple[bytes | None, bytes]]) -> Frames:
        out: Frames = []
        codec, tap, t = self.codec, self.tap, self.translator
        self.seen += len(batch)
        if t is None:
            for name, data in batch:
                frame = codec.frame(name, data)
                if frame is not None:
                    out.append(frame)
                if tap is not None:
                    with answer_errors(self.events.where):
                        tap.upstream(name, data, None)
            return out
        with answer_errors(self.events.where):
            for name, data in batch:
                parsed = json.loads(data)
                if tap is not None:
                    tap.upstream(name, data, parsed)
                for event, payload in t.event(name.decode() if name else None, parsed):
                    frame = codec.frame_event(event, payload)
                    if frame is not None:
                        out.append(frame)
                    if tap is not None:
                        tap.client(payload)
        return out

    def ending(self) -> bytes:
        """What closes the client's stream after the upstream's ended normally."""
        tail = b""
        if self.translator is not None:
            with answer_errors(self.events.where):
                for event, payload in self.translator.end():
                    frame = self.codec.frame_event(event, payload)
                    if frame is not None:
                        tail += frame
                    if self.tap is not None:
                        self.tap.client(payload)
        return tail + self.codec.stream_end

    async def first(self, timeout: float) -> None:
        """Wait for the first frames (held), within ``timeout``; ProviderError when the stream
        times out, ends empty or fails there."""
        try:
            async with asyncio.timeout(timeout):
                frames = await self._read()
        except TimeoutError:
            raise ProviderError(ErrorKind.TIMEOUT, f"{self.events.where}: nothing streamed in {timeout:.1f}s") from None
        if frames is None:
            raise ProviderError(ErrorKind.PROTOCOL, f"{self.events.where}: the stream ended empty")
        self._held.append(frames)

    async def hold(self, tokens: int, ms: int) -> None:
        """Read ahead until about ``tokens`` output tokens are held, ``ms`` passed, or the stream ended."""
        assert self.tap is not None, "a held stream needs its answer in chat's shape"
        builder = self.tap.start_live()
        deadline = time.monotonic() + ms / 1000
        while not self._ended and held_tokens(builder) < tokens:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            if self._pending is None:
                self._pending = asyncio.ensure_future(self._next_batch())
            done, _ = await asyncio.wait({self._pending}, timeout=left)
            if not done:
                break
            frames = await self._read()  # takes the pending batch
            if frames is None:
                break
            self._held.append(frames)
        self.tap.live = None

    def partial_answer(self) -> dict[str, Any]:
        assert self.tap is not None
        return self.tap.answer()

    def estimated_usage(self, input_tokens: int) -> Usage:
        """Usage of a stream closed before the upstream reported it: the input estimate, and the
        output passed on so far (words of a held answer, else one token per event)."""
        output = self.seen
        if self.tap is not None and self.tap.chunks:
            builder = self.tap.start_live()
            self.tap.live = None
            output = max(held_tokens(builder), 1)
        return Usage(input_tokens=input_tokens, output_tokens=output)

    async def next(self) -> Frames | None:
        """The next frames for the client (held ones first); None at the end."""
        if self._held:
            return self._held.pop(0)
        if self._ended:
            return None
        return await self._read()

    async def aclose(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
            await asyncio.gather(self._pending, return_exceptions=True)
            self._pending = None
        await self.events.aclose()


def held_tokens(builder: AnswerBuilder) -> int:
    """Output tokens held so far, counted as words of text and tool arguments (about one token each)."""
    text = "".join(builder.content)
    for call in builder.tool_calls.values():
        text += " " + call["function"]["arguments"]
    return len(text.split())
