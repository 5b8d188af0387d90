"""Helpers of the spend tests: policies with budgets, and reading a sidecar's budgets."""

from __future__ import annotations

from typing import Any

import aiohttp

from tests.support import Sidecar, quickstart

TWELVE_WORDS = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima"
PREMIUM = {"x-user-tier": "premium"}


def budget_policy(base_url: str, budgets: list[dict[str, Any]], **overrides: Any) -> dict[str, Any]:
    """The quickstart policy with output caps (so worst cases are small and exact) and ``budgets``."""
    doc = quickstart(base_url, budgets=budgets, **overrides)
    for model in doc["spec"]["models"]:
        model["maxOutputTokens"] = 100
        model.pop("limits", None)
    return doc


async def budgets(sidecar: Sidecar) -> list[dict[str, Any]]:
    async with aiohttp.ClientSession() as http, http.get(sidecar.url + "/v1/budgets") as resp:
        assert resp.status == 200
        data: dict[str, Any] = await resp.json()
    rows: list[dict[str, Any]] = data["data"]
    return rows


async def chat(http: aiohttp.ClientSession, sidecar: Sidecar, content: str = "hi", headers: dict[str, str] | None = None,
               **body: Any) -> tuple[int, dict[str, str], dict[str, Any]]:
    payload = {"model": "auto", "messages": [{"role": "user", "content": content}], **body}
    async with http.post(sidecar.base_url + "/chat/completions", json=payload, headers=headers or {}) as resp:
        return resp.status, {k.lower(): v for k, v in resp.headers.items()}, await resp.json()
