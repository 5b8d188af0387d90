"""``modelroute report`` against a real sidecar: its figures match the requests that were sent."""

from __future__ import annotations

import asyncio
import json
import sys
from collections import defaultdict
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import aiohttp
import openai
import pytest

from modelroute.quality.hook import MeasurementHook
from modelroute.report.stats import (
    mean_estimate,
    proportion_estimate,
    proportions_p,
    significant,
    welch_p,
)
from modelroute.testing.fake_openai import FakeOpenAI
from tests.quality.fake_judge import FakeJudge, judged_policy
from tests.support import APP_KEY, SidecarFactory

EXPERIMENT = [{"name": "premium-mini", "key": {"header": "x-user-id"}, "appliesTo": ["premium"],
               "arms": [{"name": "control", "model": "gpt-4o"}, {"name": "candidate", "model": "gpt-4o-mini"}]}]
GPT4O = (Decimal("2.5"), Decimal(10))


@pytest.fixture
async def judge_server() -> AsyncIterator[FakeJudge]:
    async with FakeJudge() as judge:
        yield judge


async def modelroute(*args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "modelroute", *args, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode() + err.decode()


async def test_report_figures_match_the_requests_sent(make_sidecar: SidecarFactory, fake_openai: FakeOpenAI,
                                                      judge_server: FakeJudge) -> None:
    doc = judged_policy(fake_openai.base_url, judge_server.base_url)
    doc["spec"]["experiments"] = EXPERIMENT
    sidecar = await make_sidecar(doc)
    fake_openai.fail("gpt-4o-mini", status=500, times=2)  # the first two default requests fall back to gpt-4o
    sent: dict[str, list[Any]] = defaultdict(list)
    arms: dict[str, int] = defaultdict(int)
    async with openai.AsyncOpenAI(base_url=sidecar.base_url, api_key=APP_KEY, max_retries=0) as client:
        async def send(route: str, headers: dict[str, str], **extra: Any) -> str:
            raw = await client.chat.completions.with_raw_response.create(
                model="auto", messages=[{"role": "user", "content": f"question about {route}"}], extra_headers=headers, **extra)
            assert raw.headers["x-modelroute-route"] == route
            usage = raw.parse().usage
            assert usage is not None
            baseline = (usage.prompt_tokens * GPT4O[0] + usage.completion_tokens * GPT4O[1]) / 1_000_000
            sent[route].append((Decimal(raw.headers["x-modelroute-cost-usd"]), baseline, raw.headers["x-modelroute-model"]))
            if "x-modelroute-arm" in raw.headers:
                arms[raw.headers["x-modelroute-arm"]] += 1
            return raw.headers["x-modelroute-request-id"]

        default_ids = [await send("default", {}, **({"max_tokens": 2} if i in (2, 3) else {})) for i in range(10)]
        for _ in range(4):
            await send("code", {"x-modelroute-task": "code_generation"})
        for i in range(40):
            await send("premium", {"x-user-tier": "premium", "x-user-id": f"user-{i % 20}"})
    async with aiohttp.ClientSession() as http:
        for rid, score in zip(default_ids, (1.0, 0.5, 0.0)):
            async with http.post(sidecar.url + "/v1/feedback", json={"request_id": rid, "score": score}) as resp:
                assert resp.status == 200
    await next(h for h in sidecar.services.hooks.items if isinstance(h, MeasurementHook)).drain()

    code, out = await modelroute("report", "--url", sidecar.url, "--json")
    assert code == 0, out
    report = json.loads(out)
    assert report["policy"] == "quickstart"
    routes = {r["route"]: r for r in report["routes"]}
    assert {k: v["requests"] for k, v in routes.items()} == {"default": 10, "code": 4, "premium": 40}
    for route, rows in sent.items():
        cost, baseline = sum(r[0] for r in rows), sum(r[1] for r in rows)
        assert routes[route]["cost"] == pytest.approx(float(cost), rel=1e-9)
        assert routes[route]["baseline_cost"] == pytest.approx(float(baseline), rel=1e-9)
        assert routes[route]["saving"] == pytest.approx(float(1 - cost / baseline), rel=1e-9)
        assert routes[route]["share"] == pytest.approx(len(rows) / 54)
    default = routes["default"]
    assert default["models"] == {"gpt-4o": 2, "gpt-4o-mini": 8}
    assert default["fallback_rate"] == pytest.approx(0.2) and default["escalation_rate"] == 0
    assert default["pass_rate"]["mean"] == pytest.approx(0.8) and default["pass_rate"]["n"] == 10
    assert default["judge"]["mean"] == pytest.approx((2 * 0.9 + 8 * 0.6) / 10) and default["judge"]["n"] == 10
    assert default["feedback"]["mean"] == pytest.approx(0.5) and default["feedback"]["n"] == 3
    assert 0 < default["p50"] <= default["p95"] <= 0.5
    by_arm = {a["arm"]: a for a in report["arms"]}
    assert {k: v["requests"] for k, v in by_arm.items()} == arms and sum(arms.values()) == 40
    control, candidate = by_arm["control"], by_arm["candidate"]
    assert control["reference"] and control["judge"]["mean"] == pytest.approx(0.9)
    assert candidate["judge"]["mean"] == pytest.approx(0.6)
    premium_cost = {m: [r[0] for r in sent["premium"] if r[2] == m] for m in ("gpt-4o", "gpt-4o-mini")}
    assert control["cost"]["mean"] == pytest.approx(float(sum(premium_cost["gpt-4o"]) / len(premium_cost["gpt-4o"])))
    assert candidate["versus"]["judge"]["significant"] is False  # 20-odd requests an arm: too few to call

    code, text = await modelroute("report", "--url", sidecar.url)
    assert code == 0 and "experiment premium-mini" in text and "default" in text and "reference" in text


def test_significance_needs_a_real_difference_and_enough_samples() -> None:
    a = proportion_estimate(90, 100)
    b = proportion_estimate(70, 100)
    assert a is not None and b is not None and a.low < 0.9 < a.high
    p = proportions_p(a, b)
    assert p is not None and p < 0.001 and significant(p, a, b)
    same = proportion_estimate(71, 100)
    assert same is not None and not significant(proportions_p(same, b), same, b)
    x = mean_estimate(100, 100 * 0.5, 100 * (0.5 ** 2 + 0.01))  # mean 0.5, variance ~0.01
    y = mean_estimate(100, 100 * 0.52, 100 * (0.52 ** 2 + 0.01))
    assert x is not None and y is not None and x.half_width == pytest.approx(1.96 * (0.01 * 100 / 99 / 100) ** 0.5, rel=1e-3)
    pxy = welch_p(x, y)
    assert pxy is not None and 0.1 < pxy < 0.2 and not significant(pxy, x, y)
    few = mean_estimate(10, 10 * 0.9, 10 * 0.81)
    assert not significant(0.0001, few, x)  # fewer than 30 observations: never significant
