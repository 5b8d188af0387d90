"""Budgets shared through a real redis-server: atomic Lua reservations across sidecars, lapsed
reservations, and failOpen / failClosed when Redis is unreachable."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import aiohttp

from modelroute.spend.config import Budget, to_nano
from modelroute.spend.redis_store import RedisStore
from modelroute.spend.store import BudgetKey
from modelroute.testing.fake_openai import FakeOpenAI
from tests.spend.conftest import free_port
from tests.spend.helpers import PREMIUM, TWELVE_WORDS, budget_policy, budgets, chat
from tests.support import SidecarFactory


def key(name: str, limit_usd: float) -> BudgetKey:
    end = datetime.now(UTC) + timedelta(hours=1)
    return BudgetKey(Budget(name, "day", to_nano(limit_usd)), "", "day:test", end, f"t:{{p}}:{name}")


async def test_reservation_is_all_or_nothing_and_lapses(redis_url: str) -> None:
    store = RedisStore(redis_url)
    try:
        small, large = key("small", 1), key("large", 10)
        held = await store.reserve((small, large), to_nano(0.8), ttl_seconds=0.2)
        assert held.reservation is not None and [lv.reserved for lv in held.levels] == [to_nano(0.8)] * 2
        refused = await store.reserve((large, small), to_nano(0.5), ttl_seconds=60)
        assert refused.reservation is None and refused.failed == small and refused.headroom == to_nano(0.2)
        assert [lv.reserved for lv in await store.read((small, large))] == [to_nano(0.8)] * 2  # nothing taken from large
        await asyncio.sleep(0.3)  # the first reservation was never settled: it lapses
        again = await store.reserve((small,), to_nano(0.9), ttl_seconds=60)
        assert again.reservation is not None
        levels = await store.settle((small,), again.reservation, to_nano(0.25))
        assert levels[0].spent == to_nano(0.25) and levels[0].reserved == 0
    finally:
        await store.close()


async def test_two_sidecars_together_never_overshoot(make_sidecar: SidecarFactory, fake_openai: FakeOpenAI, redis_url: str) -> None:
    limit = 0.002
    policy = budget_policy(fake_openai.base_url, [{"name": "shared", "scope": "policy", "window": "day", "limitUSD": limit}],
                           budgetStore={"redis": {"url": redis_url, "timeoutMs": 3000}})  # not a timeout test: room for a loaded CI machine
    one, two = await make_sidecar(policy), await make_sidecar(policy)
    async with aiohttp.ClientSession() as http:
        for sidecar in (one, two, one, two, one):
            assert (await chat(http, sidecar, TWELVE_WORDS, PREMIUM, max_tokens=10))[0] == 200
        fake_openai.fail("gpt-4o", delay=0.5)
        results = await asyncio.gather(*(chat(http, s, TWELVE_WORDS, PREMIUM, max_tokens=10) for s in (one, two) * 25))
    for sidecar in (one, two):
        hook = next(h for h in sidecar.services.hooks.items if hasattr(h, "drain"))
        await hook.drain()
    served = [r for r in results if r[0] == 200]
    assert len(served) >= 1 and len(served) + sum(1 for r in results if r[0] == 429) == 50
    rows_one, rows_two = await budgets(one), await budgets(two)
    assert rows_one[0]["store"] == "redis" and rows_one[0]["spent_usd"] == rows_two[0]["spent_usd"]
    assert rows_one[0]["spent_usd"] <= limit and rows_one[0]["reserved_usd"] == 0
    spent = 5 * 0.000155 + sum(float(Decimal(r[1]["x-modelroute-cost-usd"])) for r in served)
    assert abs(rows_one[0]["spent_usd"] - spent) < 1e-9


async def test_fail_open_keeps_local_accounts_and_says_so(make_sidecar: SidecarFactory, fake_openai: FakeOpenAI) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    policy = budget_policy(fake_openai.base_url, [{"name": "all", "scope": "policy", "window": "day", "limitUSD": 1}],
                           budgetStore={"redis": {"url": dead}, "onUnavailable": "failOpen"})
    sidecar = await make_sidecar(policy)
    async with aiohttp.ClientSession() as http:
        for _ in range(2):
            status, _, _ = await chat(http, sidecar)
            assert status == 200
        async with http.get(sidecar.url + "/metrics") as resp:
            metrics = await resp.text()
    assert 'modelroute_budget_store_degraded{store="redis"} 1.0' in metrics
    assert 'modelroute_budget_store_errors_total{store="redis"}' in metrics
    [row] = await budgets(sidecar)
    assert row["store"] == "local" and row["spent_usd"] > 0 and row["reserved_usd"] == 0


async def test_fail_closed_refuses_before_any_provider_call(make_sidecar: SidecarFactory, fake_openai: FakeOpenAI) -> None:
    dead = f"redis://:secret-password@127.0.0.1:{free_port()}/0"
    policy = budget_policy(fake_openai.base_url, [{"name": "all", "scope": "policy", "window": "day", "limitUSD": 1}],
                           budgetStore={"redis": {"url": dead}})
    sidecar = await make_sidecar(policy)
    async with aiohttp.ClientSession() as http:
        status, headers, body = await chat(http, sidecar)
        async with http.get(sidecar.url + "/metrics") as resp:
            metrics = await resp.text()
    assert status == 503 and body["error"]["code"] == "budget_store_unavailable" and headers["retry-after"] == "1"
    assert fake_openai.calls() == []
    assert "secret-password" not in str(body) and "secret-password" not in metrics
