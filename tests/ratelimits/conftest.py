"""The spend tests' real redis-server, for the shared buckets."""

from __future__ import annotations

from tests.spend.conftest import redis_server, redis_url

__all__ = ["redis_server", "redis_url"]
