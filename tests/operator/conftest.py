"""Fixtures of the control-plane tests: the API emulator (real socket) and a fake provider."""

from __future__ import annotations

from typing import AsyncIterator

import pytest

pytest.importorskip("kopf")
pytest.importorskip("kmock")

from tests.operator.harness import Cluster  # noqa: E402


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    async with Cluster() as c:
        yield c
