"""Cascades in the proxy: answers are reviewed before the client sees them and escalate on reject;
streams hold to the commit point, then flow or escalate invisibly. Both attempts are paid for."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import openai
import pytest

from modelroute.testing.fake_openai import FakeOpenAI
from tests.support import APP_KEY, SidecarFactory, quickstart

PROMPT = [{"role": "user", "content": "one two three four five six seven eight nine ten"}]


def cascade_policy(base_url: str, checks: dict[str, Any], **extra: Any) -> dict[str, Any]:
    doc = quickstart(base_url, strategies={"cheap-first": {"type": "cascade", "chain": ["gpt-4o-mini", "gpt-4o"],
                                                           "checks": checks, **extra}})
    doc["spec"]["routes"] = [{"name": "cascade", "strategy": "cheap-first"}]
    return doc


async def test_rejected_answer_escalates_and_both_are_paid(make_sidecar: SidecarFactory, fake_openai: FakeOpenAI) -> None:
    sidecar = await make_sidecar(cascade_policy(fake_openai.base_url, {"minLength": 400}))
    async with openai.AsyncOpenAI(base_url=sidecar.base_url, api_key=APP_KEY, max_retries=0) as client:
        raw = await client.chat.completions.with_raw_response.create(model="auto", messages=PROMPT)
    reply = raw.parse()
    assert raw.headers["x-modelroute-model"] == "gpt-4o"
    assert reply.choices[0].message.content.startswith("[gpt-4o]")
    span = sidecar.request_spans()[-1]
    chain = span.attributes["modelroute.fallback_chain"]
    assert chain[0].startswith("gpt-4o-mini:rejected(") and chain[1] == "gpt-4o:ok"
    assert span.attributes["modelroute.escalations"] == 1
    mini, big = fake_openai.calls("gpt-4o-mini")[0], fake_openai.calls("gpt-4o")[0]
    assert mini and big
    cost = Decimal(raw.headers["x-modelroute-cost-usd"])
    big_only = (Decimal(reply.usage.prompt_tokens) * Decimal("2.5") + Decimal(reply.usage.completion_tokens) * 10) / 1_000_000
    assert cost > big_only  # the rejected cheap answer is paid for too


async def test_accepted_answer_stays_on_the_cheap_model(make_sidecar: SidecarFactory, fake_openai: FakeOpenAI) -> None:
    sidecar = await make_sidecar(cascade_policy(fake_openai.base_url, {"minLength": 5}))
    async with openai.AsyncOpenAI(base_url=sidecar.base_url, api_key=APP_KEY, max_retries=0) as client:
        raw = await client.chat.completions.with_raw_response.create(model="auto", messages=PROMPT)
    assert raw.headers["x-modelroute-model"] == "gpt-4o-mini"
    assert fake_openai.calls("gpt-4o") == []


async def test_stream_commit_point_escalates_invisibly(make_sidecar: SidecarFactory, fake_openai: FakeOpenAI) -> None:
    doc = cascade_policy(fake_openai.base_url, {"minLength": 400}, stream="commit", commit={"tokens": 64, "ms": 2000})
    sidecar = await make_sidecar(doc)
    async with openai.AsyncOpenAI(base_url=sidecar.base_url, api_key=APP_KEY, max_retries=0) as client:
        raw = await client.chat.completions.with_raw_response.create(model="auto", messages=PROMPT, stream=True)
        text = "".join([c.choices[0].delta.content or "" async for c in raw.parse() if c.choices])
    assert raw.headers["x-modelroute-model"] == "gpt-4o"
    assert text.startswith("[gpt-4o]") and "gpt-4o-mini" not in text
    chain = sidecar.request_spans()[-1].attributes["modelroute.fallback_chain"]
    assert chain[0].startswith("gpt-4o-mini:rejected(")


@pytest.mark.parametrize(("commit", "delay"), [({"tokens": 3, "ms": 2000}, 0.02), ({"tokens": 64, "ms": 50}, 0.04)])
async def test_stream_commit_point_releases_an_accepted_stream_whole(
    make_sidecar: SidecarFactory, fake_openai: FakeOpenAI, commit: dict[str, int], delay: float
) -> None:
    """Held by tokens, or by time with a chunk still in flight: either way nothing is lost."""
    doc = cascade_policy(fake_openai.base_url, {"minLength": 5}, stream="commit", commit=commit)
    sidecar = await make_sidecar(doc)
    fake_openai.fail("gpt-4o-mini", chunk_delay=delay)
    async with openai.AsyncOpenAI(base_url=sidecar.base_url, api_key=APP_KEY, max_retries=0) as client:
        whole = await client.chat.completions.create(model="auto", messages=PROMPT)
        raw = await client.chat.completions.with_raw_response.create(model="auto", messages=PROMPT, stream=True)
        text = "".join([c.choices[0].delta.content or "" async for c in raw.parse() if c.choices])
    assert raw.headers["x-modelroute-model"] == "gpt-4o-mini"
    assert text == whole.choices[0].message.content
