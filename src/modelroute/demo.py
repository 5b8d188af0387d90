"""The quickstart demo: the real sidecar process on the quickstart policy, local fake providers,
a mixed workload through the real ``openai`` SDK, and a table of what it cost against the baseline.

Nothing leaves the machine: the policy's provider URL is pointed at a fake OpenAI server that the
demo starts (it speaks the real wire format and answers deterministically).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, AsyncIterator, Iterator

import yaml

from modelroute.policy import CompiledPolicy, compile_text
from modelroute.providers.base import Usage
from modelroute.telemetry.cost import cost_usd

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "quickstart" / "policy.yaml"
DEMO_KEY = "sk-demo-not-a-real-key"


@dataclass(frozen=True)
class Job:
    label: str
    prompt: str
    headers: dict[str, str] = field(default_factory=dict)
    stream: bool = False
    count: int = 1


#: A support bot's context: instructions and a little history, about 1,200 tokens.
CONTEXT = ("You are the support assistant of ACME Cloud. Answer briefly and politely, cite the docs, never promise refunds. "
           * 40)

WORKLOAD = [
    Job("simple chat", CONTEXT + "\nCustomer: how do I reset my password?", count=60),
    Job("simple chat (stream)", CONTEXT + "\nCustomer: give me three synonyms for happy.", stream=True, count=12),
    Job("code generation", "Write a Python function that merges two sorted lists.", {"x-modelroute-task": "code_generation"}, count=8),
    Job("premium user", "Draft a polite reply to a customer complaint.", {"x-user-tier": "premium"}, count=4),
    Job("long document", "Summarise this contract: " + "clause " * 60_000, count=1),
]


@dataclass
class Row:
    requests: int = 0
    routes: set[str] = field(default_factory=set)
    models: set[str] = field(default_factory=set)
    input_tokens: int = 0
    output_tokens: int = 0
    cost: Decimal = Decimal(0)
    baseline: Decimal = Decimal(0)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def process(args: list[str], env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        yield proc
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)


async def wait_ready(url: str) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as http:
        for _ in range(300):
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(url + "/readyz") as resp:
                    if resp.status == 200:
                        return
            await asyncio.sleep(0.05)
    raise RuntimeError("the sidecar did not become ready")


def local_policy(provider_url: str, folder: str) -> tuple[str, CompiledPolicy]:
    """The quickstart example with its providers pointed at the local fake."""
    doc = yaml.safe_load(EXAMPLE.read_text())
    for provider in doc["spec"]["providers"]:
        provider["baseURL"] = provider_url
    path = os.path.join(folder, "policy.yaml")
    text = yaml.safe_dump(doc, sort_keys=False)
    Path(path).write_text(text)
    return path, compile_text(text)


async def run_job(client: Any, job: Job, policy: CompiledPolicy, row: Row) -> None:
    messages = [{"role": "user", "content": job.prompt}]
    if job.stream:
        stream = await client.chat.completions.create(model="gpt-4o", messages=messages, stream=True,
                                                      stream_options={"include_usage": True}, extra_headers=job.headers)
        headers = stream.response.headers
        usage = None
        async for chunk in stream:
            usage = chunk.usage or usage
        model = headers["x-modelroute-model"]
        assert usage is not None, "the sidecar passes the usage chunk through when asked"
        paid = cost_usd(Usage(usage.prompt_tokens, usage.completion_tokens), policy.models[model].pricing)
    else:
        raw = await client.chat.completions.with_raw_response.create(model="gpt-4o", messages=messages, extra_headers=job.headers)
        headers, usage = raw.headers, raw.parse().usage
        model, paid = headers["x-modelroute-model"], Decimal(headers["x-modelroute-cost-usd"])
    assert usage is not None
    tokens = Usage(usage.prompt_tokens, usage.completion_tokens)
    row.requests += 1
    row.routes.add(headers["x-modelroute-route"])
    row.models.add(model)
    row.input_tokens += tokens.input_tokens
    row.output_tokens += tokens.output_tokens
    row.cost += paid
    row.baseline += cost_usd(tokens, policy.models[policy.baseline].pricing)


def table(rows: dict[str, Row], baseline: str) -> str:
    head = f"{'request class':<22}{'reqs':>5}  {'route':<11}{'served by':<13}{'in tok':>9}{'out tok':>8}{'cost USD':>12}{'if ' + baseline:>13}"
    lines = [head, "-" * len(head)]
    total = Row()
    for label, r in rows.items():
        lines.append(f"{label:<22}{r.requests:>5}  {','.join(sorted(r.routes)):<11}{','.join(sorted(r.models)):<13}"
                     f"{r.input_tokens:>9}{r.output_tokens:>8}{r.cost:>12.6f}{r.baseline:>13.6f}")
        total.requests += r.requests
        total.input_tokens += r.input_tokens
        total.output_tokens += r.output_tokens
        total.cost += r.cost
        total.baseline += r.baseline
    lines.append("-" * len(head))
    lines.append(f"{'total':<22}{total.requests:>5}  {'':<11}{'':<13}{total.input_tokens:>9}{total.output_tokens:>8}"
                 f"{total.cost:>12.6f}{total.baseline:>13.6f}")
    saving = (1 - total.cost / total.baseline) * 100 if total.baseline else Decimal(0)
    lines.append(f"\nsaving against always-{baseline}: {saving:.1f}% "
                 f"(USD {total.baseline - total.cost:.6f} on {total.requests} requests)")
    return "\n".join(lines)


async def sidecar_totals(url: str) -> tuple[float, float]:
    """Total cost and baseline cost as the sidecar's Prometheus metrics report them."""
    import aiohttp
    from prometheus_client.parser import text_string_to_metric_families

    async with aiohttp.ClientSession() as http, http.get(url + "/metrics") as resp:
        text = await resp.text()
    totals = {"modelroute_cost_usd_total": 0.0, "modelroute_baseline_cost_usd_total": 0.0}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in totals:
                totals[sample.name] += sample.value
    return totals["modelroute_cost_usd_total"], totals["modelroute_baseline_cost_usd_total"]


@contextlib.asynccontextmanager
async def running_stack(folder: str) -> AsyncIterator[tuple[str, CompiledPolicy]]:
    python = sys.executable
    with process([python, "-m", "modelroute.testing.fake_openai", "--port", "0"]) as fake:
        assert fake.stdout is not None
        provider_url = fake.stdout.readline().strip() + "/v1"
        path, policy = local_policy(provider_url, folder)
        port = free_port()
        env = {**os.environ, "OPENAI_API_KEY": DEMO_KEY}
        with process([python, "-m", "modelroute", "serve", "--policy", path, "--port", str(port), "--log-level", "warning"], env):
            url = f"http://127.0.0.1:{port}"
            await wait_ready(url)
            yield url, policy


async def demo() -> int:
    import openai

    with tempfile.TemporaryDirectory() as folder:
        async with running_stack(folder) as (url, policy):
            print(f"sidecar on {url} with policy {policy.name} (version {policy.version}); fake OpenAI provider started")
            print(f"the app asks for gpt-4o every time; the policy routes: {', '.join(r.name for r in policy.routes)}, default\n")
            rows: dict[str, Row] = {}
            async with openai.AsyncOpenAI(base_url=url + "/v1", api_key="sk-the-apps-own-key", max_retries=0) as client:
                for job in WORKLOAD:
                    row = rows.setdefault(job.label, Row())
                    await asyncio.gather(*(run_job(client, job, policy, row) for _ in range(job.count)))
            print(table(rows, policy.baseline))
            cost, baseline = await sidecar_totals(url)
            print(f"the sidecar's own /metrics agree: modelroute_cost_usd_total {cost:.6f}, "
                  f"modelroute_baseline_cost_usd_total {baseline:.6f}")
    return 0


def main() -> int:
    return asyncio.run(demo())


if __name__ == "__main__":
    sys.exit(main())
