"""Shared fixtures: fake providers and sidecars on real sockets (127.0.0.1, port 0)."""

from __future__ import annotations

from typing import AsyncIterator

import openai
import pytest

from modelroute.testing.fake_openai import FakeOpenAI
from tests.support import APP_KEY, Sidecar, SidecarFactory, quickstart


@pytest.fixture
async def fake_openai() -> AsyncIterator[FakeOpenAI]:
    fake = FakeOpenAI()
    await fake.start()
    yield fake
    await fake.close()


@pytest.fixture
async def make_sidecar() -> AsyncIterator[SidecarFactory]:
    factory = SidecarFactory()
    yield factory
    await factory.close()


@pytest.fixture
async def sidecar(make_sidecar: SidecarFactory, fake_openai: FakeOpenAI) -> Sidecar:
    """A sidecar on the quickstart policy, in front of one fake OpenAI provider."""
    return await make_sidecar(quickstart(fake_openai.base_url))


@pytest.fixture
async def client(sidecar: Sidecar) -> AsyncIterator[openai.AsyncOpenAI]:
    """The real OpenAI SDK pointed at the sidecar, with the app's own (dummy) key."""
    async with openai.AsyncOpenAI(base_url=sidecar.base_url, api_key=APP_KEY, max_retries=0) as c:
        yield c
