"""An upstream that answers with broken HTTP (a bad status line, truncated headers or body, a bad
chunk size or length, a 2 MB header, bad gzip, NUL bytes, no answer at all): the sidecar's own
HTTP client turns each into a 502 naming the failure kind, within the attempt's time, and the
sidecar keeps serving its other models. Each case is a raw TCP server on 127.0.0.1 that reads the
request and writes the bytes below.
"""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from modelroute.testing.fake_openai import FakeOpenAI
from tests.support import SidecarFactory, quickstart

GOOD = json.dumps({"id": "x", "object": "chat.completion", "created": 1, "model": "m",
                   "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
                   "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}).encode()
SIZED = b"Content-Type: application/json\r\nContent-Length: " + str(len(GOOD)).encode() + b"\r\n\r\n" + GOOD
CHUNK = b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]}\n\n'
SSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"

#: case -> (bytes written, (status, failure kind) without and with streaming)
CASES: dict[str, tuple[bytes, tuple[str, str]]] = {
    "bad status line": (b"HTTP/1.1 abc OK\r\nContent-Length: 2\r\n\r\n{}", ("502 connect", "502 connect")),
    "not HTTP": (b"SSH-2.0-OpenSSH_9.6\r\n", ("502 connect", "502 connect")),
    "nothing": (b"", ("502 connect", "502 connect")),
    "truncated headers": (b"HTTP/1.1 200 OK\r\nContent-Type: appl", ("502 connect", "502 connect")),
    "headers then close": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", ("502 connect", "502 connect")),
    "short body": (b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n" + GOOD, ("502 connect", "502 connect")),
    "bad chunk size": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n", ("502 connect", "502 connect")),
    "negative length": (b"HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n" + GOOD, ("502 connect", "502 connect")),
    "length not a number": (b"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n" + GOOD, ("502 connect", "502 connect")),
    "2 MB header": (b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 2_000_000 + b"\r\nContent-Length: 2\r\n\r\n{}", ("502 protocol", "502 connect")),
    "bad gzip": (b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 10\r\n\r\n0123456789", ("502 connect", "502 connect")),
    "NUL bytes": (b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n\x00\x00\x00\x00", ("502 protocol", "502 connect")),
    "an HTML page": (b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 6\r\n\r\n<html>", ("502 protocol", "502 connect")),
    "a 502 HTML page": (b"HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\nContent-Length: 6\r\n\r\n<html>", ("502 server", "502 server")),
    "SSE without [DONE]": (SSE + CHUNK, ("502 protocol", "200 error event")),
    # valid HTTP the client must take
    "100 Continue first": (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n" + SIZED, ("200", "502 connect")),
    "HTTP/1.0, body to close": (b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n" + GOOD, ("200", "502 connect")),
    "SSE with lines that are not events": (SSE + CHUNK + b"!!garbage!!\n\ndata: [DONE]\n\n", ("502 protocol", "200")),
}


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("case", list(CASES))
async def test_broken_http_is_a_502_and_the_sidecar_serves_on(make_sidecar: SidecarFactory, fake_openai: FakeOpenAI,
                                                             case: str, stream: bool) -> None:
    payload, expected = CASES[case]

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(payload)
        try:
            await writer.drain()
        except ConnectionError:
            pass
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    doc = quickstart(f"http://127.0.0.1:{port}/v1")
    spec = doc["spec"]
    spec["providers"].append({"name": "good", "type": "openai", "baseURL": fake_openai.base_url, "apiKey": {"env": "TEST_PROVIDER_KEY"}})
    spec["models"][1]["provider"] = "good"  # gpt-4o-mini from the broken server, gpt-4o from a good one
    spec.update(fallbacks={}, pinnedModels=["gpt-4o-mini", "gpt-4o"], timeouts={"attemptSeconds": 2, "requestSeconds": 3})
    sidecar = await make_sidecar(doc)
    body = {"model": "gpt-4o-mini", "stream": stream, "messages": [{"role": "user", "content": "hi"}]}
    async with aiohttp.ClientSession() as http:
        async with asyncio.timeout(10), http.post(sidecar.url + "/v1/chat/completions", json=body) as resp:
            text = await resp.text()
        if resp.status == 502:
            got = f"502 {text.split('gpt-4o-mini (')[1].split(')')[0]}"
        else:
            got = "200 error event" if '"code":"stream_' in text.replace(' ', '') else str(resp.status)
        assert got == expected[stream], text[:300]
        async with http.post(sidecar.url + "/v1/chat/completions", json={**body, "model": "gpt-4o", "stream": False}) as resp:
            assert resp.status == 200, await resp.text()
    server.close()
    await server.wait_closed()
