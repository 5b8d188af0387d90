"""Helpers for the strategy tests: a policy in front of a replay provider, and the real model client."""

from __future__ import annotations

from typing import Any, AsyncIterator, Callable
from contextlib import asynccontextmanager

import aiohttp

from modelroute.policy import CompiledPolicy, compile_policy
from modelroute.providers import EnvFileKeys, build_providers
from modelroute.proxy.model_client import ProxyModelClient
from modelroute.routing import build_view, RequestView

MODELS = {"cheap": (0.1, 0.2), "judge": (0.5, 1.0), "strong": (5.0, 10.0)}  # name -> USD per 1M in/out


def policy(base_url: str, strategies: dict[str, Any], routes: list[dict[str, Any]] | None = None) -> CompiledPolicy:
    doc = {
        "providers": [{"name": "p", "type": "openai", "baseURL": base_url, "apiKey": {"env": "K"}}],
        "models": [{"name": m, "provider": "p", "pricing": {"input": i, "output": o}} for m, (i, o) in MODELS.items()],
        "default": "strong",
        "routes": routes or [{"name": "smart", "strategy": next(iter(strategies))}],
        "strategies": strategies,
    }
    return compile_policy(doc)


@asynccontextmanager
async def model_client(compiled: CompiledPolicy) -> AsyncIterator[ProxyModelClient]:
    async with aiohttp.ClientSession() as session:
        yield ProxyModelClient(compiled, build_providers(compiled, session, EnvFileKeys({"K": "sk-test"})))


def view(prompt: str, **body: Any) -> RequestView:
    return build_view({"model": "auto", "messages": [{"role": "user", "content": prompt}], **body}, {})


def completion(text: str, finish: str = "stop", logprobs: list[float] | None = None) -> dict[str, Any]:
    choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}
    if logprobs is not None:
        choice["logprobs"] = {"content": [{"token": "t", "logprob": lp} for lp in logprobs]}
    return {"choices": [choice]}


Answer = Callable[[str, str], "str | None"]
