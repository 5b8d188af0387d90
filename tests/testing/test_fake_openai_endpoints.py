"""The endpoints the fake OpenAI provider answers for pass-through tests, spoken to by the real
``openai`` SDK (and, for the 200 MB upload, aiohttp streaming a generated body): OpenAI's shapes,
what was received recorded byte for byte, uploads counted without being held."""

from __future__ import annotations

import base64
import hashlib
import io
import tracemalloc
from typing import AsyncIterator

import aiohttp
import openai
import pytest

from modelroute.testing.fake_openai import FakeOpenAI
from modelroute.testing.fake_openai_endpoints import PNG, speech_chunks
from tests.support import PROVIDER_KEY

#: aiohttp's multipart reader calls its own deprecated ``unread_data`` while streaming a part.
pytestmark = pytest.mark.filterwarnings("ignore:unread_data:DeprecationWarning")


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI(api_key=PROVIDER_KEY) as server:
        yield server


@pytest.fixture
async def client(fake: FakeOpenAI) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(base_url=fake.base_url, api_key=PROVIDER_KEY, max_retries=0) as c:
        yield c


async def test_moderations_and_the_recorded_bytes(client: openai.AsyncOpenAI, fake: FakeOpenAI) -> None:
    raw = await client.moderations.with_raw_response.create(input=["a nice day", "I will kill the process"])
    result = raw.parse()
    assert [r.flagged for r in result.results] == [False, True] and result.results[1].categories.violence
    hit = fake.hits[-1]
    sent = raw.http_request.content
    assert (hit.method, hit.path, hit.size, hit.sha256) == ("POST", "/v1/moderations", len(sent), hashlib.sha256(sent).hexdigest())
    assert hit.body == {"input": ["a nice day", "I will kill the process"]} and hit.headers["Authorization"] == f"Bearer {PROVIDER_KEY}"


async def test_legacy_completions_whole_and_streamed(client: openai.AsyncOpenAI) -> None:
    whole = await client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Once upon a time", max_tokens=16)
    assert whole.object == "text_completion" and whole.choices[0].text == "[gpt-3.5-turbo-instruct] continued: Once upon a time"
    assert whole.choices[0].finish_reason == "stop" and whole.usage is not None
    stream = await client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Once upon a time", max_tokens=3, stream=True,
                                             stream_options={"include_usage": True})
    chunks = [c async for c in stream]
    assert "".join(c.choices[0].text for c in chunks if c.choices) == "[gpt-3.5-turbo-instruct] continued: Once"
    assert chunks[-2].choices[0].finish_reason == "length" and chunks[-1].usage is not None


async def test_images(client: openai.AsyncOpenAI) -> None:
    b64 = await client.images.generate(model="gpt-image-1", prompt="a red dot", n=2)
    assert b64.data is not None and [base64.b64decode(d.b64_json or "") for d in b64.data] == [PNG, PNG]
    assert b64.usage is not None and b64.usage.total_tokens > 0
    url = await client.images.generate(model="dall-e-3", prompt="a red dot", response_format="url")
    assert url.data is not None and str(url.data[0].url).endswith(".png")


async def test_audio_transcription_translation_and_speech(client: openai.AsyncOpenAI, fake: FakeOpenAI) -> None:
    audio = bytes(range(256)) * 400
    transcript = await client.audio.transcriptions.create(model="whisper-1", file=("talk.wav", audio))
    digest = hashlib.sha256(audio).hexdigest()
    assert transcript.text == f"transcribed {len(audio)} bytes of talk.wav (sha256 {digest[:16]})"
    hit = fake.hits[-1]
    assert hit.files["file"].size == len(audio) and hit.files["file"].sha256 == digest and hit.fields["model"] == "whisper-1"
    assert hit.files["file"].content is None  # counted, not kept
    with pytest.deprecated_call():  # the SDK marks translations deprecated; apps still call it
        translated = await client.audio.translations.create(model="whisper-1", file=("talk.wav", audio))
    assert translated.text.startswith(f"translated {len(audio)} bytes")
    text = await client.audio.transcriptions.create(model="whisper-1", file=("talk.wav", audio), response_format="text")
    assert str(text) == transcript.text + "\n"
    fake.speech_bytes = 200_000
    async with client.audio.speech.with_streaming_response.create(model="tts-1", voice="alloy", input="Hello there") as speech:
        assert speech.headers["content-type"] == "audio/mpeg"
        body = b"".join([chunk async for chunk in speech.iter_bytes()])
    assert body == b"".join(speech_chunks("Hello there", 200_000))


class _Generated(io.RawIOBase):
    """``size`` bytes of a repeated block, made as they are read (nothing held)."""

    def __init__(self, size: int) -> None:
        self.left = size
        self.block = hashlib.sha256(b"audio").digest() * 2048  # 64 KiB

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = min(len(buffer), self.left, len(self.block))
        buffer[:n] = self.block[:n]
        self.left -= n
        return n


async def test_a_200_mb_upload_is_counted_without_being_held(fake: FakeOpenAI) -> None:
    size = 200 * 1024 * 1024
    expected = hashlib.sha256()
    source = _Generated(size)
    while chunk := source.read(1 << 20):
        expected.update(chunk)
    form = aiohttp.FormData()
    form.add_field("model", "whisper-1")
    form.add_field("file", io.BufferedReader(_Generated(size), buffer_size=1 << 16), filename="long.wav", content_type="audio/wav")
    tracemalloc.start()
    try:
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{fake.base_url}/audio/transcriptions", data=form,
                                    headers={"Authorization": f"Bearer {PROVIDER_KEY}"}) as resp:
                answer = await resp.json()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert answer["text"].startswith(f"transcribed {size} bytes of long.wav")
    assert fake.hits[-1].files["file"].sha256 == expected.hexdigest()
    assert peak < 16 * 1024 * 1024, f"peak {peak / 2**20:.1f} MiB for a 200 MiB upload"


async def test_files_any_purpose(client: openai.AsyncOpenAI, fake: FakeOpenAI) -> None:
    notes = await client.files.create(file=("notes.txt", b"hello files"), purpose="assistants")
    data = await client.files.create(file=("data.csv", b"a,b\n1,2\n"), purpose="user_data")
    assert notes.object == "file" and notes.bytes == 11 and notes.purpose == "assistants"
    assert [f.id async for f in client.files.list(purpose="user_data")] == [data.id]
    assert (await client.files.retrieve(notes.id)).filename == "notes.txt"
    assert (await client.files.content(notes.id)).content == b"hello files"
    deleted = await client.files.delete(notes.id)
    assert deleted.deleted and notes.id not in fake.files
    with pytest.raises(openai.NotFoundError):
        await client.files.retrieve(notes.id)
    with pytest.raises(openai.BadRequestError, match="purpose"):
        await client.files.create(file=("x.txt", b"x"), purpose="nonsense")  # type: ignore[arg-type]


async def test_vector_stores(client: openai.AsyncOpenAI) -> None:
    file = await client.files.create(file=("doc.txt", b"vector me"), purpose="assistants")
    store = await client.vector_stores.create(name="docs", file_ids=[file.id], metadata={"team": "a"})
    assert store.object == "vector_store" and store.status == "completed" and store.file_counts.completed == 1
    assert store.usage_bytes == 9 and store.metadata == {"team": "a"}
    assert [s.id async for s in client.vector_stores.list()] == [store.id]
    assert (await client.vector_stores.retrieve(store.id)).name == "docs"
    assert (await client.vector_stores.delete(store.id)).deleted
    with pytest.raises(openai.NotFoundError):
        await client.vector_stores.retrieve(store.id)
    with pytest.raises(openai.NotFoundError):
        await client.vector_stores.create(name="bad", file_ids=["file-missing"])


async def test_models_and_unknown_paths(client: openai.AsyncOpenAI, fake: FakeOpenAI) -> None:
    model = await client.models.retrieve("gpt-4o-2024-08-06")
    assert (model.id, model.object, model.owned_by) == ("gpt-4o-2024-08-06", "model", "openai")
    fake.models = {"gpt-4o"}
    assert [m.id async for m in client.models.list()] == ["gpt-4o"]
    with pytest.raises(openai.NotFoundError) as missing:
        await client.models.retrieve("gpt-unknown")
    assert isinstance(missing.value.body, dict) and missing.value.body["code"] == "model_not_found"
    for method in ("get", "post"):
        with pytest.raises(openai.NotFoundError) as unknown:
            await getattr(client, method)("/xyz/abc", cast_to=object, **({"body": {}} if method == "post" else {}))
        assert unknown.value.body == {"message": f"Invalid URL ({method.upper()} /v1/xyz/abc)", "type": "invalid_request_error",
                                      "param": None, "code": None}


async def test_a_wrong_key_is_refused_everywhere(fake: FakeOpenAI) -> None:
    async with openai.AsyncOpenAI(base_url=fake.base_url, api_key="sk-wrong", max_retries=0) as wrong:
        with pytest.raises(openai.AuthenticationError):
            await wrong.moderations.create(input="hi")
        with pytest.raises(openai.AuthenticationError):
            await wrong.files.create(file=("a.txt", b"a"), purpose="assistants")
    assert fake.files == {}
