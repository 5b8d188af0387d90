"""Helpers of the rate-limit tests: policies over fakes that enforce an organisation's limits."""

from __future__ import annotations

from typing import Any

import aiohttp

from tests.support import Sidecar, quickstart


def org_policy(base_url: str, *, mini: dict[str, int] | None = None, big: dict[str, int] | None = None,
               **overrides: Any) -> dict[str, Any]:
    """The quickstart policy (gpt-4o-mini falling back to gpt-4o) with the given ``limits``."""
    doc = quickstart(base_url, **overrides)
    for model, limits in zip(doc["spec"]["models"], (mini, big)):
        model.pop("limits", None)
        if limits is not None:
            model["limits"] = limits
    return doc


async def chat(http: aiohttp.ClientSession, sidecar: Sidecar, headers: dict[str, str] | None = None,
               **body: Any) -> tuple[int, dict[str, str], dict[str, Any]]:
    payload = {"model": "auto", "messages": [{"role": "user", "content": "hi"}], **body}
    async with http.post(sidecar.base_url + "/chat/completions", json=payload, headers=headers or {}) as resp:
        lower = {k.lower(): v for k, v in resp.headers.items()}
        if lower.get("content-type", "").startswith("text/event-stream"):
            return resp.status, lower, {"stream": await resp.text()}
        return resp.status, lower, await resp.json()


async def metrics(http: aiohttp.ClientSession, sidecar: Sidecar) -> str:
    async with http.get(sidecar.url + "/metrics") as resp:
        return await resp.text()


def chains(sidecar: Sidecar) -> list[list[str]]:
    return [list(s.attributes["modelroute.fallback_chain"]) for s in sidecar.request_spans()]  # type: ignore[arg-type]
