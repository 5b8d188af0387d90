"""Pass-through: every path the sidecar does not route reaches the policy's provider unchanged, and
comes back unchanged, with the provider's key instead of the app's; big bodies stream both ways."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
from pathlib import Path
from typing import AsyncIterator

import aiohttp
import anthropic
import openai
import pytest
import yaml

from modelroute.report.prom import Samples
from modelroute.testing.fake_anthropic import FakeAnthropic
from modelroute.testing.fake_openai import FakeOpenAI
from tests.cli.test_cli import free_port, wait_ready
from tests.support import ANTHROPIC_KEY, APP_KEY, PROVIDER_KEY, Sidecar, SidecarFactory, mixed_policy, quickstart


@pytest.fixture
async def client(sidecar: Sidecar) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(base_url=sidecar.base_url, api_key=APP_KEY, max_retries=0) as c:
        yield c


def _sent_with_the_providers_key(fake: FakeOpenAI) -> None:
    for hit in fake.hits:
        assert hit.headers["Authorization"] == f"Bearer {PROVIDER_KEY}" and APP_KEY not in str(hit.headers)


async def test_model_endpoints_pass_through_unchanged(client: openai.AsyncOpenAI, fake_openai: FakeOpenAI, sidecar: Sidecar) -> None:
    moderation = await client.moderations.create(model="omni-moderation-latest", input="a harmless sentence")
    assert moderation.results[0].flagged is False
    assert fake_openai.hits[-1].path == "/v1/moderations" and fake_openai.hits[-1].body["input"] == "a harmless sentence"
    legacy = await client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Once upon a time")
    assert legacy.choices[0].text and fake_openai.hits[-1].path == "/v1/completions"
    streamed = [c async for c in await client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Once", stream=True)]
    assert len(streamed) > 1
    image = await client.images.generate(model="gpt-image-1", prompt="a small square")
    assert image.data and image.data[0].b64_json
    _sent_with_the_providers_key(fake_openai)
    async with aiohttp.ClientSession() as http, http.get(sidecar.url + "/metrics") as resp:
        text = await resp.text()
    samples = Samples.parse(text)
    assert samples.sum("modelroute_passthrough_total", path="/v1/moderations", provider="openai", status="200") == 1
    assert samples.sum("modelroute_passthrough_total", path="/v1/completions") == 2
    spans = [s for s in sidecar.finished_spans("passthrough ")]
    assert spans and spans[0].attributes["modelroute.route"] == "passthrough"


async def test_audio_upload_and_download_bytes_are_unchanged(client: openai.AsyncOpenAI, fake_openai: FakeOpenAI) -> None:
    audio = os.urandom(3 * 1024 * 1024 + 17)
    text = await client.audio.transcriptions.create(model="whisper-1", file=("talk.wav", io.BytesIO(audio)))
    assert text.text == f"transcribed {len(audio)} bytes of talk.wav (sha256 {hashlib.sha256(audio).hexdigest()[:16]})"
    hit = fake_openai.hits[-1]
    assert hit.files["file"].size == len(audio) and hit.fields["model"] == "whisper-1"
    speech = await client.audio.speech.create(model="gpt-4o-mini-tts", voice="alloy", input="hello")
    body = speech.content
    assert len(body) == fake_openai.speech_bytes
    _sent_with_the_providers_key(fake_openai)


async def test_files_and_vector_stores_pass_through(client: openai.AsyncOpenAI, fake_openai: FakeOpenAI) -> None:
    content = b"a document for retrieval\n" * 100
    uploaded = await client.files.create(file=("doc.txt", content), purpose="assistants")
    assert fake_openai.files[uploaded.id].content == content
    assert (await client.files.content(uploaded.id)).content == content
    assert [f.id for f in (await client.files.list()).data] == [uploaded.id]
    store = await client.vector_stores.create(name="docs", file_ids=[uploaded.id])
    assert (await client.vector_stores.retrieve(store.id)).name == "docs"
    assert [s.id for s in (await client.vector_stores.list()).data] == [store.id]
    await client.vector_stores.delete(store.id)
    await client.files.delete(uploaded.id)
    assert uploaded.id not in fake_openai.files
    _sent_with_the_providers_key(fake_openai)


async def test_models_answer_from_the_registry(client: openai.AsyncOpenAI, make_sidecar: SidecarFactory, fake_openai: FakeOpenAI) -> None:
    listed = await client.models.list()
    assert [m.id for m in listed.data] == ["auto", "gpt-4o-mini", "gpt-4o"]
    assert (await client.models.retrieve("gpt-4o")).owned_by == "openai"
    with pytest.raises(openai.NotFoundError) as info:
        await client.models.retrieve("gpt-9")
    assert info.value.body["code"] == "model_not_found"  # type: ignore[index]
    assert not fake_openai.hits  # the registry answered, not the provider


async def test_anthropic_paths_pass_through_to_the_anthropic_provider(make_sidecar: SidecarFactory, fake_openai: FakeOpenAI) -> None:
    fake = FakeAnthropic()
    await fake.start()
    try:
        make_sidecar.environ["TEST_ANTHROPIC_KEY"] = ANTHROPIC_KEY
        sidecar = await make_sidecar(mixed_policy(fake_openai.base_url, fake.url))
        async with anthropic.AsyncAnthropic(base_url=sidecar.url, api_key=APP_KEY, max_retries=0) as claude:
            models = await claude.models.list()
            assert [m.id for m in models.data][:2] == ["auto", "gpt-4o-mini"]  # the registry, in Anthropic's shape
            async with aiohttp.ClientSession() as http:  # an Anthropic path the sidecar does not serve
                async with http.get(sidecar.url + "/v1/organizations/me", headers={"anthropic-version": "2023-06-01",
                                                                               "x-api-key": APP_KEY}) as resp:
                    body = await resp.json()
            assert resp.status == 404 and body["error"]["type"] == "not_found_error"
            assert body["request_id"] == "req_fake"  # the provider's own answer, passed back
    finally:
        await fake.close()


async def test_an_error_body_that_echoes_the_key_is_redacted(make_sidecar: SidecarFactory, fake_openai: FakeOpenAI) -> None:
    fake_openai.api_key = "sk-a-different-key"  # refuses the sidecar's key; OpenAI's 401 body echoes part of it
    sidecar = await make_sidecar(quickstart(fake_openai.base_url))
    async with openai.AsyncOpenAI(base_url=sidecar.base_url, api_key=APP_KEY, max_retries=0) as client:
        with pytest.raises(openai.AuthenticationError) as info:
            await client.moderations.create(input="x")
    assert PROVIDER_KEY not in str(info.value.body) and PROVIDER_KEY not in info.value.response.text


def _hwm_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


@pytest.mark.slow
async def test_a_200_mb_upload_streams_through_without_being_held(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    """The sidecar as a real process: its peak memory grows by far less than the upload."""
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(quickstart(fake_openai.base_url)))
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "modelroute", "serve", "--policy", str(path), "--port", str(port)],
                            env={**os.environ, "TEST_PROVIDER_KEY": PROVIDER_KEY}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    size, block = 200 * 1024 * 1024, os.urandom(1024 * 1024)
    try:
        url = f"http://127.0.0.1:{port}"
        await wait_ready(url, proc)
        before = _hwm_kib(proc.pid)

        async def body() -> AsyncIterator[bytes]:
            yield b'--b\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper-1\r\n'
            yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="long.wav"\r\nContent-Type: audio/wav\r\n\r\n'
            for _ in range(size // len(block)):
                yield block
            yield b"\r\n--b--\r\n"

        async with aiohttp.ClientSession() as http:
            async with http.post(url + "/v1/audio/transcriptions", data=body(),
                                 headers={"Content-Type": "multipart/form-data; boundary=b", "Authorization": f"Bearer {APP_KEY}"}) as resp:
                answer = await resp.json()
        grown = (_hwm_kib(proc.pid) - before) / 1024
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
    assert resp.status == 200 and answer["text"].startswith(f"transcribed {size} bytes of long.wav")
    assert fake_openai.hits[-1].files["file"].size == size
    print(f"sidecar peak memory grew {grown:.1f} MiB for a {size // 1048576} MiB upload")
    assert grown < 40, f"the sidecar's peak memory grew {grown:.1f} MiB for a 200 MiB upload"
