"""Streamed answers through the sidecar against a bare aiohttp pass-through of the same stream, per
client API and wire format, in one run.

Each scenario sends the same streamed request, at concurrency 1 and 32, to the provider directly,
through the bare pass-through (``passthrough.py``: raw reads forwarded as they come) and through the
sidecar (``modelroute serve``, every model pinned). A translated scenario (an OpenAI client served
by Claude, or the reverse) is compared with the bare pass-through of the upstream's own stream: the
same upstream work, and what a client of that API would get with no sidecar.

Reported per scenario: p50 latency and time to the first byte of the body, each as added over
direct; the ratio of the sidecar's added p50 to the pass-through's (the issue's goal: 1.2 for
native streams, 1.5 for translated ones); the sidecar's CPU per streamed event (events the client
received), and the pass-through's. Method as ``proxy_overhead.py``: at concurrency 1 the targets
take turns request by request, at 32 each round runs them back to back; ratios are medians of the
rounds' ratios.

    .venv/bin/python bench/bench_streaming.py [--requests 600] [--rounds 3] [--only chat,chat-500]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from proxy_overhead import cpu_seconds, free_port, spawn  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PROMPT = "Name three primary colours please"
LONG = 500


def chat(model: str) -> dict[str, Any]:
    return {"model": model, "stream": True, "messages": [{"role": "user", "content": PROMPT}]}


def messages(model: str) -> dict[str, Any]:
    return {"model": model, "stream": True, "max_tokens": 1024, "messages": [{"role": "user", "content": PROMPT}]}


def responses(model: str) -> dict[str, Any]:
    return {"model": model, "stream": True, "input": PROMPT}


@dataclass(frozen=True)
class Scenario:
    name: str
    path: str  # the client's path at the sidecar
    body: dict[str, Any]  # at the sidecar
    upstream: str  # fake: openai | openai-long | anthropic | anthropic-long
    base_path: str  # the same stream's path at the upstream (direct and bare)
    base_body: dict[str, Any]
    translated: bool = False


SCENARIOS = [
    Scenario("chat", "/v1/chat/completions", chat("gpt"), "openai", "/v1/chat/completions", chat("gpt-4o-mini")),
    Scenario(f"chat-{LONG}", "/v1/chat/completions", chat("gpt-long"), "openai-long", "/v1/chat/completions", chat("gpt-4o-mini")),
    Scenario("messages", "/v1/messages", messages("claude"), "anthropic", "/v1/messages", messages("claude-sonnet-4-5")),
    Scenario(f"messages-{LONG}", "/v1/messages", messages("claude-long"), "anthropic-long", "/v1/messages",
             messages("claude-sonnet-4-5")),
    Scenario("responses", "/v1/responses", responses("gpt"), "openai", "/v1/responses", responses("gpt-4o-mini")),
    Scenario(f"responses-{LONG}", "/v1/responses", responses("gpt-long"), "openai-long", "/v1/responses", responses("gpt-4o-mini")),
    Scenario("chat->claude", "/v1/chat/completions", chat("claude"), "anthropic", "/v1/messages", messages("claude-sonnet-4-5"), True),
    Scenario(f"chat->claude-{LONG}", "/v1/chat/completions", chat("claude-long"), "anthropic-long", "/v1/messages",
             messages("claude-sonnet-4-5"), True),
    Scenario("messages->gpt", "/v1/messages", messages("gpt"), "openai", "/v1/chat/completions", chat("gpt-4o-mini"), True),
    Scenario(f"messages->gpt-{LONG}", "/v1/messages", messages("gpt-long"), "openai-long", "/v1/chat/completions",
             chat("gpt-4o-mini"), True),
]


def policy(upstreams: dict[str, str]) -> dict[str, Any]:
    def provider(name: str, kind: str) -> dict[str, Any]:
        base = upstreams[name] + ("/v1" if kind == "openai" else "")
        out: dict[str, Any] = {"name": name, "type": kind, "baseURL": base, "apiKey": {"env": "BENCH_KEY"}}
        if kind == "openai":
            out["apis"] = ["chat", "responses"]
        return out

    def model(name: str, provider_name: str, upstream: str) -> dict[str, Any]:
        out = {"name": name, "provider": provider_name, "upstreamModel": upstream, "pricing": {"input": 1, "output": 2},
               "contextWindow": 128000, "capabilities": ["tools", "json", "vision"]}
        if not name.endswith("-long"):
            out["aliases"] = [upstream]  # two models share each upstream id: this one answers to it
        return out

    return {"apiVersion": "modelroute.dev/v1alpha1", "kind": "RoutingPolicy", "metadata": {"name": "bench-streaming"},
            "spec": {"providers": [provider("openai", "openai"), provider("openai-long", "openai"),
                                   provider("anthropic", "anthropic"), provider("anthropic-long", "anthropic")],
                     "models": [model("gpt", "openai", "gpt-4o-mini"), model("gpt-long", "openai-long", "gpt-4o-mini"),
                                model("claude", "anthropic", "claude-sonnet-4-5"),
                                model("claude-long", "anthropic-long", "claude-sonnet-4-5")],
                     "default": "gpt", "baseline": "gpt", "pinnedModels": ["*"],
                     "routes": [{"name": "code", "match": {"task": ["code"]}, "model": "gpt"},
                                {"name": "long", "when": "request.input_tokens > 100000", "model": "gpt"}]}}


@dataclass
class Target:
    url: str
    path: str
    body: bytes
    pid: int | None


async def one(http: aiohttp.ClientSession, t: Target, headers: dict[str, str]) -> tuple[float, float, int]:
    """(seconds to the end, seconds to the first body byte, events received)."""
    start = time.perf_counter()
    first = 0.0
    events = 0
    async with http.post(t.url + t.path, data=t.body, headers=headers) as resp:
        assert resp.status == 200, (t.url, resp.status, await resp.text())
        async for chunk in resp.content.iter_any():
            if not first:
                first = time.perf_counter() - start
            events += chunk.count(b"\n\n")
    return time.perf_counter() - start, first, events


HEADERS = {"Content-Type": "application/json", "anthropic-version": "2023-06-01", "Authorization": "Bearer sk-app"}


async def c1(targets: dict[str, Target], n: int, rounds: int) -> dict[str, Any]:
    names = list(targets)
    out: dict[str, Any] = {"ratios": [], "ttfb": {k: [] for k in names}, "p50": {k: [] for k in names}, "cpu": {}, "events": {}}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        for i in range(20 * len(names)):
            await one(http, targets[names[i % len(names)]], HEADERS)
        cpu = {k: 0.0 for k in names}
        events = {k: 0 for k in names}
        count = 0
        for _ in range(rounds):
            lat: dict[str, list[float]] = {k: [] for k in names}
            before = {k: cpu_seconds(t.pid) for k, t in targets.items()}
            for i in range(n):
                for name in names[i % len(names):] + names[:i % len(names)]:
                    total, first, ev = await one(http, targets[name], HEADERS)
                    lat[name].append(total)
                    out["ttfb"][name].append(first)
                    events[name] += ev
            count += n
            for k, t in targets.items():
                cpu[k] += cpu_seconds(t.pid) - before[k]
                out["p50"][k] += lat[k]
            out["ratios"].append(_ratio({k: statistics.median(v) for k, v in lat.items()}))
    out["cpu"] = {k: cpu[k] / max(1, events[k]) * 1e6 for k in names}  # µs per event received
    out["events"] = {k: events[k] / count for k in names}
    out["p50"] = {k: statistics.median(v) * 1000 for k, v in out["p50"].items()}
    out["ttfb"] = {k: statistics.median(v) * 1000 for k, v in out["ttfb"].items()}
    return out


async def c32(targets: dict[str, Target], n: int, rounds: int) -> dict[str, Any]:
    names = list(targets)
    ratios, p50 = [], {k: [] for k in names}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        async def block(t: Target, total: int) -> list[float]:
            left, lat = total, []

            async def worker() -> None:
                nonlocal left
                while left > 0:
                    left -= 1
                    lat.append((await one(http, t, HEADERS))[0])

            await asyncio.gather(*(worker() for _ in range(32)))
            return lat

        for index in range(rounds):
            medians = {}
            for name in names[index % len(names):] + names[:index % len(names)]:
                await block(targets[name], max(32, n // 10))
                lat = await block(targets[name], n)
                medians[name] = statistics.median(lat)
                p50[name].append(medians[name] * 1000)
            ratios.append(_ratio(medians))
    return {"ratios": ratios, "p50": {k: statistics.median(v) for k, v in p50.items()}}


def _ratio(p50: dict[str, float]) -> float:
    bare = p50["passthrough"] - p50["direct"]
    return (p50["sidecar"] - p50["direct"]) / bare if bare > 0 else float("nan")


async def up(url: str) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(1200):
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(url + "/readyz") as resp:
                    if resp.status in (200, 404, 405):
                        return
            await asyncio.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")


async def run(args: argparse.Namespace, upstreams: dict[str, str], bare: dict[str, tuple[str, int]], side: tuple[str, int]) -> None:
    for url in [side[0], *(b[0] for b in bare.values())]:
        await up(url)
    await asyncio.sleep(1)
    only = set(args.only.split(",")) if args.only else None
    print(f"streamed answers: {args.rounds} rounds; concurrency 1: {args.requests // 2} requests per target and round, "
          f"interleaved; concurrency 32: {args.requests} per target and round")
    print(f"\n{'scenario':<22}{'events':>7}{'c=1 ratio':>11}{'c=32 ratio':>12}{'added p50 ms':>14}{'added TTFB ms':>15}"
          f"{'CPU µs/event':>14}")
    print(f"{'':<22}{'':>7}{'':>11}{'':>12}{'bare / side':>14}{'bare / side':>15}{'bare / side':>14}")
    for s in SCENARIOS:
        if only and s.name not in only:
            continue
        base = json.dumps(s.base_body).encode()
        targets = {"direct": Target(upstreams[s.upstream], s.base_path, base, None),
                   "passthrough": Target(bare[s.upstream][0], s.base_path, base, bare[s.upstream][1]),
                   "sidecar": Target(side[0], s.path, json.dumps(s.body).encode(), side[1])}
        one_ = await c1(targets, args.requests // 2, args.rounds)
        many = await c32(targets, args.requests, args.rounds)
        d, dt = one_["p50"]["direct"], one_["ttfb"]["direct"]
        print(f"{s.name:<22}{one_['events']['sidecar']:>7.0f}{statistics.median(one_['ratios']):>11.2f}"
              f"{statistics.median(many['ratios']):>12.2f}"
              f"{one_['p50']['passthrough'] - d:>7.3f} /{one_['p50']['sidecar'] - d:>6.3f}"
              f"{one_['ttfb']['passthrough'] - dt:>8.3f} /{one_['ttfb']['sidecar'] - dt:>6.3f}"
              f"{one_['cpu']['passthrough']:>7.1f} /{one_['cpu']['sidecar']:>6.1f}"
              f"   rounds c=1 {', '.join(f'{r:.2f}' for r in one_['ratios'])}; c=32 {', '.join(f'{r:.2f}' for r in many['ratios'])}",
              flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=600, help="per target and round at c=32 (half at c=1)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", default="", help="comma-separated scenario names")
    args = parser.parse_args()
    py = sys.executable
    fakes = {"openai": [py, "-m", "modelroute.testing.fake_openai", "--port", "0"],
             "openai-long": [py, "-m", "modelroute.testing.fake_openai", "--port", "0", "--answer-words", str(LONG)],
             "anthropic": [py, "-m", "modelroute.testing.fake_anthropic", "--port", "0"],
             "anthropic-long": [py, "-m", "modelroute.testing.fake_anthropic", "--port", "0", "--answer-words", str(LONG)]}
    with contextlib.ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        upstreams = {}
        for name, cmd in fakes.items():
            proc = stack.enter_context(spawn(cmd))
            assert proc.stdout is not None
            upstreams[name] = proc.stdout.readline().strip()
        bare = {}
        for name, url in upstreams.items():
            port = free_port()
            proc = stack.enter_context(spawn([py, str(ROOT / "bench/passthrough.py"), "--upstream", url, "--port", str(port)]))
            bare[name] = (f"http://127.0.0.1:{port}", proc.pid)
        path = os.path.join(tmp, "policy.yaml")
        Path(path).write_text(yaml.safe_dump(policy(upstreams)))
        port = free_port()
        side = stack.enter_context(spawn([py, "-m", "modelroute", "serve", "--policy", path, "--port", str(port), "--log-level", "error"],
                                         {**os.environ, "BENCH_KEY": "sk-bench"}))
        asyncio.run(run(args, upstreams, bare, (f"http://127.0.0.1:{port}", side.pid)))


if __name__ == "__main__":
    main()
