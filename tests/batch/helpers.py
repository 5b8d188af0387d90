"""The batch tests' policy: two batchable OpenAI models at half price in batch, and a pinned model
on an Anthropic provider (no batch API)."""

from __future__ import annotations

import json
from typing import Any

from tests.support import quickstart


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
