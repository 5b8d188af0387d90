"""The sidecar's HTTP/1.1 client against real servers on 127.0.0.1: raw asyncio servers that answer
exactly as told (kept-alive or closed connections, chunked, gzip, bodies that end with the
connection), and a TLS server with a certificate made for the test."""

from __future__ import annotations

import asyncio
import gzip
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator, Callable
from typing import Any
from pathlib import Path

import aiohttp
import pytest

from modelroute.providers.transport import BodyError, Transport

Answer = Callable[[bytes], bytes]  # request bytes -> response bytes


class RawServer:
    """Reads one request at a time (headers and a sized body), writes ``answer(request)``, and
    closes the connection after each answer when ``close_after`` is set (without saying so)."""

    def __init__(self, answer: Answer, close_after: bool = False) -> None:
        self.answer, self.close_after = answer, close_after
        self.connections = 0
        self.requests: list[bytes] = []
        self.server: asyncio.Server | None = None

    async def start(self, tls: ssl.SSLContext | None = None) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=tls)
        port = self.server.sockets[0].getsockname()[1]
        return f"{'https' if tls else 'http'}://{'localhost' if tls else '127.0.0.1'}:{port}/v1/chat/completions"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
                request = head + await reader.readexactly(length)
                self.requests.append(request)
                writer.write(self.answer(request))
                await writer.drain()
                if self.close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    async def close(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


def sized(body: bytes, *headers: str) -> bytes:
    extra = "".join(f"{h}\r\n" for h in headers)
    return f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{extra}Content-Length: {len(body)}\r\n\r\n".encode() + body


def chunked(*parts: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n" + \
        b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"


@pytest.fixture
async def transport() -> AsyncIterator[Transport]:
    t = Transport()
    yield t
    await t.close()


async def serve(answer: Answer, close_after: bool = False) -> tuple[RawServer, str]:
    server = RawServer(answer, close_after)
    return server, await server.start()


async def test_kept_alive_connections_are_reused_one_request_at_a_time(transport: Transport) -> None:
    server, url = await serve(lambda req: sized(b'{"n": %d}' % req.count(b"x")))
    bodies = [await (await transport.post(url, data=b"x" * n, headers={"Authorization": "Bearer k"})).read() for n in range(5)]
    assert bodies == [b'{"n": %d}' % n for n in range(5)]
    assert server.connections == 1
    first = server.requests[0].split(b"\r\n\r\n")[0].decode()
    assert first.startswith("POST /v1/chat/completions HTTP/1.1\r\n") and "Authorization: Bearer k" in first
    assert f"Host: 127.0.0.1:{url.split(':')[2].split('/')[0]}" in first and "Content-Length: 0" in first
    await server.close()


async def test_a_connection_the_server_closed_is_not_reused(transport: Transport) -> None:
    server, url = await serve(lambda req: sized(b"{}"), close_after=True)
    for _ in range(3):
        assert await (await transport.post(url, data=b"{}", headers={})).read() == b"{}"
        await asyncio.sleep(0.01)  # the server's close arrives: that connection is never taken again
    assert server.connections == 3
    await server.close()


class DropsSecond(RawServer):
    """Answers the first request of each connection; closes at the second without answering, as a
    server does whose idle timeout fires just as a kept-alive connection is reused."""

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        for index in range(2):
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
            self.requests.append(head + await reader.readexactly(length))
            if index == 1:
                break
            writer.write(sized(b'{"n": %d}' % len(self.requests)))
            await writer.drain()
        writer.close()


async def test_a_kept_alive_connection_closed_before_answering_is_retried_once_on_a_new_one(transport: Transport) -> None:
    server = DropsSecond(lambda req: b"")
    url = await server.start()
    assert await (await transport.post(url, data=b"{}", headers={})).read() == b'{"n": 1}'
    assert await (await transport.post(url, data=b"{}", headers={})).read() == b'{"n": 3}'  # 2 was dropped
    assert server.connections == 2 and len(server.requests) == 3
    await server.close()
    silent, url = await serve(lambda req: b"", close_after=True)  # a new connection is not retried
    with pytest.raises(ConnectionResetError):
        await transport.post(url, data=b"{}", headers={})
    assert silent.connections == 1
    await silent.close()


async def test_an_informational_answer_before_the_real_one_is_skipped(transport: Transport) -> None:
    server, url = await serve(lambda req: b"HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n" + sized(b'{"ok": 1}'))
    resp = await transport.post(url, data=b"{}", headers={})
    assert resp.status == 200 and "link" not in resp.headers and await resp.read() == b'{"ok": 1}'
    await server.close()


async def test_chunked_bodies_arrive_as_they_come_and_gzip_is_decoded(transport: Transport) -> None:
    events = [b"data: {\"a\": 1}\n\n", b"data: {\"a\": 2}\n\n", b"data: [DONE]\n\n"]
    server, url = await serve(lambda req: chunked(*events))
    resp = await transport.post(url, data=b"{}", headers={})
    assert resp.status == 200 and resp.headers["content-type"] == "text/event-stream"
    got = [chunk async for chunk in resp.content.iter_any()]
    assert b"".join(got) == b"".join(events)
    await server.close()
    packed = gzip.compress(b'{"answer": "' + b"y" * 5000 + b'"}')
    server, url = await serve(lambda req: sized(packed, "Content-Encoding: gzip"))
    assert await (await transport.post(url, data=b"{}", headers={})).read() == b'{"answer": "' + b"y" * 5000 + b'"}'
    await server.close()


async def test_a_body_that_ends_with_the_connection_is_whole_and_a_cut_one_is_an_error(transport: Transport) -> None:
    server, url = await serve(lambda req: b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{\"whole\": true}", close_after=True)
    assert await (await transport.post(url, data=b"{}", headers={})).read() == b'{"whole": true}'
    await server.close()
    server, url = await serve(lambda req: b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"cut", close_after=True)
    resp = await transport.post(url, data=b"{}", headers={})
    with pytest.raises(BodyError):
        await resp.read()
    await server.close()


async def test_large_answers_do_not_stall_and_errors_keep_their_status(transport: Transport) -> None:
    big = b'{"x": "' + b"z" * 2_000_000 + b'"}'
    server, url = await serve(lambda req: sized(big) if b"big" in req else
                              b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\nContent-Length: 2\r\n\r\n{}")
    assert len(await (await transport.post(url, data=b"big", headers={})).read()) == len(big)
    resp = await transport.post(url, data=b"small", headers={})
    assert resp.status == 429 and resp.headers["retry-after"] == "7" and await resp.read() == b"{}"
    assert server.connections == 1
    await server.close()


async def test_timeouts_bound_the_answer_and_each_wait_for_data(transport: Transport) -> None:
    async def never(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1000)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
        await asyncio.sleep(5)

    server = await asyncio.start_server(never, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1/x"
    resp = await transport.post(url, data=b"{}", headers={}, timeout=aiohttp.ClientTimeout(total=0.3))
    with pytest.raises(asyncio.TimeoutError):
        await resp.read()
    resp = await transport.post(url, data=b"{}", headers={}, timeout=aiohttp.ClientTimeout(sock_read=0.2))
    chunks = resp.content.iter_any()
    assert await chunks.__anext__() == b"hello"
    with pytest.raises(asyncio.TimeoutError):
        await chunks.__anext__()
    server.close()
    with pytest.raises(ConnectionRefusedError):
        await transport.post(url, data=b"{}", headers={})
    with pytest.raises(ValueError):
        await transport.post(url, data=b"{}", headers={"x-evil": "a\r\nInjected: 1"})


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to make a certificate")
async def test_https_origins_speak_tls(tmp_path: Path) -> None:
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"],
                   check=True, capture_output=True)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    server = RawServer(lambda req: sized(b'{"tls": true}'))
    url = await server.start(server_ctx)
    trusting = Transport(ssl_context=ssl.create_default_context(cafile=str(cert)))
    assert await (await trusting.post(url, data=b"{}", headers={})).read() == b'{"tls": true}'
    assert await (await trusting.post(url, data=b"{}", headers={})).read() == b'{"tls": true}'
    assert server.connections == 1
    await trusting.close()
    default = Transport()  # the system's trust store does not know the test's certificate
    with pytest.raises(ssl.SSLCertVerificationError):
        await default.post(url, data=b"{}", headers={})
    await default.close()
    await server.close()


async def test_a_stream_left_at_its_last_event_keeps_its_connection_once_the_end_arrives(transport: Transport) -> None:
    """A stream's [DONE] comes before the chunked body's last chunk: released there, the
    connection waits for that last chunk and goes back to the pool."""
    connections = 0

    async def late_end(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        while await reader.readuntil(b"\r\n\r\n"):
            await reader.readexactly(2)
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"e\r\ndata: [DONE]\n\n\r\n")
            await writer.drain()
            await asyncio.sleep(0.05)
            writer.write(b"0\r\n\r\n")

    server = await asyncio.start_server(late_end, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1/x"
    for _ in range(2):
        resp = await transport.post(url, data=b"{}", headers={})
        assert await resp.content.iter_any().__anext__() == b"data: [DONE]\n\n"
        resp.release()  # as a provider's stream does at [DONE]
        await asyncio.sleep(0.15)
    assert connections == 1
    server.close()


def completion_or_stream(request: bytes) -> bytes:
    """A minimal OpenAI upstream: a chat.completion, or its stream when the body asks for one."""
    usage = b'{"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}'
    if b'"stream":true' in request.replace(b" ", b""):
        return chunked(b'data: {"choices":[{"index":0,"delta":{"content":"hi"}}],"usage":null}\n\n',
                       b'data: {"choices":[],"usage":' + usage + b"}\n\n", b"data: [DONE]\n\n")
    return sized(b'{"object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},'
                 b'"finish_reason":"stop"}],"usage":' + usage + b"}")


async def test_the_sidecar_keeps_its_upstream_connection_across_answers_and_streams(make_sidecar: Any) -> None:
    import openai

    from tests.support import APP_KEY, quickstart

    server, url = await serve(completion_or_stream)
    sidecar = await make_sidecar(quickstart(url.removesuffix("/chat/completions")))
    hello = [{"role": "user", "content": "hi"}]
    async with openai.AsyncOpenAI(base_url=sidecar.base_url, api_key=APP_KEY, max_retries=0) as client:
        for _ in range(3):
            assert (await client.chat.completions.create(model="auto", messages=hello)).choices[0].message.content == "hi"
        for _ in range(3):
            stream = await client.chat.completions.create(model="auto", messages=hello, stream=True)
            assert "".join([c.choices[0].delta.content or "" async for c in stream if c.choices]) == "hi"
            await asyncio.sleep(0.05)  # the stream's last chunk reaches the sidecar: its connection is pooled
    assert len(server.requests) == 6 and server.connections == 1
    await server.close()
