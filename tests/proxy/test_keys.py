"""Provider keys from a file (a mounted Secret) are re-read when the file changes: no restart."""

from __future__ import annotations

import asyncio
from pathlib import Path

import openai

from modelroute.testing.fake_openai import FakeOpenAI
from tests.support import APP_KEY, SidecarFactory, quickstart


async def test_rotated_key_file_is_picked_up(tmp_path: Path, make_sidecar: SidecarFactory, fake_openai: FakeOpenAI) -> None:
    key_file = tmp_path / "openai.key"
    key_file.write_text("sk-first\n")
    doc = quickstart(fake_openai.base_url)
    doc["spec"]["providers"][0]["apiKey"] = {"file": str(key_file)}
    sidecar = await make_sidecar(doc)
    fake_openai.api_key = "sk-first"
    async with openai.AsyncOpenAI(base_url=sidecar.base_url, api_key=APP_KEY, max_retries=0) as client:
        await client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "hi"}])
        key_file.write_text("sk-second\n")
        await asyncio.sleep(1.1)  # the file is checked at most once a second
        fake_openai.api_key = "sk-second"  # the provider now refuses the old key
        await client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "hi"}])
    assert fake_openai.requests[-1].headers["Authorization"] == "Bearer sk-second"
