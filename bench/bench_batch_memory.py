"""Bounded memory for what batch clients pick the number of: 100,000 distinct files and batches.

A real ``modelroute serve`` process (its own RSS measured from ``/proc``) in front of a fake OpenAI
provider with the Batch API and a fake Anthropic provider with Message Batches (both in this
process). Three phases, each with distinct keys, the sidecar's RSS read every so often:

1. ``--keys`` batch input files uploaded (``POST /v1/files``, one routed line each): the files store
   keeps the newest 1,000 and evicts the rest (counted);
2. ``--keys`` Message Batches whose requests all go to a model without Message Batches: each is a
   record (ended at once, its cost recorded at zero), kept up to 1,000 and then evicted;
3. ``--real`` Message Batches with a provider batch each, ended at the provider and read back by
   the client (the poller's path): the records with parts.

It prints RSS after start-up and warm-up and at each checkpoint, and the eviction counters from
``/metrics``. Memory is bounded when RSS stops growing once the caps are reached.

    .venv/bin/python bench/bench_batch_memory.py [--keys 100000] [--real 5000] [--concurrency 16] [--phases files,records,real]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from proxy_overhead import free_port, rss_mb, spawn  # noqa: E402

from modelroute.testing.fake_anthropic import FakeAnthropic  # noqa: E402
from modelroute.testing.fake_openai_batch import FakeOpenAIBatch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def policy(openai_url: str, anthropic_url: str) -> dict[str, object]:
    batch = {"batchDiscount": 0.5}
    return {"apiVersion": "modelroute.dev/v1alpha1", "kind": "RoutingPolicy", "metadata": {"name": "batches"}, "spec": {
        "providers": [{"name": "openai", "type": "openai", "baseURL": openai_url, "apiKey": {"env": "BENCH_KEY"}},
                      {"name": "anthropic", "type": "anthropic", "baseURL": anthropic_url, "apiKey": {"env": "BENCH_KEY"}}],
        "models": [{"name": "gpt-4o-mini", "provider": "openai", "pricing": {"input": 0.15, "output": 0.6, **batch},
                    "maxOutputTokens": 1000, "capabilities": ["batch"]},
                   {"name": "claude-haiku", "provider": "anthropic", "upstreamModel": "claude-haiku-4-5",
                    "pricing": {"input": 1, "output": 5, **batch}, "maxOutputTokens": 1000, "capabilities": ["batch"]}],
        "default": "claude-haiku", "baseline": "claude-haiku", "pinnedModels": ["gpt-4o-mini"],
        "budgets": [{"name": "daily", "scope": "policy", "window": "day", "limitUSD": 1000000}]}}


async def run(args: argparse.Namespace) -> None:
    openai_fake, claude_fake = FakeOpenAIBatch(record=False), FakeAnthropic(record=False)
    await openai_fake.start()
    await claude_fake.start()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "policy.yaml"
        path.write_text(yaml.safe_dump(policy(openai_fake.base_url, claude_fake.base_url)))
        env = {**os.environ, "BENCH_KEY": "sk-bench"}
        cmd = [sys.executable, "-m", "modelroute", "serve", "--policy", str(path), "--port", str(port), "--log-level", "error",
               "--batch-poll-seconds", "3600"]
        with spawn(cmd, env=env) as proc:
            connector = aiohttp.TCPConnector(limit=0)
            async with aiohttp.ClientSession(connector=connector) as http:
                await _wait(http, url)
                print(f"sidecar RSS after start-up: {rss_mb(proc.pid):.1f} MB", flush=True)
                await _phase(http, url, proc.pid, "warm-up (files)", 2000, args.concurrency, _upload)
                if "files" in args.phases:
                    await _phase(http, url, proc.pid, "files", args.keys, args.concurrency, _upload)
                if "records" in args.phases:
                    await _phase(http, url, proc.pid, "record-only message batches", args.keys, args.concurrency, _unbatchable)
                if "real" in args.phases:
                    await _phase(http, url, proc.pid, "message batches with a provider batch", args.real, args.concurrency,
                                 lambda h, u, n: _real(h, u, n, claude_fake))
                async with http.get(url + "/metrics") as resp:
                    text = await resp.text()
                for row in text.splitlines():
                    if row.startswith(("modelroute_batch_evictions_total{", "modelroute_batches_recorded_total{")):
                        print(row)
    await openai_fake.close()
    await claude_fake.close()


async def _wait(http: aiohttp.ClientSession, url: str) -> None:
    for _ in range(400):
        try:
            async with http.get(url + "/readyz") as resp:
                if resp.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.05)
    raise RuntimeError("the sidecar did not come up")


async def _phase(http: aiohttp.ClientSession, url: str, pid: int, name: str, total: int, concurrency: int, one) -> None:  # type: ignore[no-untyped-def]
    checkpoints = {total * k // 4 for k in (1, 2, 3, 4)}
    done = 0
    started = time.monotonic()
    peak = 0.0

    async def worker(first: int) -> None:
        nonlocal done, peak
        for n in range(first, total, concurrency):
            await one(http, url, n)
            done += 1
            if done in checkpoints:
                rss = rss_mb(pid)
                peak = max(peak, rss)
                print(f"  {name}: {done:>7} keys  RSS {rss:7.1f} MB  ({done / (time.monotonic() - started):.0f}/s)", flush=True)

    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    print(f"{name}: {total} distinct keys in {time.monotonic() - started:.0f}s, RSS {rss_mb(pid):.1f} MB", flush=True)


async def _upload(http: aiohttp.ClientSession, url: str, n: int) -> None:
    line = {"custom_id": f"req-{n}", "method": "POST", "url": "/v1/chat/completions",
            "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"question number {n}"}]}}
    form = aiohttp.FormData()
    form.add_field("purpose", "batch")
    form.add_field("file", json.dumps(line).encode() + b"\n", filename=f"work-{n}.jsonl", content_type="application/jsonl")
    async with http.post(url + "/v1/files", data=form) as resp:
        assert resp.status == 200, (resp.status, await resp.text())


def _request(n: int, model: str) -> dict[str, object]:
    return {"custom_id": f"r{n}", "params": {"model": model, "max_tokens": 50,
                                             "messages": [{"role": "user", "content": f"question number {n}"}]}}


async def _unbatchable(http: aiohttp.ClientSession, url: str, n: int) -> None:
    async with http.post(url + "/v1/messages/batches", json={"requests": [_request(n, "gpt-4o-mini")]}) as resp:
        assert resp.status == 200, (resp.status, await resp.text())
        assert (await resp.json())["processing_status"] == "ended"


async def _real(http: aiohttp.ClientSession, url: str, n: int, fake: FakeAnthropic) -> None:
    async with http.post(url + "/v1/messages/batches", json={"requests": [_request(n, "auto")]}) as resp:
        assert resp.status == 200, (resp.status, await resp.text())
        ident = (await resp.json())["id"]
    async with http.get(f"{url}/v1/messages/batches/{ident}") as resp:  # the fake ends it on its first retrieval
        assert (await resp.json())["processing_status"] == "ended"
    async with http.get(f"{url}/v1/messages/batches/{ident}/results") as resp:
        assert resp.status == 200 and (await resp.read()).count(b"\n") == 1
    fake.batches.pop(ident, None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--real", type=int, default=5_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--phases", default="files,records,real", help="which phases to run (comma-separated)")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
