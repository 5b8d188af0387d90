"""Control-plane numbers: policy convergence across real sidecars, and policy updates under load.

Everything runs on 127.0.0.1: the Kubernetes API emulator (in this process), the operator and N real
``modelroute sidecar`` processes (child processes), and a fake OpenAI provider.

1. Convergence: for each policy update, the time from the API accepting the change (the PATCH
   returning) to the last of the N sidecars logging that it applied the new version. Reported as
   p50 / p99 / max over ``--updates`` changes. Target: p99 < 1 s for 50 sidecars.
2. Updates under load: ``--load-updates`` policy changes while clients send chat requests to every
   sidecar without pause; every request must succeed.

    python bench/bench_convergence.py --sidecars 50 --updates 30 --load-updates 100
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import re
import statistics
import sys
import time
from typing import Any

import aiohttp

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from modelroute.policy import compile_policy
from modelroute.testing.fake_openai import FakeOpenAI
from tests.operator.harness import (
    Cluster,
    Process,
    chat,
    operator_process,
    policy_doc,
    sidecar_process,
    wait_for,
)

APPLIED = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) INFO modelroute.subscription: policy \S+ version (\w+) applied", re.MULTILINE)


def applied_at(proc: Process, version: str) -> float | None:
    """Wall-clock time at which ``proc`` logged applying ``version``."""
    for stamp, ver in APPLIED.findall(proc.output()):
        if ver == version:
            return datetime.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()
    return None


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def start_fleet(cluster: Cluster, fake: FakeOpenAI, n: int) -> tuple[Process, list[Process]]:
    operator = operator_process(cluster)
    operator.start()
    await operator.wait_ready()
    await cluster.apply(policy_doc("bench", fake.base_url, selector={"matchLabels": {"app": "bench"}}))
    sidecars = []
    for i in range(n):
        pod = await cluster.add_pod(f"bench-{i}", {"app": "bench"})
        sc = sidecar_process(operator.url, pod)
        sc.args = [a if a != "warning" else "info" for a in sc.args]
        sc.start()
        sidecars.append(sc)
    for sc in sidecars:
        await sc.wait_ready(timeout=120)
    return operator, sidecars


async def converge_once(cluster: Cluster, fake: FakeOpenAI, sidecars: list[Process], i: int) -> float:
    doc = policy_doc("bench", fake.base_url, default="gpt-4o" if i % 2 else "gpt-4o-mini",
                     selector={"matchLabels": {"app": "bench"}}, circuitBreaker={"failureThreshold": 3 + i})
    version = compile_policy(doc).version
    t0 = time.time()
    await cluster.apply(doc)
    stamps: dict[int, float] = {}

    def done() -> bool:
        for k, sc in enumerate(sidecars):
            if k not in stamps:
                at = applied_at(sc, version)
                if at is not None:
                    stamps[k] = at
        return len(stamps) == len(sidecars)

    await wait_for(done, 30, 0.25, f"update {i} on every sidecar")  # log stamps, not polling, give the time
    return max(stamps.values()) - t0


async def load(session: aiohttp.ClientSession, sidecars: list[Process], stop: asyncio.Event, results: dict[str, Any]) -> None:
    k = 0
    while not stop.is_set():
        sc = sidecars[k % len(sidecars)]
        k += 1
        try:
            status, body, _ = await chat(session, sc)
            if status == 200:
                results["ok"] += 1
            else:
                results["failed"].append(f"{sc.port}: {status} {json.dumps(body)[:200]}")
        except (TimeoutError, aiohttp.ClientError) as exc:
            results["failed"].append(f"{sc.port}: {exc!r}")


async def main(args: argparse.Namespace) -> dict[str, Any]:
    fake = FakeOpenAI(record=False)
    await fake.start()
    out: dict[str, Any] = {"sidecars": args.sidecars}
    async with Cluster() as cluster:
        t = time.monotonic()
        operator, sidecars = await start_fleet(cluster, fake, args.sidecars)
        out["fleet_start_s"] = round(time.monotonic() - t, 1)
        try:
            times = [await converge_once(cluster, fake, sidecars, i) for i in range(args.updates)]
            out["convergence_s"] = {"updates": len(times), "all": [round(x, 3) for x in times], "p50": round(statistics.median(times), 3),
                                    "p99": round(pct(times, 0.99), 3), "max": round(max(times), 3)}
            results: dict[str, Any] = {"ok": 0, "failed": []}
            stop = asyncio.Event()
            async with aiohttp.ClientSession() as session:
                workers = [asyncio.create_task(load(session, sidecars, stop, results)) for _ in range(args.concurrency)]
                t = time.monotonic()
                for i in range(args.load_updates):
                    doc = policy_doc("bench", fake.base_url, default="gpt-4o" if i % 2 else "gpt-4o-mini",
                                     selector={"matchLabels": {"app": "bench"}}, circuitBreaker={"failureThreshold": 100 + i})
                    await cluster.apply(doc)
                    await asyncio.sleep(args.update_interval)
                await asyncio.sleep(1.0)
                stop.set()
                await asyncio.gather(*workers)
                elapsed = time.monotonic() - t
            out["updates_under_load"] = {"updates": args.load_updates, "requests_ok": results["ok"],
                                         "requests_failed": len(results["failed"]), "seconds": round(elapsed, 1),
                                         "requests_per_s": round(results["ok"] / elapsed, 1),
                                         "first_failures": results["failed"][:5]}
        finally:
            for proc in [operator, *sidecars]:
                proc.stop()
    await fake.close()
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sidecars", type=int, default=50)
    parser.add_argument("--updates", type=int, default=30)
    parser.add_argument("--load-updates", type=int, default=100)
    parser.add_argument("--update-interval", type=float, default=0.2, help="seconds between updates under load")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent clients of the load")
    result = asyncio.run(main(parser.parse_args()))
    print(json.dumps(result, indent=2))
    ok = result["convergence_s"]["p99"] < 1.0 and result["updates_under_load"]["requests_failed"] == 0
    sys.exit(0 if ok else 1)
