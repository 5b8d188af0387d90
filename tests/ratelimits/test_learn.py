"""A sidecar learns each model's limits from the provider's own headers: a model the provider
reports as exhausted is passed over before it answers 429 (the reason on the span), for OpenAI's
and Anthropic's header sets, whole and streamed; a 429 suffered is counted and learnt from."""

from __future__ import annotations

import aiohttp
import anthropic
import openai

from modelroute.testing.fake_anthropic import FakeAnthropic
from modelroute.testing.fake_openai import FakeOpenAI
from modelroute.testing.org_limits import OrgLimiter, OrgLimits
from tests.ratelimits.helpers import chains, chat, metrics, org_policy
from tests.support import ANTHROPIC_KEY, APP_KEY, SidecarFactory, mixed_policy


async def test_exhausted_model_is_skipped_before_any_429(make_sidecar: SidecarFactory, fake_openai: FakeOpenAI) -> None:
    fake_openai.org = OrgLimiter({"gpt-4o-mini": OrgLimits(rpm=3)})
    sidecar = await make_sidecar(org_policy(fake_openai.base_url, rateLimits={}))  # no limits in the policy: headers only
    async with aiohttp.ClientSession() as http:
        served = [(await chat(http, sidecar, stream=n == 1))[1]["x-modelroute-model"] for n in range(4)]
        text = await metrics(http, sidecar)
    assert served == ["gpt-4o-mini"] * 3 + ["gpt-4o"]
    assert fake_openai.org.refused == {}  # the provider never had to refuse one
    assert chains(sidecar)[-1] == ["gpt-4o-mini:skipped(provider_rpm_limit)", "gpt-4o:ok"]
    assert 'modelroute_provider_ratelimit_remaining{limit="rpm",model="gpt-4o-mini"} 0.0' in text
    assert 'modelroute_provider_ratelimit_limit{limit="rpm",model="gpt-4o-mini"} 3.0' in text
    assert 'modelroute_rate_limit_skips_total{limit="rpm",model="gpt-4o-mini",source="provider"} 1.0' in text
    assert 'modelroute_rate_limit_429s_total{model="gpt-4o-mini",outcome="avoided"} 1.0' in text


async def test_tokens_reported_by_the_provider_are_respected(make_sidecar: SidecarFactory, fake_openai: FakeOpenAI) -> None:
    fake_openai.org = OrgLimiter({"gpt-4o-mini": OrgLimits(tpm=300)})
    sidecar = await make_sidecar(org_policy(fake_openai.base_url, rateLimits={}))
    async with aiohttp.ClientSession() as http:
        served = [(await chat(http, sidecar, max_tokens=100))[1]["x-modelroute-model"] for _ in range(4)]
    assert served == ["gpt-4o-mini"] * 2 + ["gpt-4o"] * 2  # each is charged about 105 tokens: a third does not fit
    assert fake_openai.org.refused == {}
    assert chains(sidecar)[-1] == ["gpt-4o-mini:skipped(provider_tpm_limit)", "gpt-4o:ok"]


async def test_a_429_suffered_is_counted_and_learnt(make_sidecar: SidecarFactory, fake_openai: FakeOpenAI) -> None:
    """Another caller of the organisation used the limit up: the first request meets a 429 and
    falls back; the 429's figures hold the model until it has room, for this sidecar's next ones."""
    fake_openai.org = OrgLimiter({"gpt-4o-mini": OrgLimits(rpm=6, start=0.0)})
    sidecar = await make_sidecar(org_policy(fake_openai.base_url, rateLimits={}))
    async with openai.AsyncOpenAI(base_url=sidecar.base_url, api_key=APP_KEY, max_retries=0) as client:
        for _ in range(3):
            raw = await client.chat.completions.with_raw_response.create(model="auto", messages=[{"role": "user", "content": "hi"}])
            assert raw.headers["x-modelroute-model"] == "gpt-4o"
    async with aiohttp.ClientSession() as http:
        text = await metrics(http, sidecar)
    assert fake_openai.org.refused == {"gpt-4o-mini": 1}
    assert chains(sidecar) == [["gpt-4o-mini:error(rate_limited)", "gpt-4o:ok"]] + [["gpt-4o-mini:skipped(cooling_down)", "gpt-4o:ok"]] * 2
    assert 'modelroute_rate_limit_429s_total{model="gpt-4o-mini",outcome="suffered"} 1.0' in text
    assert 'modelroute_provider_ratelimit_remaining{limit="rpm",model="gpt-4o-mini"} 0.0' in text


async def test_anthropic_headers(make_sidecar: SidecarFactory, fake_openai: FakeOpenAI) -> None:
    async with FakeAnthropic(org=OrgLimiter({"claude-sonnet-4-5": OrgLimits(rpm=50, itpm=30, otpm=1000)})) as fake:
        doc = mixed_policy(fake_openai.base_url, fake.base_url)
        doc["spec"]["rateLimits"] = {}
        make_sidecar.environ["TEST_ANTHROPIC_KEY"] = ANTHROPIC_KEY
        sidecar = await make_sidecar(doc)
        async with anthropic.AsyncAnthropic(base_url=sidecar.url, api_key=APP_KEY, max_retries=0) as client:
            models = []
            for _ in range(3):
                raw = await client.messages.with_raw_response.create(
                    model="auto", max_tokens=50, messages=[{"role": "user", "content": "alpha bravo charlie delta echo foxtrot"}])
                models.append(raw.headers["x-modelroute-model"])
        async with aiohttp.ClientSession() as http:
            text = await metrics(http, sidecar)
        assert fake.org is not None and fake.org.refused == {}
    assert models == ["claude-sonnet", "claude-sonnet", "gpt-4o-mini"]  # 30 input tokens a minute: two requests of ~10
    assert chains(sidecar)[-1] == ["claude-sonnet:skipped(provider_itpm_limit)", "gpt-4o-mini:ok"]
    assert 'modelroute_provider_ratelimit_remaining{limit="otpm",model="claude-sonnet"} 900.0' in text
    assert 'modelroute_provider_ratelimit_limit{limit="rpm",model="claude-sonnet"} 50.0' in text
