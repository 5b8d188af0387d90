"""Fixtures for batch routing: fake providers with their batch APIs, and the session's redis-server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from modelroute.testing.fake_anthropic import FakeAnthropic
from modelroute.testing.fake_openai_batch import FakeOpenAIBatch
from tests.spend.conftest import redis_server, redis_url  # noqa: F401  (a real redis-server, shared with spend's tests)
from tests.support import ANTHROPIC_KEY, SidecarFactory


@pytest.fixture
async def fake_batch() -> AsyncIterator[FakeOpenAIBatch]:
    fake = FakeOpenAIBatch()
    await fake.start()
    yield fake
    await fake.close()


@pytest.fixture
async def fake_anthropic(make_sidecar: SidecarFactory) -> AsyncIterator[FakeAnthropic]:
    """A fake Anthropic provider that takes only the provider's key (the sidecar is given it)."""
    make_sidecar.environ["TEST_ANTHROPIC_KEY"] = ANTHROPIC_KEY
    fake = FakeAnthropic(api_key=ANTHROPIC_KEY)
    await fake.start()
    yield fake
    await fake.close()
