"""No provider key in logs, spans, metrics or error bodies, even when the provider rejects it."""

from __future__ import annotations

import logging

import aiohttp
import openai
import pytest

from modelroute.testing.fake_openai import FakeOpenAI
from tests.support import APP_KEY, PROVIDER_KEY, SidecarFactory, quickstart


async def test_keys_never_leak(make_sidecar: SidecarFactory, fake_openai: FakeOpenAI, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    fake_openai.api_key = "sk-the-key-the-provider-expects"  # our key is refused: 401 with a message
    sidecar = await make_sidecar(quickstart(fake_openai.base_url))
    bodies = []
    async with openai.AsyncOpenAI(base_url=sidecar.base_url, api_key=APP_KEY, max_retries=0) as client:
        for stream in (False, True):
            with pytest.raises(openai.APIStatusError) as info:
                await client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "hi"}], stream=stream)
            bodies.append(str(info.value.body) + str(info.value.response.headers))
    async with aiohttp.ClientSession() as http, http.get(sidecar.url + "/metrics") as resp:
        metrics = await resp.text()
    spans = [str(dict(s.attributes or {})) + str(s.events) + str(s.status) for s in sidecar.spans.get_finished_spans()]
    assert len(spans) >= 4
    haystack = "\n".join([*bodies, metrics, *spans, caplog.text])
    for secret in (PROVIDER_KEY, APP_KEY, "sk-the-key"):
        assert secret not in haystack
    assert "auth" in bodies[0]  # the error says why, without the key
