"""Cost flat with the work: per-request overhead from a 3-route policy to a 1,000-route policy.

Two measurements in one run:

1. ``Router.decide`` in-process, for policies of 3, 10, 100 and 1,000 routes (each route a match
   block on a tenant header plus a CEL condition, as a multi-tenant policy has), for a request of
   a tenant in the middle of the list and for one that matches no route;
2. the whole sidecar: two ``modelroute serve`` processes, one on the 3-route policy and one on the
   1,000-route policy, in front of the same fake provider; requests alternate between them one by
   one (concurrency 1), and the ratio of their added latency and CPU per request is reported.

    .venv/bin/python bench/bench_policy_size.py [--requests 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import timed  # noqa: E402
from proxy_overhead import cpu_seconds, free_port, spawn  # noqa: E402

from modelroute.policy import compile_policy  # noqa: E402
from modelroute.routing import Router, build_view  # noqa: E402


def policy(routes: int, base_url: str = "http://127.0.0.1:9/v1") -> dict[str, Any]:
    tenants = [{"name": f"tenant-{i}", "match": {"headers": {"x-tenant": f"t{i}"}},
                "when": "request.input_tokens < 100000 && !request.stream", "model": "gpt-4o"} for i in range(max(0, routes - 3))]
    generic = [{"name": "code", "match": {"task": ["code"]}, "model": "gpt-4o"},
               {"name": "premium", "match": {"headers": {"x-tier": "premium"}}, "model": "gpt-4o"},
               {"name": "long", "when": "request.input_tokens > 100000", "model": "gpt-4o"}]
    return {"apiVersion": "modelroute.dev/v1alpha1", "kind": "RoutingPolicy", "metadata": {"name": f"routes-{routes}"},
            "spec": {"providers": [{"name": "openai", "type": "openai", "baseURL": base_url, "apiKey": {"env": "BENCH_KEY"}}],
                     "models": [{"name": "gpt-4o-mini", "provider": "openai", "pricing": {"input": 0.15, "output": 0.6}},
                                {"name": "gpt-4o", "provider": "openai", "pricing": {"input": 2.5, "output": 10}}],
                     "default": "gpt-4o-mini", "routes": tenants + generic}}


BODY = {"model": "auto", "messages": [{"role": "user", "content": "Name three primary colours."}]}


def decide_curve() -> None:
    print("Router.decide (in-process), p50 µs")
    print(f"{'routes':>7}{'a tenant in the middle':>25}{'no route matches':>19}")
    for size in (3, 10, 100, 1000):
        router = Router(compile_policy(policy(size)))
        middle = build_view(BODY, {"x-tenant": f"t{max(0, size - 3) // 2}"})
        none = build_view(BODY, {})
        loop = asyncio.new_event_loop()
        a = timed(lambda: loop.run_until_complete(router.decide(middle)), 3000, warmup=200)
        b = timed(lambda: loop.run_until_complete(router.decide(none)), 3000, warmup=200)
        loop.close()
        print(f"{size:>7}{statistics.median(a) * 1e6:>25.1f}{statistics.median(b) * 1e6:>19.1f}")


async def sidecars(requests: int, small: str, large: str, small_pid: int, large_pid: int, direct: str) -> None:
    body = json.dumps(BODY).encode()
    headers = {"Content-Type": "application/json", "x-tenant": "t500"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        async def one(url: str) -> float:
            start = time.perf_counter()
            async with http.post(url + "/v1/chat/completions", data=body, headers=headers) as resp:
                await resp.read()
                assert resp.status == 200, await resp.text()
            return time.perf_counter() - start

        for _ in range(300):
            for url in (direct, small, large):
                await one(url)
        lat: dict[str, list[float]] = {"direct": [], "3 routes": [], "1000 routes": []}
        cpu = {"3 routes": cpu_seconds(small_pid), "1000 routes": cpu_seconds(large_pid)}
        for i in range(requests):
            order = [("direct", direct), ("3 routes", small), ("1000 routes", large)]
            for name, url in order[i % 3:] + order[:i % 3]:
                lat[name].append(await one(url))
        cpu = {"3 routes": (cpu_seconds(small_pid) - cpu["3 routes"]) / requests * 1e6,
               "1000 routes": (cpu_seconds(large_pid) - cpu["1000 routes"]) / requests * 1e6}
    p50 = {k: statistics.median(v) * 1000 for k, v in lat.items()}
    added = {k: p50[k] - p50["direct"] for k in ("3 routes", "1000 routes")}
    print(f"\nthe sidecar, concurrency 1, {requests} requests each, interleaved (a tenant's request: x-tenant t500)")
    for name in added:
        print(f"  {name:<12} added p50 {added[name]:.3f} ms   CPU {cpu[name]:.0f} µs/request")
    print(f"  ratio 1000 / 3 routes: added p50 {added['1000 routes'] / added['3 routes']:.3f}, "
          f"CPU {cpu['1000 routes'] / cpu['3 routes']:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args()
    decide_curve()
    py = sys.executable
    with spawn([py, "-m", "modelroute.testing.fake_openai", "--port", "0"]) as fake, tempfile.TemporaryDirectory() as tmp:
        assert fake.stdout is not None
        upstream = fake.stdout.readline().strip()
        paths, ports = {}, {}
        for size in (3, 1000):
            paths[size] = os.path.join(tmp, f"p{size}.yaml")
            Path(paths[size]).write_text(yaml.safe_dump(policy(size, upstream + "/v1")))
            ports[size] = free_port()
        env = {**os.environ, "BENCH_KEY": "sk-bench"}
        with spawn([py, "-m", "modelroute", "serve", "--policy", paths[3], "--port", str(ports[3]), "--log-level", "error"], env) as s3, \
             spawn([py, "-m", "modelroute", "serve", "--policy", paths[1000], "--port", str(ports[1000]), "--log-level", "error"], env) as s1000:
            async def run() -> None:
                async with aiohttp.ClientSession() as http:
                    for port in ports.values():
                        for _ in range(1200):
                            try:
                                async with http.get(f"http://127.0.0.1:{port}/readyz") as resp:
                                    if resp.status == 200:
                                        break
                            except aiohttp.ClientError:
                                pass
                            await asyncio.sleep(0.05)
                await sidecars(args.requests, f"http://127.0.0.1:{ports[3]}", f"http://127.0.0.1:{ports[1000]}", s3.pid, s1000.pid,
                               upstream)

            asyncio.run(run())


if __name__ == "__main__":
    main()
