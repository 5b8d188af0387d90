"""What the quality monitor costs: the sidecar with monitoring on (heuristic checks on every answer,
feedback index, the judge sampling 1% of answers on its background queue) against the same sidecar
with no hooks, both in front of one fake provider, in one run.

Prints p50/p99 latency, the latency each sidecar adds over calling the provider directly, its CPU
time per request, and the monitoring's share of the sidecar's overhead (the bar: under 5%).

    .venv/bin/python bench/bench_monitoring.py [--requests 2000] [--stream] [--judge-rate 0.01]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from proxy_overhead import BODY, free_port, measure, spawn, table, wait_up

ROOT = Path(__file__).resolve().parents[1]


def serve(policy: str, port: int, monitoring: bool) -> None:
    """Run a sidecar as ``modelroute serve`` does, with or without the measurement hook (the other
    hooks, spend control and batch, stay: they are not monitoring)."""
    from aiohttp import web

    from modelroute.cli.serve import settle_heap, use_uvloop
    from modelroute.proxy import SERVICES, PolicyHolder, Settings, build_app, load_policy_file

    app = build_app(PolicyHolder(load_policy_file(policy)), Settings())
    if not monitoring:
        from modelroute.quality.hook import MeasurementHook

        hooks = app[SERVICES].hooks.items
        hooks[:] = [h for h in hooks if not isinstance(h, MeasurementHook)]
        assert len(hooks) == 2, hooks
    use_uvloop()
    settle_heap()
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=lambda _: None)


async def hook_cost_us(policy: str, upstream: str, n: int = 10000) -> float:
    """CPU µs per request of the measurement hook alone (admit, settled and the deferred checks), in process:
    steadier than the end-to-end figures on a busy machine."""
    import time

    import aiohttp
    from aiohttp import web

    from modelroute.proxy import SERVICES, PolicyHolder, Settings, build_app, load_policy_file
    from modelroute.quality.hook import MeasurementHook

    grabbed: list[Any] = []

    class Grab:
        async def admit(self, ex: Any) -> None: ...
        def skip(self, ex: Any, model: str) -> None: ...
        def settled(self, ex: Any) -> None:
            grabbed.append(ex)

    app = build_app(PolicyHolder(load_policy_file(policy)), Settings(hooks=(Grab(),)))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with aiohttp.ClientSession() as http, http.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=BODY) as resp:
            await resp.read()
        ex = grabbed[0]
        hook = next(h for h in app[SERVICES].hooks.items if isinstance(h, MeasurementHook))
        rounds = []
        for _ in range(5):  # the quietest of five rounds
            started = time.process_time()
            for i in range(n):
                await hook.admit(ex)
                hook.settled(ex)
                if i % 100 == 99:
                    await asyncio.sleep(0)  # run the deferred checks
            await hook.drain()
            rounds.append((time.process_time() - started) / n * 1e6)
        return min(rounds)
    finally:
        await runner.cleanup()


def policy_doc(upstream: str, judge_rate: float) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((ROOT / "examples/quickstart/policy.yaml").read_text())
    doc["spec"]["providers"][0]["baseURL"] = upstream + "/v1"
    doc["spec"]["models"].append({"name": "judge", "provider": doc["spec"]["providers"][0]["name"],
                                  "pricing": {"input": 0.15, "output": 0.6}})
    doc["spec"]["quality"] = {"judge": {"model": "judge", "sampleRate": judge_rate}}
    return doc


def report(results: dict[int, dict[str, dict[str, float]]], judge_rate: float) -> str:
    lines = [f"monitoring on: heuristic checks on every answer, feedback index, judge sampling {judge_rate:.0%}"]
    for concurrency, row in results.items():
        direct = row["direct"]["p50"]
        lines += table(concurrency, row, name_width=16, cpu_label="sidecar CPU µs/req")
        off, on = row["monitoring-off"], row["monitoring-on"]
        added_off, added_on = off["p50"] - direct, on["p50"] - direct
        latency = (added_on - added_off) / added_off * 100 if added_off > 0 else float("nan")
        cpu = (on["cpu_us"] - off["cpu_us"]) / off["cpu_us"] * 100 if off["cpu_us"] else float("nan")
        lines.append(f"  monitoring's share of the sidecar's overhead: latency {latency:+.1f}%, CPU {cpu:+.1f}%, "
                     f"throughput {(on['rps'] / off['rps'] - 1) * 100:+.1f}%")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--judge-rate", type=float, default=0.01)
    parser.add_argument("--serve", choices=["on", "off"], help=argparse.SUPPRESS)
    parser.add_argument("--policy", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.policy, args.port, args.serve == "on")
        return
    py = sys.executable
    with spawn([py, "-m", "modelroute.testing.fake_openai", "--port", "0"]) as fake, tempfile.TemporaryDirectory() as tmp:
        assert fake.stdout is not None
        upstream = fake.stdout.readline().strip()
        policy = os.path.join(tmp, "policy.yaml")
        Path(policy).write_text(yaml.safe_dump(policy_doc(upstream, args.judge_rate)))
        ports = {"off": free_port(), "on": free_port()}
        env = {**os.environ, "OPENAI_API_KEY": "sk-bench"}
        me = str(Path(__file__).resolve())
        with spawn([py, me, "--serve", "off", "--policy", policy, "--port", str(ports["off"])], env) as off, \
             spawn([py, me, "--serve", "on", "--policy", policy, "--port", str(ports["on"])], env) as on:
            targets = {"direct": (upstream + "/v1", None),
                       "monitoring-off": (f"http://127.0.0.1:{ports['off']}/v1", off.pid),
                       "monitoring-on": (f"http://127.0.0.1:{ports['on']}/v1", on.pid)}

            async def run() -> dict[int, dict[str, dict[str, float]]]:
                for url, _ in targets.values():
                    await wait_up(url)
                await asyncio.sleep(1)
                return await measure(targets, args.requests, args.stream)

            results = asyncio.run(run())
        hook_us = asyncio.run(hook_cost_us(policy, upstream))
    mode = "streaming" if args.stream else "non-streaming"
    print(f"monitoring overhead ({mode}, {args.requests} requests per round, best of 3 rounds)")
    print(report(results, args.judge_rate))
    sidecar_cpu = min(row["monitoring-off"]["cpu_us"] for row in results.values())
    print(f"\nthe hook alone, in process: {hook_us:.1f} µs CPU per request = {hook_us / sidecar_cpu * 100:.1f}% of the sidecar's "
          f"least CPU per request without it ({sidecar_cpu:.0f} µs)")


if __name__ == "__main__":
    main()
