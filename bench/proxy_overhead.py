"""Sidecar overhead: the same load sent directly to a fake provider, through a bare aiohttp
pass-through proxy, and through the sidecar on the quickstart policy, in one run.

Prints p50/p99 latency, added latency over direct, requests/s, proxy CPU per request and the
overhead ratio (sidecar added latency / pass-through added latency) at concurrency 1 and 32, plus
the sidecar's idle RSS. Every process runs on this machine (2 cores: the figures are ratios within
one run). This VM's speed drifts from second to second, so the targets are never measured far
apart: at concurrency 1 the three take turns request by request; at concurrency 32 each round runs
the three back to back and the ratio is taken within the round. The ratio printed is the median
of the rounds', each round's shown beside it.

    .venv/bin/python bench/proxy_overhead.py [--requests 2000] [--rounds 5] [--stream]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

import aiohttp
import yaml

ROOT = Path(__file__).resolve().parents[1]
BODY: dict[str, object] = {"model": "gpt-4o", "messages": [{"role": "system", "content": "You are terse."},
                                                            {"role": "user", "content": "Name three primary colours."}]}
PATH = "/chat/completions"
#: --api: the path and body of each kind of request (the sidecar routes chat and Responses; a
#: moderation is passed through unrouted).
APIS: dict[str, tuple[str, dict[str, object]]] = {
    "chat": (PATH, BODY),
    "responses": ("/responses", {"model": "gpt-4o", "instructions": "You are terse.", "input": "Name three primary colours."}),
    "passthrough": ("/moderations", {"model": "omni-moderation-latest", "input": "Name three primary colours."}),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


#: With --pin (and two or more cores): the proxies under test on their own core, the load generator
#: and the fake provider on another, so neither proxy competes with the load for CPU.
PROXY_CORE, LOAD_CORE = 1, 0


@contextlib.contextmanager
def spawn(args: list[str], env: dict[str, str] | None = None, core: int | None = None) -> Iterator[subprocess.Popen[str]]:
    pin = (lambda: os.sched_setaffinity(0, {core})) if core is not None else None
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, preexec_fn=pin)
    try:
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def cpu_seconds(pid: int | None) -> float:
    """CPU time of a process so far, to the nanosecond: the run time of each of its threads
    (``/proc/PID/task/*/schedstat``). ``/proc/PID/stat`` counts user and system time in 10 ms
    ticks, 2% of a 2,000-request round at c=32: a ratio of two rounds read that way moves by up to 4%
    from rounding alone."""
    if pid is None:
        return 0.0
    total, tasks = 0, f"/proc/{pid}/task"
    if not os.path.exists(f"{tasks}/{pid}/schedstat"):  # a kernel without schedstat: ticks
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    for task in os.listdir(tasks):
        try:
            with open(f"{tasks}/{task}/schedstat") as fh:
                total += int(fh.read().split()[0])
        except (FileNotFoundError, ProcessLookupError):  # the thread ended meanwhile
            continue
    return total / 1e9


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


async def wait_up(url: str) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(400):
            with contextlib.suppress(aiohttp.ClientError):
                async with http.post(url + PATH, json=BODY) as resp:
                    if resp.status == 200:
                        return
            await asyncio.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")


async def load(url: str, total: int, concurrency: int, stream: bool) -> tuple[list[float], float]:
    body = json.dumps({**BODY, "stream": stream}).encode()
    latencies: list[float] = []
    left = total
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        async def worker() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                start = time.perf_counter()
                async with http.post(url + PATH, data=body, headers={"Content-Type": "application/json"}) as resp:
                    await resp.read()
                    assert resp.status == 200, resp.status
                latencies.append(time.perf_counter() - start)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return latencies, total / elapsed


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


Result = dict[str, dict[str, float]]  # per target: p50, p99 (ms), rps, cpu_us; "ratios": per round


async def interleaved(targets: dict[str, tuple[str, int | None]], n: int, rounds: int, stream: bool) -> tuple[Result, list[float]]:
    """Concurrency 1, one request to each target in turn (the order rotating), so that every target
    meets the same machine: drift on a shared VM otherwise lands on whichever target runs then.
    Returns pooled figures per target and the overhead ratio of each round."""
    body = json.dumps({**BODY, "stream": stream}).encode()
    names = list(targets)
    pooled: dict[str, list[float]] = {name: [] for name in names}
    ratios, cpu = [], {name: 0.0 for name in names}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        async def one(url: str) -> float:
            start = time.perf_counter()
            async with http.post(url + PATH, data=body, headers={"Content-Type": "application/json"}) as resp:
                await resp.read()
                assert resp.status == 200, resp.status
            return time.perf_counter() - start

        for i in range(max(100, n // 10) * len(names)):  # warm-up
            await one(targets[names[i % len(names)]][0])
        for _ in range(rounds):
            lat: dict[str, list[float]] = {name: [] for name in names}
            before = {name: cpu_seconds(pid) for name, (_, pid) in targets.items()}
            for i in range(n):
                for name in names[i % len(names):] + names[:i % len(names)]:
                    lat[name].append(await one(targets[name][0]))
            for name, (_, pid) in targets.items():
                cpu[name] += cpu_seconds(pid) - before[name]
                pooled[name] += lat[name]
            ratios.append(_ratio({name: statistics.median(v) for name, v in lat.items()}))
    result = {name: {"p50": pct(v, 0.5), "p99": pct(v, 0.99), "rps": len(v) / sum(v), "cpu_us": cpu[name] / len(v) * 1e6}
              for name, v in pooled.items()}
    return result, ratios


async def blocks(targets: dict[str, tuple[str, int | None]], n: int, concurrency: int, rounds: int, stream: bool) -> tuple[Result, list[float]]:
    """Rounds in which each target in turn (the order rotating) gets ``n`` requests at
    ``concurrency``; the ratio is taken within each round, between neighbours in time. Figures per
    target are the medians over the rounds."""
    names = list(targets)
    runs: dict[str, list[tuple[float, float, float, float]]] = {name: [] for name in names}
    ratios = []
    for index in range(rounds):
        p50s = {}
        for name in names[index % len(names):] + names[:index % len(names)]:
            url, pid = targets[name]
            await load(url, max(50, n // 10), concurrency, stream)  # warm-up
            cpu = cpu_seconds(pid)
            latencies, rps = await load(url, n, concurrency, stream)
            runs[name].append((pct(latencies, 0.5), pct(latencies, 0.99), rps, (cpu_seconds(pid) - cpu) / n * 1e6))
            p50s[name] = statistics.median(latencies)
        ratios.append(_ratio(p50s))
    result = {name: {key: statistics.median(s[i] for s in samples) for i, key in enumerate(("p50", "p99", "rps", "cpu_us"))}
              for name, samples in runs.items()}
    return result, ratios


def _ratio(p50: dict[str, float]) -> float:
    """Sidecar added latency over pass-through added latency, both against direct."""
    bare = p50["passthrough"] - p50["direct"]
    return (p50["sidecar"] - p50["direct"]) / bare if bare > 0 else float("nan")


async def measure(targets: dict[str, tuple[str, int | None]], requests: int, stream: bool,
                  rounds: int) -> dict[int, tuple[Result, list[float]]]:
    """Concurrency 1 interleaved request by request; concurrency 32 in rounds."""
    return {1: await interleaved(targets, requests // 2, rounds, stream),
            32: await blocks(targets, requests, 32, rounds, stream)}


def table(concurrency: int, row: dict[str, dict[str, float]], name_width: int = 14, cpu_label: str = "proxy CPU µs/req") -> list[str]:
    """The figures of every target at one concurrency, added latency against ``direct``."""
    direct, w, c = row["direct"]["p50"], name_width, len(cpu_label) + 2
    lines = [f"\nconcurrency {concurrency}", f"  {'target':<{w}}{'p50 ms':>9}{'p99 ms':>9}{'added p50 ms':>14}{'req/s':>9}{cpu_label:>{c}}"]
    for name, r in row.items():
        lines.append(f"  {name:<{w}}{r['p50']:>9.3f}{r['p99']:>9.3f}{r['p50'] - direct:>14.3f}{r['rps']:>9.0f}{r['cpu_us']:>{c}.0f}")
    return lines


def report(results: dict[int, tuple[Result, list[float]]], rss: float) -> str:
    lines = []
    for concurrency, (row, ratios) in results.items():
        lines += table(concurrency, row)
        cpu = row["sidecar"]["cpu_us"] / row["passthrough"]["cpu_us"] if row["passthrough"]["cpu_us"] else float("nan")
        rounds = ", ".join(f"{r:.2f}" for r in ratios)
        lines.append(f"  overhead ratio (sidecar added / pass-through added): {statistics.median(ratios):.2f}"
                     f" (median of rounds: {rounds})")
        lines.append(f"  CPU ratio: {cpu:.2f}   throughput ratio (sidecar / pass-through): {row['sidecar']['rps'] / row['passthrough']['rps']:.2f}")
    lines.append(f"\nsidecar idle RSS: {rss:.1f} MB")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="per target and round (half of it at concurrency 1)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--stream", action="store_true", help="stream the answers")
    parser.add_argument("--pin", action="store_true", help="proxies on one core, load and fake provider on another")
    parser.add_argument("--api", choices=sorted(APIS), default="chat", help="chat (default), responses, or a pass-through path")
    args = parser.parse_args()
    global PATH, BODY
    PATH, BODY = APIS[args.api]
    py = sys.executable
    proxy_core = PROXY_CORE if args.pin and (os.cpu_count() or 1) > 1 else None
    if proxy_core is not None:
        os.sched_setaffinity(0, {LOAD_CORE})
    with spawn([py, "-m", "modelroute.testing.fake_openai", "--port", "0"], core=LOAD_CORE if proxy_core is not None else None) as fake, tempfile.TemporaryDirectory() as tmp:
        assert fake.stdout is not None
        upstream = fake.stdout.readline().strip()
        doc = yaml.safe_load((ROOT / "examples/quickstart/policy.yaml").read_text())
        doc["spec"]["providers"][0]["baseURL"] = upstream + "/v1"
        doc["spec"]["providers"][0]["apis"] = ["chat", "responses"]  # the fake speaks both: Responses natively
        policy = os.path.join(tmp, "policy.yaml")
        Path(policy).write_text(yaml.safe_dump(doc))
        bare_port, side_port = free_port(), free_port()
        env = {**os.environ, "OPENAI_API_KEY": "sk-bench"}
        with spawn([py, str(ROOT / "bench/passthrough.py"), "--upstream", upstream, "--port", str(bare_port)], core=proxy_core) as bare, \
             spawn([py, "-m", "modelroute", "serve", "--policy", policy, "--port", str(side_port), "--log-level", "error"], env,
                   core=proxy_core) as side:
            targets = {"direct": (upstream + "/v1", None), "passthrough": (f"http://127.0.0.1:{bare_port}/v1", bare.pid),
                       "sidecar": (f"http://127.0.0.1:{side_port}/v1", side.pid)}

            async def run() -> tuple[float, dict[int, dict[str, dict[str, float]]]]:
                for url, _ in targets.values():
                    await wait_up(url)
                await asyncio.sleep(1)
                idle = rss_mb(side.pid)
                return idle, await measure(targets, args.requests, args.stream, args.rounds)

            idle, results = asyncio.run(run())
    pinned = ", proxies pinned to their own core" if proxy_core is not None else ""
    print(f"proxy overhead ({args.api}, {'streaming' if args.stream else 'non-streaming'}, {args.rounds} rounds of {args.requests} requests per target"
          f" at concurrency 32 and {args.requests // 2} interleaved at concurrency 1{pinned})")
    print(report(results, idle))


if __name__ == "__main__":
    main()
