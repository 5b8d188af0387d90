"""The behaviour matrix: every behaviour of the one request path, once, for each client API.

Chat Completions, Responses and Messages clients (the real SDKs) ask a sidecar in front of three
fake providers on real sockets: OpenAI (chat and Responses), an OpenAI-compatible server speaking
chat only, and Anthropic (Messages). Each test is parametrised over the three client APIs, and
over whole and streamed answers where both exist.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any, AsyncIterator

import aiohttp
import pytest

from modelroute.report.prom import Samples
from modelroute.testing.fake_anthropic import FakeAnthropic
from modelroute.testing.fake_openai import FakeOpenAI
from tests.pipeline.clients import APIS, Api, Reply
from tests.support import ANTHROPIC_KEY, PROVIDER_KEY, Sidecar, SidecarFactory

STREAM = [pytest.param(False, id="whole"), pytest.param(True, id="stream")]
API = [pytest.param(api, id=api.name) for api in APIS]
#: What each client API looks like on the wire toward each fake (path the fake received).
PATHS = {("chat", "openai"): "/v1/chat/completions", ("responses", "openai"): "/v1/responses",
         ("messages", "openai"): "/v1/chat/completions", ("responses", "local"): "/v1/chat/completions"}


class Fakes:
    def __init__(self) -> None:
        self.openai = FakeOpenAI()
        self.local = FakeOpenAI(speaks=frozenset({"chat"}))  # an OpenAI-compatible server without Responses
        self.anthropic = FakeAnthropic()

    async def start(self) -> None:
        for fake in (self.openai, self.local, self.anthropic):
            await fake.start()

    async def close(self) -> None:
        for fake in (self.openai, self.local, self.anthropic):
            await fake.close()


@pytest.fixture
async def fakes() -> AsyncIterator[Fakes]:
    f = Fakes()
    await f.start()
    yield f
    await f.close()


def policy(f: Fakes, **spec: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "apiVersion": "modelroute.dev/v1alpha1", "kind": "RoutingPolicy", "metadata": {"name": "matrix"},
        "spec": {
            "providers": [
                {"name": "openai", "type": "openai", "baseURL": f.openai.base_url, "apiKey": {"env": "TEST_PROVIDER_KEY"},
                 "apis": ["chat", "responses"]},
                {"name": "local", "type": "openai", "baseURL": f.local.base_url},
                {"name": "anthropic", "type": "anthropic", "baseURL": f.anthropic.url, "apiKey": {"env": "TEST_ANTHROPIC_KEY"}},
            ],
            "models": [
                {"name": "gpt-4o-mini", "provider": "openai", "pricing": {"input": 0.15, "output": 0.60}, "maxOutputTokens": 16384},
                {"name": "gpt-4o", "provider": "openai", "pricing": {"input": 2.50, "output": 10.00}, "maxOutputTokens": 16384},
                {"name": "claude", "provider": "anthropic", "upstreamModel": "claude-sonnet-4-5", "pricing": {"input": 3, "output": 15},
                 "maxOutputTokens": 8192},
                {"name": "llama", "provider": "local", "upstreamModel": "llama-3.1-8b", "pricing": {"input": 0.05, "output": 0.05},
                 "maxOutputTokens": 4096},
            ],
            "baseline": "gpt-4o",
            "default": "gpt-4o-mini",
            "routes": [
                {"name": "premium", "match": {"headers": {"x-user-tier": "premium"}}, "model": "gpt-4o"},
                {"name": "to-claude", "match": {"headers": {"x-to": "claude"}}, "model": "claude"},
                {"name": "to-local", "match": {"headers": {"x-to": "local"}}, "model": "llama"},
            ],
            "fallbacks": {"gpt-4o-mini": ["gpt-4o"]},
        },
    }
    doc["spec"].update(spec)
    return doc


@pytest.fixture
async def sidecars(make_sidecar: SidecarFactory) -> SidecarFactory:
    make_sidecar.environ.update({"TEST_PROVIDER_KEY": PROVIDER_KEY, "TEST_ANTHROPIC_KEY": ANTHROPIC_KEY})
    return make_sidecar


async def metrics(sidecar: Sidecar) -> Samples:
    async with aiohttp.ClientSession() as http, http.get(sidecar.url + "/metrics") as resp:
        return Samples.parse(await resp.text())


async def settled(sidecar: Sidecar) -> None:
    """Exchanges record themselves on the next turns of the loop after the answer went out."""
    for _ in range(5):
        await asyncio.sleep(0)


# -- routing, headers, cost ----------------------------------------------------------------------


@pytest.mark.parametrize("stream", STREAM)
@pytest.mark.parametrize("api", API)
async def test_routes_headers_and_cost(api: Api, stream: bool, fakes: Fakes, sidecars: SidecarFactory) -> None:
    sidecar = await sidecars(policy(fakes))
    cheap = await api.ask(sidecar, stream=stream)
    premium = await api.ask(sidecar, stream=stream, headers={"x-user-tier": "premium"})
    assert (cheap.status, premium.status) == (200, 200)
    assert cheap.headers["x-modelroute-model"] == "gpt-4o-mini" and cheap.headers["x-modelroute-route"] == "default"
    assert premium.headers["x-modelroute-model"] == "gpt-4o" and premium.headers["x-modelroute-route"] == "premium"
    assert cheap.text.startswith("[gpt-4o-mini] you said: Say hello") and premium.text.startswith("[gpt-4o]")
    assert cheap.headers["x-modelroute-request-id"].startswith("req_")
    assert cheap.headers["x-modelroute-policy-version"] == sidecar.holder.current.policy.version
    if stream:
        assert "x-modelroute-cost-usd" not in cheap.headers
    else:
        assert Decimal(cheap.headers["x-modelroute-cost-usd"]) > 0
    assert fakes.openai.requests[-1].path == PATHS[(api.name, "openai")]


@pytest.mark.parametrize("stream", STREAM)
@pytest.mark.parametrize("target", ["claude", "local"])
@pytest.mark.parametrize("api", API)
async def test_every_wire_format_serves_every_client(api: Api, target: str, stream: bool, fakes: Fakes,
                                                     sidecars: SidecarFactory) -> None:
    """Each client API served by a Messages upstream and by a chat-only upstream (translated, or
    chained through chat), whole and streamed; the answer is the upstream's, usage counted."""
    sidecar = await sidecars(policy(fakes))
    reply = await api.ask(sidecar, "translate me please", stream=stream, headers={"x-to": target})
    assert reply.status == 200, reply.error
    upstream = "claude-sonnet-4-5" if target == "claude" else "llama-3.1-8b"
    assert reply.text == f"[{upstream}] you said: translate me please"
    fake = fakes.anthropic if target == "claude" else fakes.local
    assert fake.requests[-1].path == ("/v1/messages" if target == "claude" else "/v1/chat/completions")
    await settled(sidecar)
    span = sidecar.request_spans()[-1]
    assert span.attributes["modelroute.client_api"] == api.name
    assert span.attributes["gen_ai.usage.output_tokens"] > 0 and span.attributes["modelroute.cost_usd"] > 0


# -- fallbacks and failures --------------------------------------------------------------------------


@pytest.mark.parametrize("stream", STREAM)
@pytest.mark.parametrize("api", API)
async def test_a_failure_before_the_first_byte_falls_back_invisibly(api: Api, stream: bool, fakes: Fakes,
                                                                    sidecars: SidecarFactory) -> None:
    sidecar = await sidecars(policy(fakes))
    fakes.openai.fail("gpt-4o-mini", status=500, times=1)
    reply = await api.ask(sidecar, stream=stream)
    assert reply.status == 200 and not reply.broke
    assert reply.headers["x-modelroute-model"] == "gpt-4o" and reply.text.startswith("[gpt-4o]")
    await settled(sidecar)
    assert sidecar.request_spans()[-1].attributes["modelroute.fallback_chain"] == ("gpt-4o-mini:error(server)", "gpt-4o:ok")


@pytest.mark.parametrize("api", API)
async def test_a_stream_broken_after_its_first_byte_ends_with_the_apis_error(api: Api, fakes: Fakes,
                                                                           sidecars: SidecarFactory) -> None:
    sidecar = await sidecars(policy(fakes))
    fakes.openai.fail("gpt-4o-mini", cut_after=3, times=1)
    reply = await api.ask(sidecar, "one two three four five six seven eight", stream=True)
    assert reply.status == 200 and reply.broke, reply
    await settled(sidecar)
    span = sidecar.request_spans()[-1]
    assert span.attributes["error.type"] == "stream_connect"
    assert (await metrics(sidecar)).sum("modelroute_requests_total", status="error") == 1


@pytest.mark.parametrize("api", API)
async def test_an_unknown_model_is_a_404_in_the_clients_format(api: Api, fakes: Fakes, sidecars: SidecarFactory) -> None:
    sidecar = await sidecars(policy(fakes))
    reply = await api.ask(sidecar, model="no-such-model")
    assert reply.status == 404
    if api.name == "messages":
        assert reply.error["type"] == "error" and reply.error["error"]["type"] == "not_found_error"
    else:
        assert reply.error["code"] == "model_not_found" and "'no-such-model' does not exist" in reply.error["message"]


@pytest.mark.parametrize("api", API)
async def test_a_provider_model_id_or_an_alias_names_the_registry_model(api: Api, fakes: Fakes, sidecars: SidecarFactory) -> None:
    doc = policy(fakes, pinnedModels=["claude"])
    doc["spec"]["models"][2]["aliases"] = ["claude-sonnet-4-5-20250929"]
    sidecar = await sidecars(doc)
    for name in ("claude-sonnet-4-5", "claude-sonnet-4-5-20250929"):
        reply = await api.ask(sidecar, model=name)
        assert reply.status == 200 and reply.headers["x-modelroute-model"] == "claude"
        assert reply.headers["x-modelroute-route"] == "pinned"


# -- cascades, budgets, rate limits, experiments ----------------------------------------------------


@pytest.mark.parametrize("api", API)
async def test_a_cascade_commit_point_serves_the_escalated_model(api: Api, fakes: Fakes, sidecars: SidecarFactory) -> None:
    """The cheap model's stream is held to the commit point, rejected, closed; the client sees only
    the escalated model's answer (on /v1/messages this used to serve the rejected one)."""
    cascade = {"type": "cascade", "chain": ["gpt-4o-mini", "gpt-4o"], "checks": {"minLength": 400},
               "stream": "commit", "commit": {"tokens": 64, "ms": 2000}}
    sidecar = await sidecars(policy(fakes, strategies={"cheap-first": cascade}, routes=[{"name": "cascade", "strategy": "cheap-first"}]))
    reply = await api.ask(sidecar, "one two three four five six seven eight nine ten", stream=True)
    assert reply.status == 200 and not reply.broke
    assert reply.headers["x-modelroute-model"] == "gpt-4o"
    assert reply.text.startswith("[gpt-4o] ") and "gpt-4o-mini" not in reply.text
    await settled(sidecar)
    chain = sidecar.request_spans()[-1].attributes["modelroute.fallback_chain"]
    assert chain[0].startswith("gpt-4o-mini:rejected(") and chain[1] == "gpt-4o:ok"


@pytest.mark.parametrize("api", API)
async def test_a_budget_refusal_is_in_the_clients_format(api: Api, fakes: Fakes, sidecars: SidecarFactory) -> None:
    budget = {"name": "tiny", "scope": "policy", "window": "day", "limitUSD": 0.0000001}
    sidecar = await sidecars(policy(fakes, budgets=[budget]))
    reply = await api.ask(sidecar)
    assert reply.status == 429 and int(reply.headers["retry-after"]) >= 1
    if api.name == "messages":
        assert reply.error["error"]["type"] == "rate_limit_error" and "'tiny'" in reply.error["error"]["message"]
    else:
        assert reply.error["code"] == "budget_exceeded" and reply.error["param"] == "tiny"
    assert fakes.openai.requests == []


@pytest.mark.parametrize("api", API)
async def test_a_local_rate_limit_overflows_to_the_next_model(api: Api, fakes: Fakes, sidecars: SidecarFactory) -> None:
    doc = policy(fakes)
    doc["spec"]["models"][0]["limits"] = {"rpm": 1}
    sidecar = await sidecars(doc)
    first, second = await api.ask(sidecar), await api.ask(sidecar)
    assert first.headers["x-modelroute-model"] == "gpt-4o-mini" and second.headers["x-modelroute-model"] == "gpt-4o"
    await settled(sidecar)
    assert sidecar.request_spans()[-1].attributes["modelroute.fallback_chain"][0] == "gpt-4o-mini:skipped(local_rpm_limit)"


@pytest.mark.parametrize("api", API)
async def test_an_experiment_splits_every_api(api: Api, fakes: Fakes, sidecars: SidecarFactory) -> None:
    experiment = {"name": "ab", "key": {"header": "x-user"}, "appliesTo": ["default"],
                  "arms": [{"name": "a", "model": "gpt-4o"}, {"name": "b", "model": "claude"}]}
    sidecar = await sidecars(policy(fakes, experiments=[experiment]))
    seen = {}
    for user in range(12):
        reply = await api.ask(sidecar, headers={"x-user": f"u{user}"})
        seen[reply.headers["x-modelroute-arm"]] = reply.headers["x-modelroute-model"]
    assert seen == {"a": "gpt-4o", "b": "claude"}


# -- hooks, spans, metrics ------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", STREAM)
@pytest.mark.parametrize("api", API)
async def test_hooks_see_every_answer(api: Api, stream: bool, fakes: Fakes, sidecars: SidecarFactory) -> None:
    """The quality monitor checks each answer and indexes it for feedback, whatever the API."""
    sidecar = await sidecars(policy(fakes))
    reply = await api.ask(sidecar, stream=stream, headers={"x-to": "claude"})
    await settled(sidecar)
    async with aiohttp.ClientSession() as http:
        body = {"request_id": reply.headers["x-modelroute-request-id"], "thumbs": "up"}
        async with http.post(sidecar.base_url + "/feedback", json=body) as resp:
            assert resp.status == 200 and (await resp.json())["model"] == "claude"
    samples = await metrics(sidecar)
    assert samples.sum("modelroute_quality_answers_total", route="to-claude", model="claude") == 1


@pytest.mark.parametrize("stream", STREAM)
@pytest.mark.parametrize("api", API)
async def test_spans_and_metrics_of_every_api(api: Api, stream: bool, fakes: Fakes, sidecars: SidecarFactory) -> None:
    sidecar = await sidecars(policy(fakes))
    await api.ask(sidecar, stream=stream)
    await settled(sidecar)
    span = sidecar.request_spans()[-1]
    attrs = span.attributes
    assert attrs["modelroute.client_api"] == api.name and attrs["modelroute.route"] == "default"
    assert attrs["gen_ai.request.stream"] is stream and attrs["gen_ai.response.model"] == "gpt-4o-mini"
    assert attrs["gen_ai.usage.input_tokens"] > 0 and attrs["gen_ai.usage.output_tokens"] > 0
    samples = await metrics(sidecar)
    assert samples.sum("modelroute_requests_total", route="default", model="gpt-4o-mini", status="ok") == 1
    assert samples.sum("modelroute_cost_usd_total") == pytest.approx(attrs["modelroute.cost_usd"])


# -- a client that leaves early ----------------------------------------------------------------------------

BODIES = {
    "chat": ("/v1/chat/completions", {"model": "auto", "stream": True, "messages": [{"role": "user", "content": "w " * 30}]}),
    "responses": ("/v1/responses", {"model": "auto", "stream": True, "input": "w " * 30}),
    "messages": ("/v1/messages", {"model": "auto", "stream": True, "max_tokens": 100, "messages": [{"role": "user", "content": "w " * 30}]}),
}


@pytest.mark.parametrize("api", API)
async def test_a_stream_the_client_drops_pays_for_what_was_generated(api: Api, fakes: Fakes, sidecars: SidecarFactory) -> None:
    """Settled at the input and the output streamed so far (estimated, and said so on the span),
    never at zero; the upstream stream is closed."""
    sidecar = await sidecars(policy(fakes))
    fakes.openai.fail("gpt-4o-mini", chunk_delay=0.05)
    path, body = BODIES[api.name]
    async with aiohttp.ClientSession() as http:
        resp = await http.post(sidecar.url + path, json=body)
        await resp.content.readany()  # the first events
        resp.close()  # the client goes away mid-answer
    for _ in range(200):  # the sidecar notices at its next write
        await asyncio.sleep(0.02)
        spans = sidecar.request_spans()
        if spans:
            break
    [span] = sidecar.request_spans()
    assert span.attributes["error.type"] == "client_closed"
    assert span.attributes["modelroute.usage.estimated"] is True
    assert span.attributes["gen_ai.usage.output_tokens"] >= 1 and span.attributes["modelroute.cost_usd"] > 0
    samples = await metrics(sidecar)
    assert samples.sum("modelroute_requests_total", status="client_closed") == 1
    assert samples.sum("modelroute_cost_usd_total") > 0


__all__ = ["Reply"]
