"""Run examples/06-budgets/policy.yaml against the fake OpenAI provider (Files and Batch APIs too)
and show, with the real openai SDK: rate-limit overflow, a team budget downgrading, the monthly
budget rejecting, ``GET /v1/budgets``, and a deferred batch request.

    .venv/bin/python examples/06-budgets/demo.py
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import aiohttp
import openai
import yaml
from aiohttp import web

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from modelroute.policy import compile_policy
from modelroute.providers import EnvFileKeys
from modelroute.proxy import PolicyHolder, Settings, build_app
from modelroute.testing.fake_openai_batch import FakeOpenAIBatch

LONG = "Summarise the quarterly figures for the board. " * 40


async def main() -> None:
    fake = FakeOpenAIBatch()
    await fake.start()
    doc = yaml.safe_load((Path(__file__).parent / "policy.yaml").read_text())
    doc["spec"]["providers"][0]["baseURL"] = fake.base_url
    app = build_app(PolicyHolder(compile_policy(doc)), Settings(keys=EnvFileKeys({"OPENAI_API_KEY": "sk-demo"})))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    async with openai.AsyncOpenAI(base_url=url + "/v1", api_key="unused", max_retries=0) as client:
        print("rate limits: gpt-4.1-nano allows 3 requests per minute in this sidecar, then gpt-4o-mini serves")
        for i in range(4):
            raw = await client.chat.completions.with_raw_response.create(
                model="auto", messages=[{"role": "user", "content": f"hello {i}"}], max_tokens=50)
            print(f"  request {i + 1}: served by {raw.headers['x-modelroute-model']}")
    async with aiohttp.ClientSession() as http:
        payload = {"model": "auto", "messages": [{"role": "user", "content": "Write the nightly report."}], "max_tokens": 200}
        async with http.post(url + "/v1/chat/completions", json=payload,
                             headers={"x-job": "nightly-report", "x-modelroute-deadline": "24h"}) as resp:
            handle = await resp.json()
            print(f"deferred (route reports, batch: preferred, x-modelroute-deadline: 24h): {resp.status} "
                  + json.dumps({k: handle[k] for k in ("id", "status", "model", "url")}))
        fake.complete_all()
        async with http.get(url + handle["url"]) as resp:
            done = await resp.json()
            print(f"  GET {handle['url']}: {resp.status} {done['status']}, cost USD {done['cost_usd']} (batch price), "
                  f"answer: {done['response']['choices'][0]['message']['content']!r}")
    async with openai.AsyncOpenAI(base_url=url + "/v1", api_key="unused", max_retries=0) as client:
        print("team budget: x-team=search on the premium route (gpt-4o), USD 0.008 a day, then gpt-4o-mini")
        for i in range(6):
            raw = await client.chat.completions.with_raw_response.create(
                model="auto", messages=[{"role": "user", "content": LONG}], max_tokens=200,
                extra_headers={"x-team": "search", "x-user-tier": "premium"})
            print(f"  request {i + 1}: served by {raw.headers['x-modelroute-model']:<12} cost USD {raw.headers['x-modelroute-cost-usd']}")
        print("monthly budget: USD 0.02 for the whole policy, then 429 budget_exceeded")
        served = 0
        try:
            for _ in range(20):
                await client.chat.completions.create(model="auto", messages=[{"role": "user", "content": LONG}], max_tokens=200,
                                                     extra_headers={"x-user-tier": "premium"})
                served += 1
        except openai.RateLimitError as exc:
            body = exc.body if isinstance(exc.body, dict) else {}
            print(f"  after {served} more requests: 429 {body.get('type')}: {body.get('message')}")
    async with aiohttp.ClientSession() as http, http.get(url + "/v1/budgets") as resp:
        print("GET /v1/budgets")
        for row in (await resp.json())["data"]:
            print("  " + json.dumps({k: row[k] for k in ("budget", "scope", "window", "limit_usd", "spent_usd", "reserved_usd",
                                                          "remaining_usd")}))
    await runner.cleanup()
    await fake.close()


if __name__ == "__main__":
    asyncio.run(main())
