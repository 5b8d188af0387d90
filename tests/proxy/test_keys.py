"""Provider keys from a file (a mounted Secret) are re-read when the file changes: no restart."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import aiohttp
import openai
import pytest

from modelroute.testing.fake_openai import FakeOpenAI
from tests.support import APP_KEY, PROVIDER_KEY, SidecarFactory, quickstart


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


async def test_a_missing_key_says_so_at_start_in_readyz_and_in_the_answer(make_sidecar: SidecarFactory, fake_openai: FakeOpenAI,
                                                                          caplog: pytest.LogCaptureFixture) -> None:
    """An unset variable is not a silent 502: logged at start, listed by /readyz, named in each
    error answer that needed it (the variable, never a key), and requests that can be served
    elsewhere still are."""
    doc = quickstart(fake_openai.base_url)
    doc["spec"]["providers"].append({"name": "backup", "type": "openai", "baseURL": fake_openai.base_url,
                                     "apiKey": {"env": "BACKUP_OPENAI_KEY"}})
    doc["spec"]["models"].append({"name": "backup-mini", "provider": "backup", "upstreamModel": "gpt-4o-mini",
                                  "pricing": {"input": 0.15, "output": 0.6}})
    doc["spec"]["fallbacks"] = {"backup-mini": ["gpt-4o-mini"]}
    doc["spec"]["routes"].append({"name": "backup", "match": {"headers": {"x-route": "backup"}}, "model": "backup-mini",
                                  "fallbacks": []})
    doc["spec"]["pinnedModels"] = ["backup-mini"]
    with caplog.at_level(logging.WARNING, logger="modelroute.proxy"):
        sidecar = await make_sidecar(doc)
    assert "provider 'backup' has no key: environment variable BACKUP_OPENAI_KEY is not set" in caplog.text
    async with aiohttp.ClientSession() as http, http.get(sidecar.url + "/readyz") as resp:
        ready = await resp.json()
    assert resp.status == 200 and ready["missingKeys"] == [
        {"provider": "backup", "problem": "provider 'backup' has no key: environment variable BACKUP_OPENAI_KEY is not set"}]
    async with openai.AsyncOpenAI(base_url=sidecar.base_url, api_key=APP_KEY, max_retries=0) as client:
        with pytest.raises(openai.APIStatusError) as info:  # the only model of the route needs the missing key
            await client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "hi"}],
                                                 extra_headers={"x-route": "backup"})
        assert info.value.status_code == 502
        assert "environment variable BACKUP_OPENAI_KEY is not set" in info.value.message
        raw = await client.chat.completions.with_raw_response.create(model="backup-mini", messages=[{"role": "user", "content": "hi"}])
        assert raw.headers["x-modelroute-model"] == "gpt-4o-mini"  # its fallback has a key
    assert all(c.headers["Authorization"] == f"Bearer {PROVIDER_KEY}" for c in fake_openai.requests)
