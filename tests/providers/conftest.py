"""Fixtures for the Anthropic tests: a fake Anthropic provider and a sidecar routing to it."""

from __future__ import annotations

from typing import Any, AsyncIterator

import anthropic
import openai
import pytest

from modelroute.testing.fake_anthropic import FakeAnthropic
from modelroute.testing.fake_openai import FakeOpenAI
from tests.support import APP_KEY, Sidecar, SidecarFactory, quickstart

ANTHROPIC_KEY = "sk-ant-provider-secret-9876543210"


def mixed_policy(openai_url: str, anthropic_url: str) -> dict[str, Any]:
    """The quickstart policy plus an Anthropic provider; Claude is the default, falling back to gpt-4o-mini."""
    doc = quickstart(openai_url)
    spec = doc["spec"]
    spec["providers"].append({"name": "anthropic", "type": "anthropic", "baseURL": anthropic_url,
                              "apiKey": {"env": "TEST_ANTHROPIC_KEY"}})
    spec["models"].append({"name": "claude-sonnet", "provider": "anthropic", "upstreamModel": "claude-sonnet-4-5",
                           "pricing": {"input": 3.0, "output": 15.0, "cachedInput": 0.3, "cacheWrite": 3.75},
                           "contextWindow": 200000, "maxOutputTokens": 1024, "capabilities": ["tools", "json", "vision", "thinking"]})
    spec["default"] = "claude-sonnet"
    spec["fallbacks"] = {"claude-sonnet": ["gpt-4o-mini"], "gpt-4o-mini": ["gpt-4o"]}
    return doc


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
