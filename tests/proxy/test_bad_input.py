"""Bad input gets a clear OpenAI-format error with the right status, and the sidecar stays up."""

from __future__ import annotations

import aiohttp
import openai
import pytest

from tests.support import Sidecar, SidecarFactory, quickstart
from modelroute.testing.fake_openai import FakeOpenAI


async def post(sidecar: Sidecar, path: str, data: bytes, headers: dict[str, str] | None = None) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as http:
        async with http.post(sidecar.url + path, data=data, headers=headers or {"Content-Type": "application/json"}) as resp:
            return resp.status, await resp.json()


@pytest.mark.parametrize(
    ("data", "status", "code"),
    [
        (b"{not json", 400, "invalid_json"),
        (b"", 400, "invalid_json"),
        (b"[1, 2]", 400, "invalid_json"),
        (b'{"messages": [{"role": "user", "content": "x"}]}', 400, "missing_required_parameter"),
        (b'{"model": "auto"}', 400, "missing_required_parameter"),
        (b'{"model": "auto", "messages": "hello"}', 400, "invalid_type"),
        (b'{"model": "auto", "messages": []}', 400, "invalid_type"),
        (b'{"model": 7, "messages": [{"role": "user", "content": "x"}]}', 400, "invalid_type"),
        (b'{"model": "auto", "messages": [{"content": "x"}]}', 400, "invalid_type"),
    ],
)
async def test_malformed_requests(sidecar: Sidecar, data: bytes, status: int, code: str) -> None:
    got, body = await post(sidecar, "/v1/chat/completions", data)
    assert got == status
    assert body["error"]["code"] == code
    assert body["error"]["type"] == "invalid_request_error"
    assert body["error"]["message"]


async def test_body_over_the_limit_is_413(make_sidecar: SidecarFactory, fake_openai: FakeOpenAI) -> None:
    sidecar = await make_sidecar(quickstart(fake_openai.base_url), max_body_bytes=1000)
    big = b'{"model": "auto", "messages": [{"role": "user", "content": "' + b"x" * 2000 + b'"}]}'
    status, body = await post(sidecar, "/v1/chat/completions", big)
    assert status == 413 and body["error"]["code"] == "request_too_large"
    status, _ = await post(sidecar, "/v1/chat/completions", b'{"model": "auto", "messages": [{"role": "user", "content": "hi"}]}')
    assert status == 200, "the sidecar did not stay up after a 413"


async def test_unknown_model_is_404_in_openai_format(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        await client.chat.completions.create(model="gpt-99", messages=[{"role": "user", "content": "x"}])
    assert info.value.body["code"] == "model_not_found"
    assert "gpt-99" in info.value.body["message"]


async def test_unknown_path_without_passthrough_is_openais_own_404(make_sidecar: SidecarFactory, fake_openai: FakeOpenAI) -> None:
    sidecar = await make_sidecar(quickstart(fake_openai.base_url, passthrough={"openai": "none"}))
    async with aiohttp.ClientSession() as http, http.get(sidecar.url + "/v1/nothing") as resp:
        body = await resp.json()
    assert resp.status == 404
    assert body == {"error": {"message": "Invalid URL (GET /v1/nothing)", "type": "invalid_request_error", "param": None, "code": None}}
    assert not fake_openai.calls()


async def test_another_method_on_a_routed_path_is_the_apis_own_answer(make_sidecar: SidecarFactory, fake_openai: FakeOpenAI) -> None:
    """GET /v1/chat/completions lists stored completions at OpenAI: it is not the sidecar's to
    refuse. With no pass-through provider, each API's own 404 for a URL it does not serve."""
    sidecar = await make_sidecar(quickstart(fake_openai.base_url, passthrough={"openai": "none", "anthropic": "none"}))
    async with aiohttp.ClientSession() as http, http.get(sidecar.url + "/v1/chat/completions") as resp:
        body = await resp.json()
    assert resp.status == 404 and body["error"]["message"] == "Invalid URL (GET /v1/chat/completions)"
    async with aiohttp.ClientSession() as http, http.get(sidecar.url + "/v1/messages") as resp:
        body = await resp.json()
    assert resp.status == 404
    assert body == {"type": "error", "error": {"type": "not_found_error", "message": "Not Found"}}


async def test_input_larger_than_every_context_window(make_sidecar: SidecarFactory, fake_openai: FakeOpenAI) -> None:
    doc = quickstart(fake_openai.base_url)
    for model in doc["spec"]["models"]:
        model["contextWindow"] = 100
    sidecar = await make_sidecar(doc)
    status, body = await post(sidecar, "/v1/chat/completions", b'{"model": "auto", "messages": [{"role": "user", "content": "' + b"y " * 400 + b'"}]}')
    assert status == 400 and body["error"]["code"] == "context_length_exceeded"
    assert fake_openai.calls() == []


async def test_health_and_readiness(sidecar: Sidecar) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(sidecar.url + "/healthz") as resp:
            assert resp.status == 200
        async with http.get(sidecar.url + "/readyz") as resp:
            body = await resp.json()
    assert body == {"status": "ready", "policy": "quickstart", "version": sidecar.holder.current.policy.version}


async def test_chunked_body_over_the_limit_is_413(make_sidecar: SidecarFactory, fake_openai: FakeOpenAI) -> None:
    sidecar = await make_sidecar(quickstart(fake_openai.base_url), max_body_bytes=1000)

    async def body():  # type: ignore[no-untyped-def]
        yield b'{"model": "auto", "messages": [{"role": "user", "content": "'
        for _ in range(10):
            yield b"x" * 200
        yield b'"}]}'

    async with aiohttp.ClientSession() as http:
        async with http.post(sidecar.url + "/v1/chat/completions", data=body(), headers={"Content-Type": "application/json"}) as resp:
            payload = await resp.json()
    assert resp.status == 413 and payload["error"]["code"] == "request_too_large"


@pytest.mark.parametrize("chunked", [False, True])
async def test_the_limit_is_exact(make_sidecar: SidecarFactory, fake_openai: FakeOpenAI, chunked: bool) -> None:
    sidecar = await make_sidecar(quickstart(fake_openai.base_url), max_body_bytes=1000)
    head, tail = b'{"model": "auto", "messages": [{"role": "user", "content": "', b'"}]}'

    async def send(size: int) -> int:
        data = head + b"x" * (size - len(head) - len(tail)) + tail
        assert len(data) == size

        async def gen():  # type: ignore[no-untyped-def]
            yield data[:500]
            yield data[500:]

        async with aiohttp.ClientSession() as http:
            async with http.post(sidecar.url + "/v1/chat/completions", data=gen() if chunked else data,
                                 headers={"Content-Type": "application/json"}) as resp:
                return resp.status

    assert await send(1000) == 200
    assert await send(1001) == 413
