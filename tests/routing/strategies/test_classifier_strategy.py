"""Classifier strategy against a real OpenAI-compatible server: labels, strict parsing, default on
timeouts and bad answers, the prompt cache, cost, and the label reaching rules."""

from __future__ import annotations

from typing import Any

import pytest

from modelroute.policy import PolicyError
from modelroute.routing import Router
from modelroute.routing.strategies.classifier import parse_label
from modelroute.testing.fake_openai import FakeOpenAI
from modelroute.testing.replay_provider import ReplayProvider
from tests.routing.strategies.strategy_support import model_client, policy, view

BLOCK: dict[str, Any] = {"type": "classifier", "model": "cheap", "models": {"simple": "cheap", "complex": "strong"},
                         "timeoutSeconds": 1.0}


def rule(model: str, prompt: str) -> str | None:
    if "proof" in prompt:
        return " Complex. "
    if "gibberish" in prompt:
        return "simple, I think"
    return "simple"


def test_strict_parsing() -> None:
    labels = ("simple", "medium", "complex")
    assert parse_label(' "Medium". ', labels) == "medium"
    assert parse_label("COMPLEX", labels) == "complex"
    assert parse_label("simple or medium", labels) is None
    assert parse_label("", labels) is None


async def test_labels_choose_models_cache_and_cost() -> None:
    async with ReplayProvider(fallback=rule) as server:
        routes = [{"name": "hard", "match": {"task": ["never"]}, "model": "strong"},
                  {"name": "cel", "when": "request.complexity == 'complex'", "model": "judge"},
                  {"name": "smart", "strategy": "cls"}]
        compiled = policy(server.url + "/v1", {"cls": BLOCK}, routes)
        async with model_client(compiled) as client:
            router = Router(compiled, client)
            easy = await router.decide(view("what is 2+2?"))
            hard = await router.decide(view("write a proof of Fermat's little theorem"))
            again = await router.decide(view("  WHAT is 2+2? "))  # same prompt once normalised
            odd = await router.decide(view("gibberish"))
    assert easy.model == "cheap" and easy.annotations["complexity"] == "simple"
    assert easy.cost_usd > 0 and easy.annotations["classifier"]["source"] == "model"
    assert hard.route == "cel" and hard.model == "judge"  # the label reaches CEL before the routes run
    assert again.cost_usd == 0 and again.annotations["classifier"]["source"] == "cache"
    assert odd.annotations["complexity"] == "medium" and "unparseable" in odd.annotations["classifier"]["source"]
    assert odd.route == "default"  # medium has no model here: the strategy passes
    assert len(server.requests) == 3


async def test_timeout_gives_the_default_label() -> None:
    async with FakeOpenAI() as fake:
        fake.fail(delay=2.0)
        compiled = policy(fake.base_url, {"cls": {**BLOCK, "timeoutSeconds": 0.2, "defaultLabel": "complex"}})
        async with model_client(compiled) as client:
            decision = await Router(compiled, client).decide(view("anything"))
    assert decision.model == "strong" and decision.annotations["classifier"]["source"] == "default (timeout)"


@pytest.mark.parametrize("config, path", [
    ({"model": "nope"}, "spec.strategies.cls.model"),
    ({"labels": ["one"]}, "spec.strategies.cls.labels"),
    ({"models": {"huge": "strong"}}, "spec.strategies.cls.models.huge"),
    ({"prompt": "no placeholder"}, "spec.strategies.cls.prompt"),
    ({"defaultLabel": "other"}, "spec.strategies.cls.defaultLabel"),
    ({"timeoutSeconds": 0}, "spec.strategies.cls.timeoutSeconds"),
])
def test_bad_config_names_the_field(config: dict[str, Any], path: str) -> None:
    with pytest.raises(PolicyError) as err:
        Router(policy("http://127.0.0.1:9", {"cls": {**BLOCK, **config}}))
    assert path in [p for p, _ in err.value.problems]
