"""Server-sent events: an incremental parser over raw byte chunks, and the encoder.

Faster and laxer about line length than reading line by line; yields ``(event, data)`` with
``event`` None when the stream names none (OpenAI) and ``data`` the joined ``data:`` lines.
"""

from __future__ import annotations

from typing import AsyncIterator


class SSEParser:
    __slots__ = ("_buf", "_event", "_data", "exact")

    def __init__(self) -> None:
        self._buf = b""
        self._event: bytes | None = None
        self._data: list[bytes] = []
        #: The last chunk fed was exactly its events, framed as :func:`encode` frames them: the
        #: chunk's bytes can stand for the events (a pass-through forwards them as they came).
        self.exact = False

    def feed(self, chunk: bytes) -> list[tuple[bytes | None, bytes]]:
        """Events completed by ``chunk``."""
        if not self._buf and not self._data and chunk.endswith(b"\n\n") and b"\r" not in chunk:
            simple = _simple(chunk)  # the usual shape: whole events, one ``data:`` line each
            if simple is not None:
                self.exact = True
                return simple
        self.exact = False
        buf = self._buf + chunk if self._buf else chunk
        events: list[tuple[bytes | None, bytes]] = []
        start = 0
        while True:
            end = buf.find(b"\n", start)
            if end < 0:
                break
            line = buf[start:end]
            start = end + 1
            if line.endswith(b"\r"):
                line = line[:-1]
            if not line:
                if self._data:
                    events.append((self._event, b"\n".join(self._data)))
                self._event, self._data = None, []
            elif line.startswith(b"data:"):
                self._data.append(line[6:] if line[5:6] == b" " else line[5:])
            elif line.startswith(b"event:"):
                self._event = line[6:].strip()
            # comments (":"), id: and retry: lines are ignored
        self._buf = buf[start:]
        return events

    def close(self) -> list[tuple[bytes | None, bytes]]:
        """An event left unterminated at the end of the stream, if any."""
        events = self.feed(b"\n\n") if self._buf or self._data else []
        return events


def _simple(chunk: bytes) -> list[tuple[bytes | None, bytes]] | None:
    """The events of a chunk made only of whole events of one ``data: `` line, each with or
    without one ``event: `` line before it (OpenAI's chunks; Anthropic's and the Responses API's
    named events), or None for any other shape."""
    events: list[tuple[bytes | None, bytes]] = []
    for part in chunk[:-2].split(b"\n\n"):
        if part.startswith(b"data: "):
            if b"\n" in part:
                return None
            events.append((None, part[6:]))
        elif part.startswith(b"event: "):
            head, sep, data = part.partition(b"\ndata: ")
            if not sep or b"\n" in data or b" " in head[7:]:
                return None
            events.append((head[7:], data))
        else:
            return None
    return events


async def iter_events(chunks: AsyncIterator[bytes]) -> AsyncIterator[tuple[bytes | None, bytes]]:
    parser = SSEParser()
    async for chunk in chunks:
        for event in parser.feed(chunk):
            yield event
    for event in parser.close():
        yield event


def encode(data: bytes, event: str | None = None) -> bytes:
    """One SSE event. ``data`` must not contain newlines (JSON from json.dumps has none)."""
    if event is None:
        return b"data: " + data + b"\n\n"
    return b"event: " + event.encode() + b"\ndata: " + data + b"\n\n"


DONE = b"data: [DONE]\n\n"
