"""Rate limits on the hot path: what the rate-limit hook adds to a request, with ratios against
the same run without the feature.

1. The hook alone (real hook, real Exchange and RequestView): ``admit`` + ``skip`` +
   ``attempted`` (OpenAI's six headers) + ``settled``, per request: local buckets, and the fleet's
   buckets in a real redis-server on loopback (leases; a request waits for Redis only when its
   sidecar's lease ran dry). p50 and p99.
2. End to end: sequential requests through a real sidecar to a fake provider that sends the
   rate-limit headers, with the policy's ``rateLimits`` (local, then shared in Redis) against the
   same policy without it (the feature idle), interleaved in rounds; the ratio of medians.

    .venv/bin/python bench/bench_ratelimits.py [--requests 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_spend import pct, start_redis  # noqa: E402
from modelroute.cli.compose import sidecar_app  # noqa: E402
from modelroute.policy import compile_policy  # noqa: E402
from modelroute.providers import Usage  # noqa: E402
from modelroute.proxy import SERVICES, PolicyHolder, Settings  # noqa: E402
from modelroute.proxy.exchange import Attempt, Exchange  # noqa: E402
from modelroute.proxy.state import Runtime  # noqa: E402
from modelroute.providers import EnvFileKeys  # noqa: E402
from modelroute.ratelimits import RateLimitHook  # noqa: E402
from modelroute.routing import Router, build_view  # noqa: E402
from modelroute.testing.fake_openai import FakeOpenAI  # noqa: E402
from modelroute.testing.org_limits import OrgLimiter, OrgLimits  # noqa: E402
from tests.support import PROVIDER_KEY, quickstart  # noqa: E402

BODY = {"model": "auto", "messages": [{"role": "user", "content": "Name three primary colours."}], "max_tokens": 200}
HEADERS = {"content-type": "application/json"}
UPSTREAM = {"x-ratelimit-limit-requests": "30000", "x-ratelimit-remaining-requests": "29990", "x-ratelimit-reset-requests": "20ms",
            "x-ratelimit-limit-tokens": "150000000", "x-ratelimit-remaining-tokens": "149990000", "x-ratelimit-reset-tokens": "4ms"}


def policy_doc(base_url: str, redis_url: str | None, on: bool) -> dict[str, Any]:
    doc = quickstart(base_url)
    for model in doc["spec"]["models"]:
        model.pop("limits", None)
    if on:
        doc["spec"]["models"][0]["limits"] = {"rpm": 30000, "tpm": 150_000_000}
        doc["spec"]["rateLimits"] = {"store": "shared"} if redis_url else {}
        if redis_url:
            doc["spec"]["budgetStore"] = {"redis": {"url": redis_url}}
    return doc


def report(name: str, ns: list[float]) -> None:
    us = [s / 1000 for s in ns]
    print(f"{name:<52} p50 {statistics.median(us):8.1f} µs   p99 {pct(us, 0.99):8.1f} µs")


async def hook_alone(n: int, redis_url: str | None) -> None:
    policy = compile_policy(policy_doc("http://127.0.0.1:9/v1", redis_url, True))
    app = sidecar_app(PolicyHolder(policy), Settings(keys=EnvFileKeys({"TEST_PROVIDER_KEY": PROVIDER_KEY})))
    services = app[SERVICES]
    hook = next(h for h in services.hooks.items if isinstance(h, RateLimitHook))
    from prometheus_client import CollectorRegistry

    hook.bind(CollectorRegistry())
    import aiohttp as _a

    async with _a.ClientSession() as session:
        from modelroute.providers import build_providers

        runtime = Runtime(policy=policy, router=Router(policy), providers=build_providers(policy, session, services.settings.keys))
        samples = []
        for i in range(n + 200):
            ex = Exchange(services, runtime, "chat", HEADERS)
            ex.view = build_view(BODY, HEADERS)
            ex.decision = await runtime.router.decide(ex.view)
            t0 = time.perf_counter_ns()
            if redis_url:
                await hook.admit(ex)
            reason = hook.skip(ex, "gpt-4o-mini")
            hook.attempted(ex, "gpt-4o-mini", UPSTREAM)
            ex.attempts = [Attempt("gpt-4o-mini", "ok", usage=Usage(20, 30))]
            hook.settled(ex)
            elapsed = time.perf_counter_ns() - t0
            assert reason is None, reason
            if i >= 200:
                samples.append(elapsed)
            await asyncio.sleep(0)  # let a background top-up run, as between requests in a sidecar
        where = "Redis on loopback" if redis_url else "local"
        report(f"hook alone, {where}: admit+skip+attempted+settled", samples)
        if redis_url:
            store = next(iter(hook.stores.values()))
            print(f"  Redis round trips: {store.round_trips} for {n + 200} requests")
    await hook.close()


async def end_to_end(n: int, redis_url: str | None) -> None:
    async with FakeOpenAI(org=OrgLimiter({"*": OrgLimits(rpm=10**7, tpm=10**10)}), record=False) as fake:
        runners, urls = [], []
        for on in (False, True):
            app = sidecar_app(PolicyHolder(compile_policy(policy_doc(fake.base_url, redis_url, on))),
                              Settings(keys=EnvFileKeys({"TEST_PROVIDER_KEY": PROVIDER_KEY})))
            runner = aiohttp.web.AppRunner(app, access_log=None)
            await runner.setup()
            site = aiohttp.web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            runners.append(runner)
            urls.append(f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/v1/chat/completions")  # type: ignore[union-attr]
        times: list[list[float]] = [[], []]
        async with aiohttp.ClientSession() as http:
            for round_ in range(n // 50 + 2):
                for k in (0, 1):
                    for _ in range(50):
                        t0 = time.perf_counter_ns()
                        async with http.post(urls[k], json=BODY) as resp:
                            await resp.read()
                            assert resp.status == 200
                        if round_ >= 2:
                            times[k].append(time.perf_counter_ns() - t0)
        for runner in runners:
            await runner.cleanup()
    off, on = statistics.median(times[0]), statistics.median(times[1])
    where = "shared in Redis" if redis_url else "local"
    print(f"end to end, rateLimits {where}: p50 {on / 1000:.0f} µs vs {off / 1000:.0f} µs without: ratio {on / off:.3f}; "
          f"p99 {pct(times[1], 0.99) / 1000:.0f} µs vs {pct(times[0], 0.99) / 1000:.0f} µs")


async def main(n: int) -> None:
    await hook_alone(n, None)
    started = start_redis()
    if started is None:
        print("Redis: skipped (redis-server is not installed)")
        await end_to_end(n // 3, None)
        return
    proc, url = started
    try:
        await hook_alone(n, url)
        await end_to_end(n // 3, None)
        await end_to_end(n // 3, url)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main(args.requests))
