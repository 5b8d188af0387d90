"""Cascade strategy: chain and reviewer, each check, the judge and the agreement check against a
real OpenAI-compatible server (the replay provider, answering unrecorded prompts by a rule)."""

from __future__ import annotations

from typing import Any

import pytest

from modelroute.policy import PolicyError
from modelroute.routing import Router
from modelroute.testing.replay_provider import ReplayProvider
from tests.routing.strategies.strategy_support import completion, model_client, policy, view


def cascade(**extra: Any) -> dict[str, Any]:
    return {"c": {"type": "cascade", "chain": ["cheap", "strong"], **extra}}


async def test_choice_is_the_chain_with_a_reviewer() -> None:
    router = Router(policy("http://127.0.0.1:9", cascade()))
    decision = await router.decide(view("hi"))
    assert decision.candidates == ("cheap", "strong") and decision.reviewer is not None
    streamed = await router.decide(view("hi", stream=True))
    assert streamed.candidates[0] == "strong" and streamed.reviewer is None


@pytest.mark.parametrize("checks, answer, body, accept, reason", [
    ({}, completion("   "), {}, False, "empty answer"),
    ({}, completion("partial", finish="length"), {}, False, "truncated"),
    ({}, completion("I'm sorry, but I can't help with that."), {}, False, "refusal"),
    ({}, completion("{not json"), {"response_format": {"type": "json_object"}}, False, "invalid JSON"),
    ({}, completion('{"ok": true}'), {"response_format": {"type": "json_object"}}, True, "checks passed"),
    ({"regex": r"^\d+$"}, completion("forty-two"), {}, False, "does not match"),
    ({"minLength": 10}, completion("short"), {}, False, "shorter than 10"),
    ({"refusal": False}, completion("I am unable to comply"), {}, True, "checks passed"),
    ({"logprobs": {"threshold": -0.5}}, completion("x", logprobs=[-0.1, -2.0]), {}, False, "logprob"),
    ({"logprobs": {"threshold": -0.5}}, completion("x", logprobs=[-0.1, -0.2]), {}, True, "checks passed"),
])
async def test_heuristic_checks(checks: dict[str, Any], answer: dict[str, Any], body: dict[str, Any],
                                accept: bool, reason: str) -> None:
    router = Router(policy("http://127.0.0.1:9", cascade(checks=checks)))
    decision = await router.decide(view("question", **body))
    assert decision.reviewer is not None
    review = await decision.reviewer.review(view("question", **body), "cheap", answer)
    assert review.accept is accept and reason in review.reason
    last = await decision.reviewer.review(view("question"), "strong", completion(""))
    assert last.accept  # the last model of the chain is never rejected


def judge_rule(model: str, prompt: str) -> str | None:
    if model == "judge":
        return "0.9" if "Paris" in prompt else ("maybe" if "unsure" in prompt else "0.2")
    return "B" if model == "judge" else ("b." if "agree" in prompt else "C")


async def test_llm_judge_scores_through_a_real_server() -> None:
    async with ReplayProvider(fallback=judge_rule) as server:
        strategies = cascade(checks={"judge": {"model": "judge", "threshold": 0.8, "onError": "reject"}})
        compiled = policy(server.url + "/v1", strategies)
        async with model_client(compiled) as client:
            reviewer = (await Router(compiled, client).decide(view("capital of France?"))).reviewer
            assert reviewer is not None
            good = await reviewer.review(view("capital of France?"), "cheap", completion("Paris"))
            bad = await reviewer.review(view("capital of France?"), "cheap", completion("Lyon"))
            odd = await reviewer.review(view("capital of France?"), "cheap", completion("unsure"))
    assert good.accept and "0.9" in good.reason and good.cost_usd > 0
    assert not bad.accept and "0.2 < 0.8" in bad.reason
    assert not odd.accept and "not a score" in odd.reason
    assert [m for m, _ in server.requests] == ["judge"] * 3


async def test_agreement_with_a_second_model() -> None:
    def rule(model: str, prompt: str) -> str | None:
        return ("B" if "agree" in prompt else "C") if model == "judge" else None

    async with ReplayProvider(fallback=rule) as server:
        compiled = policy(server.url + "/v1", cascade(checks={"agreement": {"model": "judge"}}))
        async with model_client(compiled) as client:
            reviewer = (await Router(compiled, client).decide(view("x"))).reviewer
            assert reviewer is not None
            same = await reviewer.review(view("we agree?"), "cheap", completion("b."))
            differ = await reviewer.review(view("no way"), "cheap", completion("B"))
    assert same.accept and same.cost_usd > 0
    assert not differ.accept and "disagrees with judge" in differ.reason


async def test_agreement_with_two_models_stops_at_the_first_that_disagrees() -> None:
    """``models: [judge, strong]``: the answer stands only when both agree, asked in that order;
    when the first disagrees the second is never called (nor paid for)."""
    def rule(model: str, prompt: str) -> str | None:
        if model == "judge":
            return "B" if "agree" in prompt else "C"
        return "A" if "split" in prompt else "B"

    async with ReplayProvider(fallback=rule) as server:
        compiled = policy(server.url + "/v1", cascade(checks={"agreement": {"models": ["judge", "strong"]}}))
        async with model_client(compiled) as client:
            reviewer = (await Router(compiled, client).decide(view("x"))).reviewer
            assert reviewer is not None
            both = await reviewer.review(view("we agree?"), "cheap", completion("b."))
            calls_both = [m for m, _ in server.requests]
            second = await reviewer.review(view("we agree, split?"), "cheap", completion("B"))
            calls_second = [m for m, _ in server.requests][len(calls_both):]
            first = await reviewer.review(view("no way"), "cheap", completion("B"))
            calls_first = [m for m, _ in server.requests][len(calls_both) + len(calls_second):]
    assert both.accept and "agrees with judge, strong" in both.reason and calls_both == ["judge", "strong"]
    assert not second.accept and "disagrees with strong" in second.reason and calls_second == ["judge", "strong"]
    assert not first.accept and "disagrees with judge" in first.reason and calls_first == ["judge"]
    assert both.cost_usd > second.cost_usd / 2 > 0 and 0 < first.cost_usd < both.cost_usd


async def test_by_answer_rules_accept_escalate_or_name_who_must_agree() -> None:
    """The first rule matching the normalised answer decides: ``B`` stands unchecked, ``C``
    escalates unchecked, ``A`` must agree with judge and strong (in turn), anything else takes the
    default agreement (judge only). Which models each answer calls is read off the real server."""
    def rule(model: str, prompt: str) -> str | None:
        return "A" if model == "judge" else "D"

    checks = {"agreement": {"model": "judge"},
              "byAnswer": [{"match": "^b$", "then": "accept"}, {"match": "^c$", "then": "escalate"},
                           {"match": "^a$", "agreement": ["judge", "strong"]}]}
    async with ReplayProvider(fallback=rule) as server:
        compiled = policy(server.url + "/v1", cascade(checks=checks))
        async with model_client(compiled) as client:
            reviewer = (await Router(compiled, client).decide(view("x"))).reviewer
            assert reviewer is not None
            verdicts, calls = {}, {}
            for said in ("B.", "c", "A", "a)", "Z", ""):
                before = len(server.requests)
                verdicts[said] = await reviewer.review(view("which?"), "cheap", completion(said))
                calls[said] = [m for m, _ in server.requests][before:]
    assert verdicts["B."].accept and "accepts by rule '^b$'" in verdicts["B."].reason and calls["B."] == []
    assert not verdicts["c"].accept and "escalates by rule" in verdicts["c"].reason and calls["c"] == []
    assert not verdicts["A"].accept and "disagrees with strong" in verdicts["A"].reason
    assert calls["A"] == calls["a)"] == ["judge", "strong"]
    assert not verdicts["Z"].accept and "disagrees with judge" in verdicts["Z"].reason and calls["Z"] == ["judge"]
    assert not verdicts[""].accept and verdicts[""].reason == "empty answer" and calls[""] == []  # heuristics first
    assert verdicts["B."].cost_usd == 0 and verdicts["A"].cost_usd > verdicts["Z"].cost_usd > 0


@pytest.mark.parametrize("config, path", [
    ({"chain": ["cheap", "strong"], "checks": {"agreement": {"models": ["judge", "nope"]}}},
     "spec.strategies.c.checks.agreement.models[1]"),
    ({"chain": ["cheap", "strong"], "checks": {"agreement": {"model": "judge", "models": ["strong"]}}},
     "spec.strategies.c.checks.agreement"),
    ({"chain": ["cheap", "strong"], "checks": {"agreement": {"models": []}}},
     "spec.strategies.c.checks.agreement.models"),
    ({"chain": ["cheap", "strong"], "checks": {"byAnswer": []}}, "spec.strategies.c.checks.byAnswer"),
    ({"chain": ["cheap", "strong"], "checks": {"byAnswer": [{"then": "accept"}]}},
     "spec.strategies.c.checks.byAnswer[0].match"),
    ({"chain": ["cheap", "strong"], "checks": {"byAnswer": [{"match": "a", "then": "maybe"}]}},
     "spec.strategies.c.checks.byAnswer[0].then"),
    ({"chain": ["cheap", "strong"], "checks": {"byAnswer": [{"match": "a"}, {"match": "[", "then": "accept"}]}},
     "spec.strategies.c.checks.byAnswer[1].match"),
    ({"chain": ["cheap", "strong"], "checks": {"byAnswer": [{"match": "a", "then": "accept", "agreement": ["judge"]}]}},
     "spec.strategies.c.checks.byAnswer[0].agreement"),
    ({"chain": ["cheap", "strong"], "checks": {"byAnswer": [{"match": "a", "agreement": ["nope"]}]}},
     "spec.strategies.c.checks.byAnswer[0].agreement[0]"),
    ({"chain": ["cheap", "strong"], "checks": {"byAnswer": [{"match": "a", "when": 1}]}},
     "spec.strategies.c.checks.byAnswer[0].when"),
    ({"chain": ["cheap"]}, "spec.strategies.c.chain"),
    ({"chain": ["cheap", "nope"]}, "spec.strategies.c.chain[1]"),
    ({"chain": ["cheap", "strong"], "checks": {"regex": "("}}, "spec.strategies.c.checks.regex"),
    ({"chain": ["cheap", "strong"], "checks": {"judge": {"model": "judge", "threshold": 2}}},
     "spec.strategies.c.checks.judge.threshold"),
    ({"chain": ["cheap", "strong"], "checks": {"spelling": True}}, "spec.strategies.c.checks.spelling"),
    ({"chain": ["cheap", "strong"], "stream": "sometimes"}, "spec.strategies.c.stream"),
    ({"chain": ["cheap", "strong"], "commit": {"tokens": 5}}, "spec.strategies.c.commit"),
    ({"chain": ["cheap", "strong"], "stream": "commit", "commit": {"tokens": 0}}, "spec.strategies.c.commit.tokens"),
])
def test_bad_config_names_the_field(config: dict[str, Any], path: str) -> None:
    with pytest.raises(PolicyError) as err:
        Router(policy("http://127.0.0.1:9", {"c": {"type": "cascade", **config}}))
    assert path in [p for p, _ in err.value.problems]


async def test_commit_point_config_is_passed_on() -> None:
    strategies = cascade(stream="commit", commit={"tokens": 32, "ms": 400})
    decision = await Router(policy("http://127.0.0.1:9", strategies)).decide(view("hi", stream=True))
    assert decision.reviewer is not None and decision.annotations["cascade_commit"] == {"tokens": 32, "ms": 400}
