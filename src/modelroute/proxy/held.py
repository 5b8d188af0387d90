"""An upstream stream with a hold: chunks read ahead of the client, for the first-chunk check and
for a cascade's commit point.

A stream is opened and its first chunk awaited inside the attempt (so a failure there falls back
invisibly). With a commit point (``hold(tokens, ms)``) more chunks are held until about ``tokens``
output tokens or ``ms`` milliseconds, whichever comes first; the reviewer then judges the partial
answer, and the stream is either released to the client or closed and escalated. A chunk still in
flight when the time runs out is kept as a pending task, so the stream stays intact.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, AsyncIterator, Awaitable, Callable, TypeVar

from modelroute import _json as json
from modelroute.providers import ChunkStream, ErrorKind, ProviderError, Usage
from modelroute.routing.answers import AnswerBuilder


T = TypeVar("T")


async def open_first(where: str, timeout: float,
                     start: Callable[[], Awaitable[tuple[ChunkStream, AsyncIterator[T]]]]) -> tuple[ChunkStream, AsyncIterator[T], T]:
    """Open a stream (``start``) and wait for its first item, both within ``timeout``. A stream that
    times out, ends empty or fails there is closed, and the failure is a ProviderError, so the
    attempt falls back before the client has seen a byte. ``where`` is ``provider/model``."""
    stream: ChunkStream | None = None
    try:
        async with asyncio.timeout(timeout):
            stream, items = await start()
            first = await items.__anext__()
    except TimeoutError:
        if stream is not None:
            await stream.aclose()
        raise ProviderError(ErrorKind.TIMEOUT, f"{where}: nothing streamed in {timeout:.1f}s") from None
    except StopAsyncIteration:
        assert stream is not None
        await stream.aclose()
        raise ProviderError(ErrorKind.PROTOCOL, f"{where}: the stream ended empty") from None
    except ProviderError:
        if stream is not None:
            await stream.aclose()
        raise
    return stream, items, first


class HeldStream:
    def __init__(self, stream: ChunkStream, chunks: AsyncIterator[bytes], first: bytes) -> None:
        self.stream = stream
        self._chunks = chunks
        self._held: list[bytes] = [first]
        self._pending: asyncio.Task[bytes] | None = None
        self._ended = False
        self._builder: AnswerBuilder | None = None

    async def hold(self, tokens: int, ms: int) -> None:
        """Read ahead until about ``tokens`` output tokens are held, ``ms`` passed, or the stream ended."""
        builder = self._builder = AnswerBuilder()
        for chunk in self._held:
            builder.add(json.loads(chunk))
        deadline = time.monotonic() + ms / 1000
        while not self._ended and _tokens(builder) < tokens:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            if self._pending is None:
                self._pending = asyncio.ensure_future(self._chunks.__anext__())
            done, _ = await asyncio.wait({self._pending}, timeout=left)
            if not done:
                return
            task, self._pending = self._pending, None
            try:
                chunk = task.result()
            except StopAsyncIteration:
                self._ended = True
                return
            self._held.append(chunk)
            builder.add(json.loads(chunk))

    def partial_answer(self) -> dict[str, Any]:
        """What the held chunks say, as a chat.completion body."""
        assert self._builder is not None, "hold() first"
        return self._builder.body()

    def estimated_usage(self, input_tokens: int) -> Usage:
        """Usage of a stream closed before its usage chunk: the input estimate and the held output."""
        return Usage(input_tokens=input_tokens, output_tokens=_tokens(self._builder) if self._builder else len(self._held))

    @property
    def ready(self) -> bool:
        """Whether :meth:`next` has a chunk without waiting for the upstream."""
        return bool(self._held) or (not self._ended and self._pending is None and self.stream.ready > 0)

    async def next(self) -> bytes | None:
        """The next chunk for the client (held ones first); None at the end."""
        if self._held:
            return self._held.pop(0)
        if self._ended:
            return None
        try:
            if self._pending is not None:
                task, self._pending = self._pending, None
                return await task
            return await self._chunks.__anext__()
        except StopAsyncIteration:
            self._ended = True
            return None

    async def aclose(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
            await asyncio.gather(self._pending, return_exceptions=True)
            self._pending = None
        await self.stream.aclose()


def _tokens(builder: AnswerBuilder | None) -> int:
    """Output tokens held so far, counted as words of text and tool arguments (about one token each)."""
    if builder is None:
        return 0
    text = "".join(builder.content)
    for call in builder.tool_calls.values():
        text += " " + call["function"]["arguments"]
    return len(text.split())
