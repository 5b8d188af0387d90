"""Fixtures for batch routing: a fake OpenAI provider with the Files and Batch APIs."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from modelroute.testing.fake_openai_batch import FakeOpenAIBatch


@pytest.fixture
async def fake_batch() -> AsyncIterator[FakeOpenAIBatch]:
    fake = FakeOpenAIBatch()
    await fake.start()
    yield fake
    await fake.close()
