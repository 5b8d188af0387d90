"""The batch tests' policy: two batchable OpenAI models at half price in batch, and a pinned model
on an Anthropic provider (no batch API)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import aiohttp

from modelroute.testing.fake_anthropic import FakeAnthropic
from modelroute.testing.fake_openai_batch import FakeOpenAIBatch
from tests.support import Sidecar, quickstart


def batch_policy(base_url: str) -> dict[str, Any]:
    doc = quickstart(base_url)
    spec = doc["spec"]
    for model in spec["models"]:
        model["pricing"]["batchDiscount"] = 0.5
        model["capabilities"].append("batch")
        model["maxOutputTokens"] = 1000
    spec["providers"].append({"name": "anthropic", "type": "anthropic", "baseURL": "http://127.0.0.1:9", "apiKey": {"env": "TEST_PROVIDER_KEY"}})
    spec["models"].append({"name": "claude-haiku", "provider": "anthropic", "pricing": {"input": 1, "output": 5}, "maxOutputTokens": 1000})
    spec["pinnedModels"] = ["claude-haiku"]
    spec["routes"].insert(0, {"name": "code-gen", "when": "request.prompt.contains('code')", "model": "gpt-4o", "batch": "preferred"})
    spec["budgets"] = [{"name": "monthly", "scope": "policy", "window": "month", "limitUSD": 100}]
    return doc


def line(custom_id: str, model: str, content: str) -> dict[str, Any]:
    return {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions",
            "body": {"model": model, "messages": [{"role": "user", "content": content}]}}


def jsonl(lines: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(x).encode() + b"\n" for x in lines)


def message_batch_policy(openai_url: str, anthropic_url: str) -> dict[str, Any]:
    """Two Claude models with Message Batches, code to the larger one, and gpt-4o-mini pinned: a
    Messages request naming it is routed to a model with no Message Batches API (it has OpenAI's).
    Every model is half price in batch."""
    doc = quickstart(openai_url)
    spec = doc["spec"]
    spec["providers"].append({"name": "anthropic", "type": "anthropic", "baseURL": anthropic_url,
                              "apiKey": {"env": "TEST_ANTHROPIC_KEY"}})
    for name, upstream, price_in, price_out in (("claude-haiku", "claude-haiku-4-5", 1.0, 5.0),
                                                  ("claude-sonnet", "claude-sonnet-4-5", 3.0, 15.0)):
        spec["models"].append({"name": name, "provider": "anthropic", "upstreamModel": upstream,
                               "pricing": {"input": price_in, "output": price_out, "batchDiscount": 0.5},
                               "contextWindow": 200000, "maxOutputTokens": 1024, "capabilities": ["tools", "json", "vision", "batch"]})
    for model in spec["models"]:
        model.setdefault("maxOutputTokens", 1000)
        model["pricing"]["batchDiscount"] = 0.5
        if "batch" not in model["capabilities"]:
            model["capabilities"].append("batch")  # OpenAI's batch API; still no Message Batches
    spec["default"] = "claude-haiku"
    spec["fallbacks"] = {}
    spec["pinnedModels"] = ["gpt-4o-mini"]
    spec["routes"] = [{"name": "code", "when": "request.prompt.contains('code')", "model": "claude-sonnet"}]
    return doc


def request(custom_id: str, content: str, model: str = "auto", **params: Any) -> dict[str, Any]:
    """One Message Batches request."""
    return {"custom_id": custom_id, "params": {"model": model, "max_tokens": 200,
                                               "messages": [{"role": "user", "content": content}], **params}}


#: USD per 1M tokens (input, output) by upstream model; every model of these policies is half price in batch.
PRICES = {"claude-haiku-4-5": (Decimal(1), Decimal(5)), "claude-sonnet-4-5": (Decimal(3), Decimal(15)),
          "gpt-4o-mini": (Decimal("0.15"), Decimal("0.60")), "gpt-4o": (Decimal("2.5"), Decimal(10))}


def _priced(model: str, tokens_in: int, tokens_out: int) -> Decimal:
    price_in, price_out = PRICES[model]
    return (tokens_in * price_in + tokens_out * price_out) / 1_000_000 / 2


def anthropic_cost(fake: FakeAnthropic) -> Decimal:
    """What the fake's ended Message Batches cost at batch prices, from their results."""
    total = Decimal(0)
    for raw in fake.batch_results.values():
        for text in raw.splitlines():
            result = json.loads(text)["result"]
            if result["type"] == "succeeded":
                usage = result["message"]["usage"]
                total += _priced(result["message"]["model"], usage["input_tokens"], usage["output_tokens"])
    return total


def openai_cost(fake: FakeOpenAIBatch) -> Decimal:
    """What the fake's completed batches cost at batch prices, from their output files."""
    total = Decimal(0)
    for stored in fake.files.values():
        if stored.purpose == "batch_output":
            for text in stored.content.splitlines():
                body = json.loads(text)["response"]["body"]
                total += _priced(body["model"], body["usage"]["prompt_tokens"], body["usage"]["completion_tokens"])
    return total


async def metric(sidecar: Sidecar, name: str, *labels: str) -> float:
    """The sum of a metric's series carrying every one of ``labels`` (``key="value"``)."""
    async with aiohttp.ClientSession() as http, http.get(sidecar.url + "/metrics") as resp:
        text = await resp.text()
    return sum(float(row.rsplit(" ", 1)[1]) for row in text.splitlines()
               if row.startswith(name + "{") and all(label in row for label in labels))


def with_budget(doc: dict[str, Any], limit: float, redis_url: str | None = None) -> dict[str, Any]:
    doc["spec"]["budgets"] = [{"name": "daily", "scope": "policy", "window": "day", "limitUSD": limit}]
    if redis_url is not None:
        doc["spec"]["budgetStore"] = {"redis": {"url": redis_url, "keyPrefix": "mrtest", "timeoutMs": 1000}}
    return doc
