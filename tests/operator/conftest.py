"""Fixtures of the control-plane tests: the API emulator (real socket) and a fake provider."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

pytest.importorskip("kopf")
pytest.importorskip("kmock")

from modelroute.testing.fake_openai import FakeOpenAI
from tests.operator.harness import Cluster


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    async with Cluster() as c:
        yield c


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    """A fake OpenAI provider that keeps no record of requests (the end-to-end tests send many)."""
    f = FakeOpenAI(record=False)
    await f.start()
    yield f
    await f.close()
