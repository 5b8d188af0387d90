"""Spend control on the hot path: what the spend hook adds to one request, p50 and p99.

- a budget check, local: ``admit`` (worst case over the chain, reserve on two budgets: a policy
  budget and a per-team header budget) then ``settled`` (release, add the real cost);
- the same against a real redis-server on loopback (one Lua call to reserve; settling runs off the
  request path, measured apart).

Targets (issue 7): budget check < 100 µs locally and < 1 ms with Redis (p50).
Real parts only: the real hook on a real sidecar app's services, a real Exchange and RequestView.

    .venv/bin/python bench/bench_spend.py [--requests 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from modelroute.policy import compile_policy
from modelroute.providers import Usage
from modelroute.cli.compose import sidecar_app as build_app
from modelroute.proxy import SERVICES, PolicyHolder, Settings
from modelroute.proxy.exchange import Attempt, Exchange
from modelroute.proxy.state import Runtime
from modelroute.routing import Router, build_view
from modelroute.spend import SpendHook
from tests.support import quickstart

BODY = {"model": "auto", "messages": [{"role": "system", "content": "You are terse."},
                                      {"role": "user", "content": "Name three primary colours."}], "max_tokens": 200}
HEADERS = {"x-team": "search", "content-type": "application/json"}


def policy_doc(redis_url: str | None, limits: dict[str, int] | None) -> dict[str, Any]:
    doc = quickstart("http://127.0.0.1:9/v1")
    spec = doc["spec"]
    for model in spec["models"]:
        model["maxOutputTokens"] = 4096
        model.pop("limits", None)
    if limits is not None:
        spec["models"][0]["limits"] = limits
        spec["models"][1]["limits"] = {"rpm": 10**9, "tpm": 10**12}
    else:
        spec["budgets"] = [{"name": "team-daily", "scope": {"header": "x-team"}, "window": "day", "limitUSD": 10**6},
                           {"name": "policy-monthly", "scope": "policy", "window": "month", "limitUSD": 10**7}]
        if redis_url:
            spec["budgetStore"] = {"redis": {"url": redis_url}}
    return doc


class Bench:
    def __init__(self, doc: dict[str, Any]) -> None:
        policy = compile_policy(doc)
        self.app = build_app(PolicyHolder(policy), Settings())
        self.services = self.app[SERVICES]
        self.hook = next(h for h in self.services.hooks.items if isinstance(h, SpendHook))
        self.runtime = Runtime(policy=policy, router=Router(policy), providers={})

    async def exchange(self) -> Exchange:
        ex = Exchange(self.services, self.runtime, "chat", HEADERS)
        ex.view = build_view(BODY, HEADERS)
        ex.decision = await self.runtime.router.decide(ex.view)
        return ex


def pct(samples: list[float], q: float) -> float:
    return sorted(samples)[min(len(samples) - 1, int(q * len(samples)))]


def report(name: str, samples_ns: list[float], target_us: float) -> None:
    us = [s / 1000 for s in samples_ns]
    p50 = statistics.median(us)
    verdict = "ok" if p50 < target_us else "OVER TARGET"
    print(f"{name:<44} p50 {p50:8.1f} µs   p99 {pct(us, 0.99):8.1f} µs   target < {target_us:g} µs  {verdict}")


async def budget_check(n: int, redis_url: str | None) -> None:
    bench = Bench(policy_doc(redis_url, None))
    admit, settle = [], []
    for i in range(n + 50):
        ex = await bench.exchange()
        t0 = time.perf_counter_ns()
        await bench.hook.admit(ex)
        t1 = time.perf_counter_ns()
        ex.attempts = [Attempt("gpt-4o-mini", "ok", usage=Usage(20, 30))]
        bench.hook.settled(ex)
        await bench.hook.drain()  # Redis: the settlement task, off the request path in the sidecar
        t2 = time.perf_counter_ns()
        if i >= 50:
            admit.append(t1 - t0)
            settle.append(t2 - t1)
    where = "Redis on loopback" if redis_url else "local"
    report(f"budget check, {where}: admit (reserve x2)", admit, 1000 if redis_url else 100)
    report(f"budget check, {where}: admit + settle", [a + s for a, s in zip(admit, settle)], 2000 if redis_url else 100)
    rows = await bench.hook.ledger.snapshot(bench.hook.configs.get(bench.runtime.policy), bench.runtime.policy.name)
    assert all(r["reserved_usd"] == 0 for r in rows) and rows[0]["store"] == ("redis" if redis_url else "local")
    await bench.hook.close()


def start_redis() -> tuple[subprocess.Popen[bytes], str] | None:
    binary = shutil.which("redis-server")
    if binary is None:
        return None
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", tempfile.gettempdir()], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.02)
    proc.terminate()
    return None


async def main(n: int) -> None:
    await budget_check(n, None)
    started = start_redis()
    if started is None:
        print("budget check, Redis: skipped (redis-server is not installed)")
        return
    proc, url = started
    try:
        await budget_check(n, url)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=5000)
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main(args.requests))
