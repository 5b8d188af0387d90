"""What the quality monitor costs: the sidecar with monitoring on (heuristic checks on every answer,
feedback index, the judge sampling 1% of answers on its background queue) against the same sidecar
without the measurement hook.

"on" and "off" are one sidecar process whose measurement hook the benchmark takes out and puts back
between rounds (a bench-only endpoint), so the comparison is free of what makes two processes differ
(where their memory landed, which core they ran on): on this 2-core VM two identical sidecar
processes differ by up to 10% in a run. A second process without monitoring ("other process")
shows that cross-process spread, as a control.

Many short rounds alternate the targets (the order reversed every round), so a drift of the machine
hits them alike; each round compares them pairwise, and the report gives the median of the rounds,
their interquartile range and a bootstrap 95% confidence interval of that median. CPU time is each
thread's run time to the nanosecond (``proxy_overhead.cpu_seconds``). Figures: the latency each target adds over calling the provider
directly (p50), the sidecar's CPU time per request, and monitoring's share of the sidecar's
overhead (the bar: under 5%). Finally the hook alone, timed in process.

    .venv/bin/python bench/bench_monitoring.py [--requests 200] [--rounds 100] [--stream] [--judge-rate 0.01]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import aiohttp
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from proxy_overhead import BODY, LOAD_CORE, PROXY_CORE, cpu_seconds, free_port, load, spawn, wait_up

ROOT = Path(__file__).resolve().parents[1]
#: A target: (base URL, pid of the sidecar or None for the provider, monitoring to set first or None).
Target = tuple[str, int | None, bool | None]


def serve(policy: str, port: int, monitoring: bool) -> None:
    """Run a sidecar as ``modelroute serve`` does, with or without the measurement hook (the other
    hooks, spend control and batch, stay: they are not monitoring). ``POST /bench/monitoring/on``
    (or ``off``) puts the hook back in its place (or takes it out)."""
    from aiohttp import web

    from modelroute.cli.serve import settle_heap, use_uvloop
    from modelroute.cli.compose import sidecar_app as build_app
    from modelroute.proxy import SERVICES, PolicyHolder, Settings, load_policy_file
    from modelroute.quality.hook import MeasurementHook

    app = build_app(PolicyHolder(load_policy_file(policy)), Settings())
    hooks = app[SERVICES].hooks
    with_hook = list(hooks.items)
    without = [h for h in with_hook if not isinstance(h, MeasurementHook)]
    assert len(without) == len(with_hook) - 1, with_hook

    async def switch(request: web.Request) -> web.Response:
        hooks.replace(with_hook if request.match_info["state"] == "on" else without)
        return web.Response(text=request.match_info["state"])

    hooks.replace(with_hook if monitoring else without)
    app.router.add_post("/bench/monitoring/{state}", switch)
    use_uvloop()
    settle_heap()
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=lambda _: None)


async def hook_cost_us(policy: str, n: int = 10000) -> float:
    """CPU µs per request of the measurement hook alone (settled, its batches and its sampled
    judge calls), in process, each call with a new request id as live traffic has: the steadiest
    figure on a busy machine. The quietest of five rounds."""
    import time

    import aiohttp
    from aiohttp import web

    from modelroute.cli.compose import sidecar_app as build_app
    from modelroute.proxy import SERVICES, PolicyHolder, Settings, load_policy_file
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
        rounds, ids = [], iter([f"req_{i:024x}" for i in range(5 * n)])
        for _ in range(5):
            started = time.process_time()
            for _ in range(n):
                ex.request_id = next(ids)
                hook.settled(ex)
            await hook.drain()  # the sampled judge calls (real calls to the fake provider) count too
            rounds.append((time.process_time() - started) / n * 1e6)
        return min(rounds)
    finally:
        await runner.cleanup()


def policy_doc(upstream: str, judge_rate: float) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((ROOT / "examples/quickstart/policy.yaml").read_text())
    doc["spec"]["providers"][0]["baseURL"] = upstream + "/v1"
    doc["spec"]["models"].append({"name": "judge", "provider": doc["spec"]["providers"][0]["name"],
                                  "pricing": {"input": 0.15, "output": 0.6}})
    # the fake provider echoes the prompt's first words: this prompt makes its reply a valid score
    prompt = "Score 0.8 for: {question} / {answer}"
    doc["spec"]["quality"] = {"judge": {"model": "judge", "sampleRate": judge_rate, "prompt": prompt}}
    return doc


Sample = tuple[float, float]  # (p50 ms, CPU µs per request) of one target in one round


async def rounds(targets: dict[str, Target], concurrency: int, n: int, count: int, stream: bool) -> list[dict[str, Sample]]:
    """``count`` rounds; in each, every target gets a warm-up and ``n`` requests, in an order that
    reverses every round."""
    out = []
    names = list(targets)
    async with aiohttp.ClientSession() as http:
        for index in range(count):
            row: dict[str, Sample] = {}
            for name in names if index % 2 == 0 else names[::-1]:
                url, pid, monitoring = targets[name]
                if monitoring is not None:
                    async with http.post(url.removesuffix("/v1") + f"/bench/monitoring/{'on' if monitoring else 'off'}") as resp:
                        assert resp.status == 200, resp.status
                await load(url, max(50, n // 10), concurrency, stream)
                cpu = cpu_seconds(pid)
                latencies, _ = await load(url, n, concurrency, stream)
                row[name] = (statistics.median(latencies) * 1000, (cpu_seconds(pid) - cpu) / n * 1e6)
            out.append(row)
    return out


def spread(values: list[float]) -> str:
    """Median, interquartile range and a bootstrap 95% confidence interval of the median, in percent."""
    import random

    q = statistics.quantiles(values, n=4)
    rng = random.Random(0)
    medians = sorted(statistics.median(rng.choices(values, k=len(values))) for _ in range(2000))
    return (f"{statistics.median(values):+6.1f}% (IQR {q[0]:+.1f} .. {q[2]:+.1f}; "
            f"95% CI of the median {medians[50]:+.1f} .. {medians[1949]:+.1f})")


def report(concurrency: int, samples: list[dict[str, Sample]]) -> list[str]:
    lines = [f"\nconcurrency {concurrency}: {len(samples)} rounds",
             f"  {'target':<15}{'p50 ms':>9}{'added p50 ms':>14}{'CPU µs/req':>12}   (medians of the rounds)"]
    for name in samples[0]:
        p50 = statistics.median(r[name][0] for r in samples)
        added = statistics.median(r[name][0] - r["direct"][0] for r in samples)
        lines.append(f"  {name:<15}{p50:>9.3f}{added:>14.3f}{statistics.median(r[name][1] for r in samples):>12.0f}")

    def share(name: str, index: int) -> list[float]:
        if index == 0:  # latency added over direct
            return [((r[name][0] - r["direct"][0]) / (r["off"][0] - r["direct"][0]) - 1) * 100 for r in samples]
        return [(r[name][1] / r["off"][1] - 1) * 100 for r in samples]

    lines.append(f"  monitoring's share of the sidecar's overhead:  latency {spread(share('on', 0))}   CPU {spread(share('on', 1))}")
    lines.append(f"  control, another process without monitoring:  latency {spread(share('other process', 0))}   "
                 f"CPU {spread(share('other process', 1))}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200, help="requests per target and round (twice that at c=32)")
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--judge-rate", type=float, default=0.01)
    parser.add_argument("--pin", action="store_true", help="sidecars on one core, load and fake provider on another")
    parser.add_argument("--serve", choices=["on", "off"], help=argparse.SUPPRESS)
    parser.add_argument("--policy", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.policy, args.port, args.serve == "on")
        return
    py, me = sys.executable, str(Path(__file__).resolve())
    env = {**os.environ, "OPENAI_API_KEY": "sk-bench"}
    proxy_core = PROXY_CORE if args.pin and (os.cpu_count() or 1) > 1 else None
    load_core = LOAD_CORE if proxy_core is not None else None
    if load_core is not None:
        os.sched_setaffinity(0, {load_core})
    with spawn([py, "-m", "modelroute.testing.fake_openai", "--port", "0"], core=load_core) as fake, tempfile.TemporaryDirectory() as tmp:
        assert fake.stdout is not None
        upstream = fake.stdout.readline().strip()
        policy = os.path.join(tmp, "policy.yaml")
        Path(policy).write_text(yaml.safe_dump(policy_doc(upstream, args.judge_rate)))
        ports = {"main": free_port(), "other": free_port()}
        with spawn([py, me, "--serve", "on", "--policy", policy, "--port", str(ports["main"])], env, proxy_core) as main, \
             spawn([py, me, "--serve", "off", "--policy", policy, "--port", str(ports["other"])], env, proxy_core) as other:
            url = {name: f"http://127.0.0.1:{port}/v1" for name, port in ports.items()}
            targets: dict[str, Target] = {"direct": (upstream + "/v1", None, None), "off": (url["main"], main.pid, False),
                                          "on": (url["main"], main.pid, True), "other process": (url["other"], other.pid, None)}

            async def run() -> dict[int, list[dict[str, Sample]]]:
                for address, _, _ in targets.values():
                    await wait_up(address)
                await asyncio.sleep(1)
                return {c: await rounds(targets, c, args.requests * (2 if c > 1 else 1), args.rounds, args.stream) for c in (1, 32)}

            results = asyncio.run(run())
        os.environ["OPENAI_API_KEY"] = "sk-bench"
        hook_us = asyncio.run(hook_cost_us(policy))
    mode = "streaming" if args.stream else "non-streaming"
    pinned = "; sidecars pinned to their own core" if proxy_core is not None else ""
    print(f"monitoring overhead ({mode}; heuristic checks on every answer, feedback index, judge sampling {args.judge_rate:.0%}{pinned})")
    for concurrency, samples in results.items():
        print("\n".join(report(concurrency, samples)))
    cpu = min(statistics.median(r["off"][1] for r in samples) for samples in results.values())
    print(f"\nthe hook alone, in process: {hook_us:.1f} µs CPU per request = {hook_us / cpu * 100:.1f}% of the sidecar's "
          f"CPU per request without it ({cpu:.0f} µs, the lower of the two concurrencies)")


if __name__ == "__main__":
    main()
