"""Fixtures for the Anthropic tests: a fake Anthropic provider and a sidecar routing to it."""

from __future__ import annotations

from typing import AsyncIterator

import anthropic
import openai
import pytest

from modelroute.testing.fake_anthropic import FakeAnthropic
from modelroute.testing.fake_openai import FakeOpenAI
from tests.support import ANTHROPIC_KEY, APP_KEY, Sidecar, SidecarFactory, mixed_policy


@pytest.fixture
async def fake_anthropic() -> AsyncIterator[FakeAnthropic]:
    fake = FakeAnthropic(api_key=ANTHROPIC_KEY)
    await fake.start()
    yield fake
    await fake.close()


@pytest.fixture
async def mixed(make_sidecar: SidecarFactory, fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic) -> Sidecar:
    make_sidecar.environ["TEST_ANTHROPIC_KEY"] = ANTHROPIC_KEY
    return await make_sidecar(mixed_policy(fake_openai.base_url, fake_anthropic.base_url))


@pytest.fixture
async def oai(mixed: Sidecar) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(base_url=mixed.base_url, api_key=APP_KEY, max_retries=0) as c:
        yield c


@pytest.fixture
async def claude(mixed: Sidecar) -> AsyncIterator[anthropic.AsyncAnthropic]:
    """The real Anthropic SDK pointed at the sidecar (API root, no /v1), with the app's own key."""
    async with anthropic.AsyncAnthropic(base_url=mixed.url, api_key=APP_KEY, max_retries=0) as c:
        yield c
