"""Chat completions through the sidecar with the real OpenAI SDK: routing, headers, cost."""

from __future__ import annotations

from decimal import Decimal

import openai
import pytest

from modelroute.testing.fake_openai import FakeOpenAI
from tests.support import APP_KEY, PROVIDER_KEY, Sidecar

HELLO = [{"role": "user", "content": "Say hello to the router"}]


async def test_default_route_serves_the_cheap_model(client: openai.AsyncOpenAI, fake_openai: FakeOpenAI) -> None:
    raw = await client.chat.completions.with_raw_response.create(model="gpt-4o", messages=HELLO)
    reply = raw.parse()
    assert raw.headers["x-modelroute-model"] == "gpt-4o-mini"
    assert raw.headers["x-modelroute-route"] == "default"
    assert raw.headers["x-modelroute-request-id"].startswith("req_")
    assert reply.choices[0].message.content.startswith("[gpt-4o-mini]")
    assert fake_openai.calls()[-1].body["model"] == "gpt-4o-mini"


@pytest.mark.parametrize(
    ("headers", "route"),
    [({"x-modelroute-task": "code_generation"}, "code"), ({"x-user-tier": "premium"}, "premium"), ({"x-user-tier": "free"}, "default")],
)
async def test_match_blocks_choose_the_route(client: openai.AsyncOpenAI, headers: dict[str, str], route: str) -> None:
    raw = await client.chat.completions.with_raw_response.create(model="auto", messages=HELLO, extra_headers=headers)
    assert raw.headers["x-modelroute-route"] == route
    assert raw.headers["x-modelroute-model"] == ("gpt-4o-mini" if route == "default" else "gpt-4o")


async def test_cel_route_sends_long_inputs_to_the_big_model(client: openai.AsyncOpenAI) -> None:
    long = [{"role": "user", "content": "word " * 90_000}]  # 450,000 characters: ~112,500 tokens
    raw = await client.chat.completions.with_raw_response.create(model="auto", messages=long)
    assert raw.headers["x-modelroute-route"] == "long-input"
    assert raw.headers["x-modelroute-model"] == "gpt-4o"


async def test_cost_header_is_exact_and_matches_usage(client: openai.AsyncOpenAI) -> None:
    raw = await client.chat.completions.with_raw_response.create(model="auto", messages=HELLO)
    usage = raw.parse().usage
    assert usage is not None
    expected = (Decimal(usage.prompt_tokens) * Decimal("0.15") + Decimal(usage.completion_tokens) * Decimal("0.60")) / 1_000_000
    assert Decimal(raw.headers["x-modelroute-cost-usd"]) == expected
    assert "E" not in raw.headers["x-modelroute-cost-usd"]


async def test_cached_input_tokens_are_priced_apart(make_sidecar: object, fake_openai: FakeOpenAI) -> None:
    from tests.support import quickstart

    fake_openai.cached_tokens = 8
    doc = quickstart(fake_openai.base_url)
    doc["spec"]["models"][0]["pricing"]["cachedInput"] = 0.075
    sidecar = await make_sidecar(doc)  # type: ignore[operator]
    async with openai.AsyncOpenAI(base_url=sidecar.base_url, api_key=APP_KEY, max_retries=0) as client:
        raw = await client.chat.completions.with_raw_response.create(model="auto", messages=HELLO)
    usage = raw.parse().usage
    assert usage is not None and usage.prompt_tokens > 8
    expected = (Decimal(usage.prompt_tokens - 8) * Decimal("0.15") + 8 * Decimal("0.075")
                + Decimal(usage.completion_tokens) * Decimal("0.60")) / 1_000_000
    assert Decimal(raw.headers["x-modelroute-cost-usd"]) == expected


async def test_provider_key_replaces_the_apps_key(client: openai.AsyncOpenAI, fake_openai: FakeOpenAI) -> None:
    await client.chat.completions.create(model="auto", messages=HELLO)
    sent = fake_openai.calls()[-1].headers
    assert sent["Authorization"] == f"Bearer {PROVIDER_KEY}"
    assert APP_KEY not in str(sent)


async def test_tools_round_trip(client: openai.AsyncOpenAI) -> None:
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {"query": {"type": "string"}}}}}]
    first = await client.chat.completions.create(model="auto", messages=HELLO, tools=tools)
    call = first.choices[0].message.tool_calls[0]
    assert first.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "lookup"
    messages = [*HELLO, first.choices[0].message.model_dump(exclude_none=True),
                {"role": "tool", "tool_call_id": call.id, "content": "42"}]
    second = await client.chat.completions.create(model="auto", messages=messages, tools=tools)
    assert second.choices[0].message.content.endswith("the tool said: 42")


async def test_a_model_without_the_capability_is_skipped(make_sidecar: object, fake_openai: FakeOpenAI) -> None:
    from tests.support import quickstart

    doc = quickstart(fake_openai.base_url)
    doc["spec"]["models"][0]["capabilities"] = ["json"]  # the cheap model cannot call tools
    sidecar = await make_sidecar(doc)  # type: ignore[operator]
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    async with openai.AsyncOpenAI(base_url=sidecar.base_url, api_key=APP_KEY, max_retries=0) as client:
        raw = await client.chat.completions.with_raw_response.create(model="auto", messages=HELLO, tools=tools)
    assert raw.headers["x-modelroute-model"] == "gpt-4o"


async def test_models_lists_auto_and_the_registry(client: openai.AsyncOpenAI) -> None:
    models = [m.id async for m in client.models.list()]
    assert models == ["auto", "gpt-4o-mini", "gpt-4o"]


async def test_embeddings_are_served_by_the_named_model(client: openai.AsyncOpenAI, sidecar: Sidecar) -> None:
    raw = await client.embeddings.with_raw_response.create(model="gpt-4o-mini", input=["a", "b"])
    result = raw.parse()
    assert len(result.data) == 2 and len(result.data[0].embedding) == 8
    assert raw.headers["x-modelroute-model"] == "gpt-4o-mini"
    assert Decimal(raw.headers["x-modelroute-cost-usd"]) > 0


async def test_upstream_model_id_is_sent_to_the_provider(make_sidecar: object, fake_openai: FakeOpenAI) -> None:
    from tests.support import quickstart

    doc = quickstart(fake_openai.base_url)
    doc["spec"]["models"][0]["upstreamModel"] = "gpt-4o-mini-2024-07-18"
    sidecar = await make_sidecar(doc)  # type: ignore[operator]
    async with openai.AsyncOpenAI(base_url=sidecar.base_url, api_key=APP_KEY, max_retries=0) as client:
        raw = await client.chat.completions.with_raw_response.create(model="auto", messages=HELLO)
    assert fake_openai.calls()[-1].body["model"] == "gpt-4o-mini-2024-07-18"
    assert raw.headers["x-modelroute-model"] == "gpt-4o-mini"  # the registry name
    assert sidecar.request_spans()[-1].attributes["gen_ai.response.model"] == "gpt-4o-mini-2024-07-18"
