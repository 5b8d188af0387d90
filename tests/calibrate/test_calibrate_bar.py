"""The bar of issue 4: on a held-out split of the routerbench data, routing among its 11 models
keeps at least 97% of always-gpt-4-1106-preview's accuracy at no more than 35% of its cost.

**The best combination meets it on the held-out split; the embedding router alone does not.**
The calibration chooses its setting by cross-validation on the training part only (repeated over
5 fold shuffles). Each region of the embedding space, or in a region served by answer each of
Yi-34B's answers, is served by the cheapest mix of plans (single models, agreement cascades with
one or two checkers, accept or escalate, an answer check) that the budget allocation buys for the target, the one
cell bought last split between two plans by a hash of the prompt.
- Held out: the combination gives 99.8% of gpt-4's quality at 33.8% of its cost; the embedding
  router alone 98.1% at 45.4% (without cascades, the neighbours pick a task's model, and per-task
  picking tops out near 96.5% at 35%).
- Cross-validation on the training part, a harsher split than the held-out one: 97.1% at 35.4%.
  On the whole file (``--holdout 0``): 97.2% at 31.7%. Over 100 random splits the bar is met on
  39 (docs/smart-routing.md): this split is one of them, and a regression shows here.
The bounds below are those figures with a small margin, so a regression shows.

``modelroute calibrate`` fits on the rest (prompt vectors come from a committed cache made by the
same embedder; tests/embedding checks the embedder itself). Then the written policy is loaded as
the sidecar loads it and every held-out prompt goes through the real Router and strategies, with
a real model client calling the replay provider (recorded answers, recorded costs) for the
answers and the cascade's agreement check; and a sample goes end to end through the sidecar.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import openai
import pytest
import yaml

from modelroute.calibrate import data as datamod
from modelroute.calibrate.run import Options, Result, calibrate
from modelroute.policy import compile_text
from modelroute.providers import EnvFileKeys, build_providers
from modelroute.proxy.model_client import ProxyModelClient
from modelroute.routing import Router, build_view
from modelroute.testing.replay_provider import ReplayProvider
from tests.calibrate.support import BASELINE, DATA, NEEDS_DATA, VECTORS
from tests.support import APP_KEY, SidecarFactory

pytestmark = NEEDS_DATA


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory: pytest.TempPathFactory) -> Result:
    """The policy fitted on the training part: the one the held-out report describes."""
    out = tmp_path_factory.mktemp("calibrated")
    return calibrate(Options(str(DATA), 0.97, str(out), vectors=str(VECTORS), baseline=BASELINE, refit=False))


@pytest.fixture(scope="module")
def held_out() -> datamod.Dataset:
    ds = datamod.load(DATA)
    return ds.subset(np.where(datamod.held_out(ds.ids, 0.25))[0])


def test_calibration_report(calibrated: Result) -> None:
    """Held-out report: the combination clears the bar (99.8% at 33.8% of gpt-4's cost); the
    embedding router alone (98.1% at 45.4%) is known not to."""
    router = calibrated.lines[0]
    assert router.name == "embedding router + cascades"
    assert router.quality_ratio >= 0.97 and router.cost_ratio <= 0.35, router
    fitted = calibrated.fit
    assert fitted is not None and fitted.oof_quality >= 0.97 and fitted.oof_cost <= 0.37  # CV on the training part
    assert sum(not m.pure for m in fitted.mixes) == 1
    assert any(fitted.layout.conditional) and not all(fitted.layout.conditional)  # MBPP's code stays plain
    assert "byAnswer" in str(yaml.safe_load(calibrated.policy.read_text())["spec"]["strategies"])
    alone = calibrated.alone[0]
    assert alone.quality_ratio >= 0.97 and alone.cost_ratio <= 0.47, alone
    doc = yaml.safe_load(calibrated.policy.read_text())
    compiled = compile_text(calibrated.policy.read_text(), str(calibrated.policy.parent))
    assert compiled.baseline == BASELINE and len(compiled.models) == 11
    assert compiled.strategies["router"]["library"] == str(calibrated.policy.parent / "library.npz")
    assert doc["spec"]["models"][0]["pricing"]["input"] > 0


def test_the_written_policy_is_fitted_again_on_every_prompt(tmp_path: Path) -> None:
    """By default the policy written is fitted on all 2,205 prompts (the report's fit saw 1,665):
    its own cross-validation on them is 97.2% at 31.7% of gpt-4's cost."""
    result = calibrate(Options(str(DATA), 0.97, str(tmp_path), vectors=str(VECTORS), baseline=BASELINE))
    assert result.fitted_on == 2205 and result.reported is not None and result.reported is not result.fit
    assert result.lines[0].quality_ratio >= 0.97  # the report is still of the training part's fit
    fitted = result.fit
    assert fitted is not None and len(fitted.assign) == 2205
    assert fitted.oof_quality >= 0.97 and fitted.oof_cost <= 0.33, fitted
    compiled = compile_text(result.policy.read_text(), str(result.policy.parent))
    Router(compiled)  # every strategy of it builds
    with np.load(tmp_path / "library.npz") as library:
        assert len(library["vectors"]) == 2205
    assert '"fitted_on_prompts": 2205' in result.policy.read_text()


async def _route(router: Router, client: ProxyModelClient, prompt: str) -> tuple[str, float]:
    """(model whose answer the client gets, total cost) of one prompt, attempts as the proxy makes them."""
    view = build_view({"model": "auto", "messages": [{"role": "user", "content": prompt}]}, {})
    decision = await router.decide(view)
    cost = decision.cost_usd
    for i, model in enumerate(decision.candidates):
        reply = await client.complete(model, [{"role": "user", "content": prompt}], max_tokens=512, timeout=10)
        cost += reply.cost_usd
        if decision.reviewer is None or i == len(decision.candidates) - 1:
            return model, cost
        answer = {"choices": [{"message": {"role": "assistant", "content": reply.text}, "finish_reason": "stop"}]}
        review = await decision.reviewer.review(view, model, answer)
        cost += review.cost_usd
        if review.accept:
            return model, cost
    raise AssertionError("no candidate")


def _policy_for(calibrated: Result, base_url: str) -> str:
    text = calibrated.policy.read_text().replace("http://127.0.0.1:8000/v1", base_url)
    return text.replace("env: UPSTREAM_API_KEY", "env: TEST_PROVIDER_KEY")


async def test_router_on_the_held_out_split(calibrated: Result, held_out: datamod.Dataset) -> None:
    """Every held-out prompt through the real Router and replayed answers (the byAnswer rules run
    in the real reviewer): 99.8% of gpt-4's quality at 33.8% of its cost, as the report says."""
    async with ReplayProvider(data=str(DATA)) as replay:
        compiled = compile_text(_policy_for(calibrated, replay.url + "/v1"), str(calibrated.policy.parent))
        async with aiohttp.ClientSession() as session:
            client = ProxyModelClient(compiled, build_providers(compiled, session, EnvFileKeys({"TEST_PROVIDER_KEY": "k"})))
            router = Router(compiled, client)
            served = [await _route(router, client, p) for p in held_out.prompts]
            await router.aclose()
    correct = sum(held_out.correct[i, held_out.column(m)] for i, (m, _) in enumerate(served))
    cost = sum(c for _, c in served)
    base = held_out.column(BASELINE)
    quality, spend = correct / held_out.correct[:, base].sum(), cost / held_out.cost[:, base].sum()
    assert quality >= 0.97 and spend <= 0.35, (quality, spend)
    assert len({m for m, _ in served}) >= 3  # it really routes
    report = calibrated.lines[0]
    assert quality == pytest.approx(report.quality_ratio, abs=0.005) and spend == pytest.approx(report.cost_ratio, abs=0.01)
    assert ("missing" not in {s for _, s in replay.requests})


async def test_end_to_end_through_the_sidecar(calibrated: Result, held_out: datamod.Dataset) -> None:
    sample = list(range(0, len(held_out), 6))
    async with ReplayProvider(data=str(DATA)) as replay:
        doc: dict[str, Any] = yaml.safe_load(_policy_for(calibrated, replay.url + "/v1"))
        doc["spec"]["strategies"]["router"]["library"] = str(calibrated.policy.parent / "library.npz")
        factory = SidecarFactory()
        try:
            sidecar = await factory(doc)
            async with openai.AsyncOpenAI(base_url=sidecar.base_url, api_key=APP_KEY, max_retries=0) as sdk:
                got = []
                for i in sample:
                    raw = await sdk.chat.completions.with_raw_response.create(
                        model="auto", messages=[{"role": "user", "content": held_out.prompts[i]}])
                    body = raw.parse()
                    got.append((i, raw.headers["x-modelroute-model"], float(raw.headers["x-modelroute-cost-usd"]),
                                body.choices[0].message.content))
        finally:
            await factory.close()
    for i, model, cost, text in got:
        recorded = held_out.answers[i][held_out.column(model)]
        assert text == recorded and cost >= held_out.cost[i, held_out.column(model)] * 0.99
    base = held_out.column(BASELINE)
    correct = sum(held_out.correct[i, held_out.column(m)] for i, m, _, _ in got)
    spend = sum(c for _, _, c, _ in got)
    assert correct / held_out.correct[sample, base].sum() >= 0.95  # a sample of ~90 prompts: looser bound
    assert spend / held_out.cost[sample, base].sum() <= 0.45  # 38% on this sample (100% quality)
    json.dumps(got)  # the sample is plain data (reported on failure)
