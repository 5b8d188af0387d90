"""The fleet's buckets in one Redis: two sidecars draw from one bucket per provider key and model,
the provider's headers correct it, the store going away falls back to each sidecar's own view
(counted), and a route's reserve holds in the shared bucket and in a sidecar's own."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from modelroute.testing.fake_openai import FakeOpenAI
from modelroute.testing.org_limits import OrgLimiter, OrgLimits
from tests.ratelimits.helpers import chains, chat, metrics, org_policy
from tests.spend.conftest import free_port
from tests.support import SidecarFactory


def shared(base_url: str, redis: str, **limits: Any) -> dict[str, Any]:
    return org_policy(base_url, budgetStore={"redis": {"url": redis}}, rateLimits={"store": "shared"}, **limits)


async def test_two_sidecars_draw_from_one_bucket(make_sidecar: SidecarFactory, fake_openai: FakeOpenAI, redis_url: str) -> None:
    doc = shared(fake_openai.base_url, redis_url, mini={"rpm": 4})
    a, b = await make_sidecar(doc), await make_sidecar(doc)
    async with aiohttp.ClientSession() as http:
        served = [(await chat(http, side))[1]["x-modelroute-model"] for side in (a, b, a, b, a, b)]
        text = await metrics(http, a)
    assert served == ["gpt-4o-mini"] * 4 + ["gpt-4o"] * 2  # 4 a minute for both together, not for each
    assert len(fake_openai.calls("gpt-4o-mini")) == 4
    assert chains(a)[-1] == ["gpt-4o-mini:skipped(shared_rpm_limit)", "gpt-4o:ok"]
    assert chains(b)[-1] == ["gpt-4o-mini:skipped(shared_rpm_limit)", "gpt-4o:ok"]
    assert 'modelroute_rate_limit_skips_total{limit="rpm",model="gpt-4o-mini",source="shared"} 1.0' in text
    import redis

    client = redis.Redis.from_url(redis_url)
    keys = sorted(k.decode() for k in client.keys("modelroute:rl:*"))
    client.close()
    assert len(keys) == 1 and keys[0].endswith(":rpm") and "sk-" not in keys[0]  # one bucket; the key is a digest


async def test_the_providers_figures_correct_the_shared_bucket(make_sidecar: SidecarFactory, fake_openai: FakeOpenAI,
                                                               redis_url: str) -> None:
    """The policy says 100 a minute but the organisation has 3 left: after the first answer the
    fleet's bucket holds no more than the provider says, on every sidecar."""
    fake_openai.org = OrgLimiter({"gpt-4o-mini": OrgLimits(rpm=100, start=0.03)})
    doc = shared(fake_openai.base_url, redis_url, mini={"rpm": 100})
    a, b = await make_sidecar(doc), await make_sidecar(doc)
    async with aiohttp.ClientSession() as http:
        assert (await chat(http, a))[1]["x-modelroute-model"] == "gpt-4o-mini"
        for _ in range(50):  # the correction goes to Redis in the background: wait for it
            await asyncio.sleep(0.01)
            if await _level(http, a) <= 2:
                break
        served = [(await chat(http, b))[1]["x-modelroute-model"] for _ in range(4)]
    assert fake_openai.org.refused == {}
    assert served.count("gpt-4o-mini") <= 2 and served[-1] == "gpt-4o"


async def _level(http: aiohttp.ClientSession, sidecar: Any) -> float:
    async with http.get(sidecar.url + "/v1/ratelimits") as resp:
        rows = (await resp.json())["data"]
    level = next(r for r in rows if r["model"] == "gpt-4o-mini").get("shared_level", {}).get("rpm", 100)
    return float(level)


async def test_store_away_falls_back_to_each_sidecars_view(make_sidecar: SidecarFactory, fake_openai: FakeOpenAI) -> None:
    doc = shared(fake_openai.base_url, f"redis://127.0.0.1:{free_port()}/0", mini={"rpm": 2})
    sidecar = await make_sidecar(doc)
    async with aiohttp.ClientSession() as http:
        served = [(await chat(http, sidecar))[1]["x-modelroute-model"] for _ in range(3)]
        text = await metrics(http, sidecar)
    assert served == ["gpt-4o-mini", "gpt-4o-mini", "gpt-4o"]  # the policy's 2 a minute, kept by this sidecar
    assert chains(sidecar)[-1] == ["gpt-4o-mini:skipped(local_rpm_limit)", "gpt-4o:ok"]
    assert 'modelroute_rate_limit_store_degraded{store="redis"} 1.0' in text
    assert 'modelroute_rate_limit_store_errors_total{store="redis"} 1.0' in text  # then marked down: no request waits on it
    assert 'modelroute_rate_limit_fail_open_total{model="gpt-4o-mini"} 3.0' in text


def reserving(doc: dict[str, Any]) -> dict[str, Any]:
    spec = doc["spec"]
    spec["routes"] = [{"name": "interactive", "match": {"headers": {"x-traffic": "interactive"}}, "model": "gpt-4o-mini"}]
    spec.setdefault("rateLimits", {})["reserve"] = [{"route": "interactive", "share": 0.5, "models": ["gpt-4o-mini"]}]
    return doc


async def test_a_reserve_holds_room_for_its_route(make_sidecar: SidecarFactory, fake_openai: FakeOpenAI) -> None:
    sidecar = await make_sidecar(reserving(org_policy(fake_openai.base_url, mini={"rpm": 4})))
    interactive = {"x-traffic": "interactive"}
    async with aiohttp.ClientSession() as http:
        batch = [(await chat(http, sidecar))[1]["x-modelroute-model"] for _ in range(3)]
        live = [(await chat(http, sidecar, headers=interactive))[1]["x-modelroute-model"] for _ in range(3)]
        text = await metrics(http, sidecar)
    assert batch == ["gpt-4o-mini", "gpt-4o-mini", "gpt-4o"]  # half of 4 a minute is held for interactive
    assert live == ["gpt-4o-mini", "gpt-4o-mini", "gpt-4o"]
    assert chains(sidecar)[2] == ["gpt-4o-mini:skipped(reserved_rpm_limit)", "gpt-4o:ok"]
    assert chains(sidecar)[-1] == ["gpt-4o-mini:skipped(local_rpm_limit)", "gpt-4o:ok"]
    assert 'modelroute_rate_limit_skips_total{limit="rpm",model="gpt-4o-mini",source="reserved"} 1.0' in text


async def test_a_reserve_holds_in_the_shared_bucket(make_sidecar: SidecarFactory, fake_openai: FakeOpenAI, redis_url: str) -> None:
    doc = reserving(shared(fake_openai.base_url, redis_url, mini={"rpm": 4}))
    a, b = await make_sidecar(doc), await make_sidecar(doc)
    async with aiohttp.ClientSession() as http:
        batch = [(await chat(http, side))[1]["x-modelroute-model"] for side in (a, b, a)]
        live = [(await chat(http, side, headers={"x-traffic": "interactive"}))[1]["x-modelroute-model"] for side in (b, a, b)]
    assert batch == ["gpt-4o-mini", "gpt-4o-mini", "gpt-4o"]
    assert live == ["gpt-4o-mini", "gpt-4o-mini", "gpt-4o"]
