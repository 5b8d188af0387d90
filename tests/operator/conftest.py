"""Fixtures of the control-plane tests: the API emulator (real socket) and a fake provider."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

pytest.importorskip("kopf")
pytest.importorskip("kmock")

from tests.operator.harness import Cluster


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    async with Cluster() as c:
        yield c
