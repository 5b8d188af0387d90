"""A/B experiments: sticky arms by key over a real sidecar, random split without a key, arms on spans,
headers and metrics; only the routes the experiment applies to are split."""

from __future__ import annotations

import asyncio
import random
from collections import Counter, defaultdict
from typing import Any

import aiohttp
import openai

from modelroute.policy import compile_policy
from modelroute.report.prom import Samples
from modelroute.routing import Router, build_view
from modelroute.routing.experiments import Experiment, Experiments
from modelroute.testing.fake_openai import FakeOpenAI
from tests.support import APP_KEY, SidecarFactory, quickstart

EXPERIMENT: dict[str, Any] = {
    "name": "mini-vs-4o", "key": {"header": "x-user-id"}, "appliesTo": ["default"],
    "arms": [{"name": "control", "weight": 50, "model": "gpt-4o"}, {"name": "candidate", "weight": 50, "model": "gpt-4o-mini"}],
}
ARM_MODEL = {"control": "gpt-4o", "candidate": "gpt-4o-mini"}


async def test_arms_are_sticky_across_1000_requests_from_50_keys(make_sidecar: SidecarFactory, fake_openai: FakeOpenAI) -> None:
    fake_openai.record = False
    sidecar = await make_sidecar(quickstart(fake_openai.base_url, experiments=[EXPERIMENT]))
    seen: dict[str, set[str]] = defaultdict(set)
    arms: Counter[str] = Counter()
    async with openai.AsyncOpenAI(base_url=sidecar.base_url, api_key=APP_KEY, max_retries=0) as client:
        async def one(n: int) -> None:
            key = f"user-{n % 50}"
            raw = await client.chat.completions.with_raw_response.create(
                model="gpt-4o", messages=[{"role": "user", "content": f"question {n}"}], extra_headers={"x-user-id": key})
            arm = raw.headers["x-modelroute-arm"]
            assert raw.headers["x-modelroute-model"] == ARM_MODEL[arm] and raw.headers["x-modelroute-route"] == "default"
            seen[key].add(arm)
            arms[arm] += 1

        for start in range(0, 1000, 50):
            await asyncio.gather(*(one(n) for n in range(start, start + 50)))
    assert len(seen) == 50 and all(len(a) == 1 for a in seen.values())  # sticky: one arm per key
    keys_per_arm = Counter(next(iter(a)) for a in seen.values())
    assert min(keys_per_arm.values()) >= 15  # 50/50 by weight (binomial(50, .5): 15..35 holds with p > 0.998)
    spans = [s for s in sidecar.request_spans() if s.attributes and "modelroute.arm" in s.attributes]
    assert len(spans) == 1000 and {s.attributes["modelroute.experiment"] for s in spans if s.attributes} == {"mini-vs-4o"}
    async with aiohttp.ClientSession() as http, http.get(sidecar.url + "/metrics") as resp:
        m = Samples.parse(await resp.text())
    for arm, count in arms.items():
        assert m.sum("modelroute_arm_requests_total", experiment="mini-vs-4o", arm=arm, status="ok") == count


async def test_without_a_key_requests_split_at_random_and_other_routes_are_untouched(make_sidecar: SidecarFactory,
                                                                                     fake_openai: FakeOpenAI) -> None:
    sidecar = await make_sidecar(quickstart(fake_openai.base_url, experiments=[EXPERIMENT]))
    arms: Counter[str] = Counter()
    async with openai.AsyncOpenAI(base_url=sidecar.base_url, api_key=APP_KEY, max_retries=0) as client:
        for _ in range(60):
            raw = await client.chat.completions.with_raw_response.create(model="auto", messages=[{"role": "user", "content": "hi"}])
            arms[raw.headers["x-modelroute-arm"]] += 1
        code = await client.chat.completions.with_raw_response.create(
            model="auto", messages=[{"role": "user", "content": "hi"}], extra_headers={"x-modelroute-task": "code_generation"})
    assert set(arms) == {"control", "candidate"} and min(arms.values()) >= 12  # binomial(60, .5) >= 12 with p > 0.9999
    assert "x-modelroute-arm" not in code.headers and code.headers["x-modelroute-route"] == "code"


def test_weights_split_keys_and_two_experiments_split_independently() -> None:
    a = Experiment({**EXPERIMENT, "name": "a", "arms": [{"name": "x", "weight": 9, "model": "m"}, {"name": "y", "weight": 1, "model": "n"}]})
    b = Experiment({**EXPERIMENT, "name": "b"})
    rng = random.Random(0)
    keys = [f"k{i}" for i in range(20000)]
    share = sum(a.arm_at(a.point(k, rng)).name == "x" for k in keys) / len(keys)
    assert abs(share - 0.9) < 0.01
    both = Counter((a.arm_at(a.point(k, rng)).name, b.arm_at(b.point(k, rng)).name) for k in keys)
    assert abs(both[("x", "control")] / len(keys) - 0.45) < 0.015  # independent: 0.9 * 0.5
    assert a.point("k1", rng) == a.point("k1", random.Random(99))  # the key alone decides


async def test_the_arm_replaces_the_route_model_and_its_chain() -> None:
    policy = compile_policy(quickstart("http://127.0.0.1:9/v1", experiments=[EXPERIMENT]))
    router = Router(policy)
    assert bool(Experiments([])) is False
    for key in ("user-1", "user-2", "user-3"):
        decision = await router.decide(build_view({"model": "auto", "messages": [{"role": "user", "content": "x"}]}, {"x-user-id": key}))
        arm = decision.annotations["arm"]
        assert decision.annotations["experiment"] == "mini-vs-4o"
        assert decision.candidates == (("gpt-4o",) if arm == "control" else ("gpt-4o-mini", "gpt-4o"))
