"""The sidecar's HTTP/1.1 client for provider calls: pooled keep-alive connections, nothing else.

A provider call is one POST of a JSON body, answered whole or as a stream. Against the same
server, one sequential call costs aiohttp's client 190-205 µs of CPU and this client 77-96 µs (a
bare asyncio protocol that only writes and counts bytes: 47 µs). That difference was more than the
rest of the sidecar's own work on a request. This client does only what a provider call needs:

- one request at a time per connection; idle connections are kept per origin (scheme, host, port)
  for ``idle_seconds`` and reused; a connection the server closed is never reused;
- TLS for ``https`` origins (the system's default context), ``Host``, ``Content-Length``;
- the response parsed by llhttp (``httptools``): chunked or sized bodies, keep-alive as the server
  says; ``gzip`` / ``deflate`` bodies decoded, though the request asks for ``identity``;
- the aiohttp surface the providers use: ``post(url, data=, headers=, timeout=ClientTimeout)`` and a
  response with ``status``, ``headers`` (lower-case names), ``read()``, ``content.iter_any()``,
  ``release()``, ``close()``; ``timeout.total`` bounds connecting, the headers and ``read()``,
  ``timeout.sock_read`` each wait for data.

Failures raise what aiohttp's would map to: :class:`asyncio.TimeoutError`, :class:`OSError`
(``ConnectionError`` subclasses: refused, reset, closed early) and :class:`BodyError` (the body
broke off after the headers), which :class:`modelroute.providers.http.network_errors` turns into
``ProviderError``. The batch API's file transfers keep using aiohttp.
"""

from __future__ import annotations

import asyncio
import ssl
import time
import zlib
from collections import deque
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import httptools

USER_AGENT = "modelroute-sidecar"
#: Pause reading a stream when this much is buffered unread; resume below a quarter of it.
HIGH_WATER = 256 * 1024
#: A response released before its end (a stream's ``[DONE]`` comes before the chunked body's last
#: chunk) keeps its connection for the pool if the end arrives within this long, with at most
#: DRAIN_BYTES more body, which is thrown away; otherwise the connection is closed.
DRAIN_SECONDS, DRAIN_BYTES = 1.0, 64 * 1024


class BodyError(ConnectionError):
    """The connection broke after the response headers, before the body was complete."""


class ClosedBeforeAnswer(ConnectionResetError):
    """The server closed the connection before answering (on a reused connection: retried once)."""


Origin = tuple[str, str, int]


class Transport:
    def __init__(self, *, idle_seconds: float = 60.0, max_idle_per_origin: int = 64,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.idle_seconds = idle_seconds
        self.max_idle = max_idle_per_origin
        self._idle: dict[Origin, deque[tuple[float, _Connection]]] = {}
        self._ssl = ssl_context  # None: the system's default context, made on the first https call
        self._targets: dict[str, tuple[Origin, bytes]] = {}
        self.closed = False

    async def post(self, url: str, *, data: bytes, headers: Mapping[str, str],
                   timeout: aiohttp.ClientTimeout | None = None) -> Response:
        origin, head = self._target(url)
        deadline = time.monotonic() + timeout.total if timeout is not None and timeout.total else None
        idle = timeout.sock_read if timeout is not None else None
        request = _request(head, headers, data)
        conn = self._take(origin)
        if conn is not None:  # a kept-alive connection the server may have just closed: one retry
            try:
                return await self._exchange(conn, request, origin, deadline, idle)
            except ClosedBeforeAnswer:
                pass
        conn = await _within(self._connect(origin), deadline)
        return await self._exchange(conn, request, origin, deadline, idle)

    async def _exchange(self, conn: _Connection, request: bytes, origin: Origin, deadline: float | None,
                        idle: float | None) -> Response:
        response = conn.send(request, self, origin, deadline, idle)
        try:
            await _within(response._headers_ready(), deadline, idle)
        except BaseException:
            response.close()
            raise
        return response

    def _target(self, url: str) -> tuple[Origin, bytes]:
        """The origin and the request line plus Host header of ``url`` (parsed once per URL)."""
        found = self._targets.get(url)
        if found is None:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"not an http(s) URL: {url!r}")
            port = parts.port or (443 if parts.scheme == "https" else 80)
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            host = parts.netloc.rpartition("@")[2]  # as written: brackets of an IPv6 literal, the port
            head = f"POST {target} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {USER_AGENT}\r\nAccept-Encoding: identity\r\n"
            found = self._targets[url] = ((parts.scheme, parts.hostname, port), head.encode())
            if len(self._targets) > 256:
                self._targets.pop(next(iter(self._targets)))
        return found

    def _take(self, origin: Origin) -> _Connection | None:
        pool = self._idle.get(origin)
        now = time.monotonic()
        while pool:
            since, conn = pool.pop()
            if conn.reusable and now - since < self.idle_seconds:
                return conn
            conn.close()
        return None

    def _put(self, origin: Origin, conn: _Connection) -> None:
        if self.closed or not conn.reusable:
            conn.close()
            return
        pool = self._idle.setdefault(origin, deque())
        if len(pool) >= self.max_idle:
            pool.popleft()[1].close()
        pool.append((time.monotonic(), conn))

    async def _connect(self, origin: Origin) -> _Connection:
        scheme, host, port = origin
        tls = None
        if scheme == "https":
            tls = self._ssl = self._ssl or ssl.create_default_context()
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(_Connection, host, port, ssl=tls, server_hostname=host if tls else None)
        return conn

    async def close(self) -> None:
        self.closed = True
        for pool in self._idle.values():
            for _, conn in pool:
                conn.close()
        self._idle.clear()


def _request(head: bytes, headers: Mapping[str, str], body: bytes) -> bytes:
    lines = [head]
    for name, value in headers.items():
        if "\n" in value or "\r" in value or "\n" in name or "\r" in name:
            raise ValueError(f"header {name!r} holds a line break")
        lines.append(f"{name}: {value}\r\n".encode())  # UTF-8, as aiohttp writes them
    lines.append(b"Content-Length: %d\r\n\r\n" % len(body))
    lines.append(body)
    return b"".join(lines)


async def _within(waiting: Any, deadline: float | None, idle: float | None = None) -> Any:
    """Await ``waiting`` within the deadline and the idle timeout, whichever is sooner."""
    limits = [x for x in (deadline - time.monotonic() if deadline is not None else None, idle) if x is not None]
    if not limits:
        return await waiting
    async with asyncio.timeout(max(0.0, min(limits))):
        return await waiting


class _Connection(asyncio.Protocol):
    """One keep-alive connection; carries one :class:`Response` at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.response: Response | None = None
        self.reusable = False
        self._lost = False

    # -- asyncio.Protocol ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's and asyncio's TCP (or TLS) transports
        self.reusable = True

    def data_received(self, data: bytes) -> None:
        if self.response is None:  # nothing asked: the server must not talk now
            self.close()
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(BodyError(f"unparseable response: {exc}"))

    def eof_received(self) -> bool | None:
        self.reusable = False
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost, self.reusable = True, False
        response = self.response
        if response is None or response.complete:
            return
        if not response.status:
            response._fail(ClosedBeforeAnswer("the server closed the connection before answering"))
        elif "content-length" not in response.headers and "chunked" not in response.headers.get("transfer-encoding", ""):
            response._finish()  # a body that ends with the connection (HTTP/1.0 style)
        else:
            response._fail(BodyError("the server closed the connection mid-answer"))

    # -- llhttp callbacks --------------------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        assert self.response is not None
        self.response.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        assert self.response is not None
        status = self.parser.get_status_code()
        if status < 200:  # informational (103 Early Hints): the answer follows
            self.response.headers.clear()
            return
        self.response._start(status)

    def on_body(self, body: bytes) -> None:
        assert self.response is not None
        self.response._feed(body)

    def on_message_complete(self) -> None:
        response = self.response
        assert response is not None
        if not response.status:  # the end of an informational answer
            return
        self.reusable = self.reusable and not self._lost and self.parser.should_keep_alive()
        response._finish()

    # -- the client's side -------------------------------------------------------------------------

    def send(self, request: bytes, pool: Transport, origin: Origin, deadline: float | None, idle: float | None) -> Response:
        assert self.transport is not None
        self.response = Response(self, pool, origin, deadline, idle)
        self.parser = httptools.HttpResponseParser(self)
        self.transport.write(request)
        return self.response

    def _fail(self, exc: Exception) -> None:
        self.reusable = False
        if self.response is not None:
            self.response._fail(exc)
        self.close()

    def close(self) -> None:
        self.reusable = False
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()


class Response:
    """An upstream answer: headers first, the body whole (``read``) or as it comes (``iter_any``)."""

    def __init__(self, conn: _Connection, pool: Transport, origin: Origin, deadline: float | None, idle: float | None) -> None:
        self.status = 0
        self.headers: dict[str, str] = {}
        self.complete = False
        self._conn, self._pool, self._origin = conn, pool, origin
        self._deadline, self._idle = deadline, idle
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._error: Exception | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._decoder: Any = None
        self._released = False
        self._drained = 0
        self._streaming = False  # read as it comes: reading pauses while too much waits unread

    # fed by the connection

    def _start(self, status: int) -> None:
        self.status = status
        encoding = self.headers.get("content-encoding", "").lower()
        if encoding in ("gzip", "deflate"):
            self._decoder = zlib.decompressobj(zlib.MAX_WBITS | 32)  # gzip or zlib header, detected
        self._wake()

    def _feed(self, data: bytes) -> None:
        if self._released:  # draining after release: the body's rest is not wanted
            self._drained += len(data)
            if self._drained > DRAIN_BYTES:
                self._conn.close()
            return
        if self._decoder is not None:
            data = self._decoder.decompress(data)
            if not data:
                return
        self._chunks.append(data)
        self._buffered += len(data)
        if self._streaming and self._buffered > HIGH_WATER and self._conn.transport is not None:
            self._conn.transport.pause_reading()
        self._wake()

    def _finish(self) -> None:
        if self._released:  # the end of a drained body: the connection can serve again
            self.complete = True
            self._conn.response = None
            self._pool._put(self._origin, self._conn)
            return
        if self._decoder is not None:
            tail = self._decoder.flush()
            if tail:
                self._chunks.append(tail)
        self.complete = True
        self._wake()

    def _fail(self, exc: Exception) -> None:
        self._error = self._error or exc
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _wait(self) -> None:
        if self._error is not None:
            raise self._error
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await _within(self._waiter, self._deadline, self._idle)
        finally:
            self._waiter = None
        if self._error is not None:
            raise self._error

    async def _headers_ready(self) -> None:
        while not self.status:
            await self._wait()

    # the aiohttp surface the providers use

    @property
    def content(self) -> Response:
        return self

    async def read(self) -> bytes:
        while not self.complete:
            await self._wait()
        body = b"".join(self._chunks)
        self._chunks.clear()
        self.release()
        return body

    async def readany(self) -> bytes:
        """Everything that arrived since the last call, in one piece (waiting when nothing has); b""
        at the end, when the connection is given back. Reads that came in while the reader was
        busy are joined: a stream's events that arrived together are handled, and leave, together."""
        self._streaming = True
        chunks = self._chunks
        while not chunks:
            if self.complete:
                self.release()
                return b""
            await self._wait()
        data = chunks.popleft() if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        if self._buffered >= HIGH_WATER and self._conn.transport is not None:
            self._conn.transport.resume_reading()
        self._buffered = 0
        return data

    async def iter_any(self) -> AsyncIterator[bytes]:
        """The body's bytes as they arrive (each ``sock_read`` wait bounded); release at the end."""
        self._streaming = True
        while True:
            while self._chunks:
                chunk = self._chunks.popleft()
                self._buffered -= len(chunk)
                if self._buffered < HIGH_WATER // 4 and self._conn.transport is not None:
                    self._conn.transport.resume_reading()
                yield chunk
            if self.complete:
                self.release()
                return
            await self._wait()

    def release(self) -> None:
        """Give the connection back: to the pool when the answer was read whole (or its rest
        arrives soon, see DRAIN_SECONDS), else closed."""
        if self._released:
            return
        self._released = True
        self._chunks.clear()
        if self.complete and self._error is None:
            self._conn.response = None
            self._pool._put(self._origin, self._conn)
        elif self._error is None and self.status and self._conn.reusable:
            if self._conn.transport is not None:
                self._conn.transport.resume_reading()
            asyncio.get_running_loop().call_later(DRAIN_SECONDS, self._drain_timeout)
        else:
            self._conn.response = None
            self._conn.close()

    def _drain_timeout(self) -> None:
        if not self.complete:
            self._conn.close()

    def close(self) -> None:
        self._released = True
        self._conn.response = None
        self._conn.close()  # (a close after release() may cut a drain short: it means it)

    async def __aenter__(self) -> Response:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.release()
