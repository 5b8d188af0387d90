"""One span per request with GenAI and modelroute attributes, a child span per attempt, and W3C
trace context from the app through to the provider."""

from __future__ import annotations

from typing import Any

import asyncio

from decimal import Decimal

import openai
import pytest

from modelroute.testing.fake_openai import FakeOpenAI
from tests.support import Sidecar

HELLO = [{"role": "user", "content": "what is the capital of France?"}]
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


async def test_request_span_carries_genai_and_modelroute_attributes(client: openai.AsyncOpenAI, sidecar: Sidecar) -> None:
    raw = await client.chat.completions.with_raw_response.create(model="gpt-4o", messages=HELLO, max_tokens=50)
    usage = raw.parse().usage
    [span] = sidecar.request_spans()
    a = span.attributes
    assert span.name == "chat gpt-4o-mini"
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.provider.name"] == "openai"
    assert a["gen_ai.request.model"] == "gpt-4o"
    assert a["gen_ai.response.model"] == "gpt-4o-mini"
    assert a["gen_ai.request.max_tokens"] == 50
    assert a["gen_ai.request.stream"] is False
    assert a["gen_ai.usage.input_tokens"] == usage.prompt_tokens
    assert a["gen_ai.usage.output_tokens"] == usage.completion_tokens
    assert a["modelroute.policy"] == "quickstart"
    assert a["modelroute.policy_version"] == sidecar.holder.current.policy.version
    assert a["modelroute.route"] == "default"
    assert Decimal(str(a["modelroute.cost_usd"])) == Decimal(raw.headers["x-modelroute-cost-usd"])
    baseline = (Decimal(usage.prompt_tokens) * Decimal("2.5") + Decimal(usage.completion_tokens) * 10) / 1_000_000
    assert abs(Decimal(str(a["modelroute.baseline_cost_usd"])) - baseline) < Decimal("1e-12")
    assert a["modelroute.attempts"] == 1
    assert a["modelroute.fallback_chain"] == ("gpt-4o-mini:ok",)


async def test_each_attempt_is_a_child_span(client: openai.AsyncOpenAI, sidecar: Sidecar, fake_openai: FakeOpenAI) -> None:
    fake_openai.fail("gpt-4o-mini", status=503, times=1)
    await client.chat.completions.create(model="auto", messages=HELLO)
    [parent] = sidecar.request_spans()
    children = [s for s in sidecar.spans.get_finished_spans() if s.parent and s.parent.span_id == parent.context.span_id]
    assert [c.attributes["modelroute.model"] for c in children] == ["gpt-4o-mini", "gpt-4o"]
    assert children[0].attributes["error.type"] == "server"
    assert children[0].attributes["http.response.status_code"] == 503
    assert children[1].status.is_ok


async def test_trace_context_flows_from_app_to_provider(client: openai.AsyncOpenAI, sidecar: Sidecar, fake_openai: FakeOpenAI) -> None:
    await client.chat.completions.create(model="auto", messages=HELLO, extra_headers={"traceparent": PARENT})
    [span] = sidecar.request_spans()
    assert format(span.context.trace_id, "032x") == TRACE_ID
    sent = fake_openai.calls()[-1].headers["traceparent"]
    assert sent.split("-")[1] == TRACE_ID
    attempt = [s for s in sidecar.spans.get_finished_spans() if s.kind.name == "CLIENT"][-1]
    assert sent.split("-")[2] == format(attempt.context.span_id, "016x")


@pytest.mark.parametrize("stream", [False, True])
async def test_prompts_are_recorded_only_where_the_policy_opts_in(make_sidecar: Any, fake_openai: FakeOpenAI, stream: bool) -> None:
    """Off by default; with ``telemetry.recordPrompts`` the prompt and the answer are on the request
    span, each cut at ``maxRecordedChars``. The same requests are sent both ways, so the default's
    assertion fails if recording is on by default, and the opted-in one if it does nothing."""
    from tests.support import APP_KEY, quickstart

    seen = {}
    long = [{"role": "user", "content": "capital of France " + "x" * 100}]
    for opted in (False, True):
        telemetry = {"recordPrompts": True, "maxRecordedChars": 40} if opted else {}
        sidecar = await make_sidecar(quickstart(fake_openai.base_url, telemetry=telemetry))
        async with openai.AsyncOpenAI(base_url=sidecar.base_url, api_key=APP_KEY, max_retries=0) as client:
            answer = await client.chat.completions.create(model="auto", messages=long, stream=stream)
            if stream:
                text = "".join([c.choices[0].delta.content or "" async for c in answer if c.choices])  # type: ignore[union-attr]
            else:
                text = answer.choices[0].message.content  # type: ignore[union-attr]
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        [span] = sidecar.request_spans()
        seen[opted] = dict(span.attributes or {})
        everything = "".join(str(dict(s.attributes or {})) for s in sidecar.spans.get_finished_spans())
        assert ("capital of France" in everything) is opted
    assert seen[True]["gen_ai.prompt"] == long[0]["content"][:40]
    assert seen[True]["gen_ai.completion"] == text[:40] and len(seen[True]["gen_ai.completion"]) == 40
    assert "gen_ai.prompt" not in seen[False] and "gen_ai.completion" not in seen[False]


async def test_without_an_exporter_trace_context_still_flows(make_sidecar: object, fake_openai: FakeOpenAI) -> None:
    """No collector configured: nothing is recorded, but the provider still joins the app's trace."""
    from modelroute.telemetry import tracer_provider_from_env
    from tests.support import APP_KEY, quickstart

    sidecar = await make_sidecar(quickstart(fake_openai.base_url), tracer_provider=tracer_provider_from_env({}))  # type: ignore[operator]
    async with openai.AsyncOpenAI(base_url=sidecar.base_url, api_key=APP_KEY, max_retries=0) as client:
        await client.chat.completions.create(model="auto", messages=HELLO, extra_headers={"traceparent": PARENT,
                                                                                          "tracestate": "vendor=1"})
        await client.chat.completions.create(model="auto", messages=HELLO)
    with_parent, without = (r.headers for r in fake_openai.calls())
    version, trace_id, span_id, flags = with_parent["traceparent"].split("-")
    assert (version, trace_id, flags) == ("00", TRACE_ID, "01") and span_id not in (PARENT.split("-")[2], "0" * 16)
    assert with_parent["tracestate"] == "vendor=1"
    fresh = without["traceparent"].split("-")
    assert len(fresh[1]) == 32 and fresh[1] != "0" * 32 and fresh[1] != TRACE_ID
