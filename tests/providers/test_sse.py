"""The SSE parser: events come out the same however the bytes are cut, on the fast path for whole
one-line ``data:`` events and on the general path for every other shape."""

from __future__ import annotations

import random

import pytest

from modelroute.providers.sse import SSEParser

EVENTS = [b'{"id":"c","choices":[{"delta":{"content":"w%d"}}]}' % i for i in range(40)] + [b"[DONE]"]
RAW = b"".join(b"data: " + e + b"\n\n" for e in EVENTS)


def parse(pieces: list[bytes]) -> list[tuple[bytes | None, bytes]]:
    parser = SSEParser()
    out = [event for piece in pieces for event in parser.feed(piece)]
    return out + parser.close()


def byte_by_byte(raw: bytes) -> list[tuple[bytes | None, bytes]]:
    """The general path only: no one-byte piece is a run of whole events."""
    return parse([bytes([b]) for b in raw])


@pytest.mark.parametrize("raw", [
    RAW,
    RAW.replace(b"data: ", b"data:"),  # no space after the colon
    b"event: delta\n" + RAW,  # a named event
    RAW.replace(b"\n", b"\r\n"),  # CRLF line ends
    b": keep-alive\n\n" + RAW,  # a comment
    RAW.replace(b'data: {"id":"c","choices":[{"delta":{"content":"w3"}}]}', b'data: {"a":\ndata: 1}'),  # two data lines
], ids=["plain", "no-space", "named", "crlf", "comment", "multi-line"])
def test_events_are_the_same_however_the_bytes_are_cut(raw: bytes) -> None:
    expected = byte_by_byte(raw)
    assert parse([raw]) == expected
    rng = random.Random(7)
    for _ in range(300):
        cuts = sorted(rng.sample(range(1, len(raw)), rng.randint(1, 8)))
        assert parse([raw[i:j] for i, j in zip([0, *cuts], [*cuts, len(raw)])]) == expected


def test_whole_events_take_the_fast_path_and_match_the_stream() -> None:
    assert parse([RAW]) == [(None, e) for e in EVENTS]
    parser = SSEParser()
    assert parser.feed(b"data: 1\n\ndata: 2\n\n") == [(None, b"1"), (None, b"2")]
    assert parser.feed(b"data: 3\n\nda") == [(None, b"3")]  # a partial event: the general path keeps it
    assert parser.feed(b"ta: 4\n\n") == [(None, b"4")]
