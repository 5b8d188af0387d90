"""The spend sections of a policy: budgets, budgetStore and route-level batch, validated strictly."""

from __future__ import annotations

from typing import Any

import pytest

from modelroute.policy import PolicyError, compile_policy
from tests.spend.helpers import budget_policy

URL = "http://127.0.0.1:9/v1"
TEAM = {"name": "team-daily", "scope": {"header": "X-Team"}, "window": "day", "limitUSD": 50, "onExceed": {"downgradeTo": "gpt-4o-mini"}}
MONTHLY = {"name": "policy-monthly", "scope": "policy", "window": "month", "limitUSD": 2000, "onExceed": "reject"}


def problems(doc: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(PolicyError) as info:
        compile_policy(doc)
    return [(p.path, p.message) for p in info.value.problems]


def test_the_issue_example_compiles_into_extensions() -> None:
    doc = budget_policy(URL, [TEAM, MONTHLY], budgetStore={"redis": {"url": "redis://redis:6379/0"}, "onUnavailable": "failOpen"})
    doc["spec"]["routes"][0]["batch"] = "preferred"
    doc["spec"]["models"][1]["capabilities"].append("batch")
    ext = compile_policy(doc).extensions
    assert ext["budgets"] == [TEAM, MONTHLY] and ext["budgetStore"]["onUnavailable"] == "failOpen"
    assert ext["routeBatch"] == {"code": "preferred"}


def test_cross_field_problems_are_reported_with_paths() -> None:
    doc = budget_policy(URL, [TEAM, {**MONTHLY, "name": "team-daily", "onExceed": {"downgradeTo": "gpt-5"}},
                              {"name": "creds", "scope": {"header": "Authorization"}, "window": "day", "limitUSD": 1}])
    del doc["spec"]["models"][1]["maxOutputTokens"], doc["spec"]["models"][1]["contextWindow"]
    got = problems(doc)
    assert ("spec.budgets[1].name", "duplicate budget name 'team-daily'") in got
    assert ("spec.budgets[1].onExceed.downgradeTo", "unknown model 'gpt-5'") in got
    assert ("spec.budgets[2].scope.header", "a credential header cannot scope a budget (the sidecar never reads it)") in got
    assert ("spec.models[1]", "budgets need every model's output cap: set maxOutputTokens or contextWindow") in got


@pytest.mark.parametrize("change, path", [
    ({"window": "fortnight"}, "spec.budgets[0].window"),
    ({"limitUSD": 0}, "spec.budgets[0].limitUSD"),
    ({"onExceed": "downgrade"}, "spec.budgets[0].onExceed"),
    ({"limitUsd": 5}, "spec.budgets[0]"),
    ({"scope": {"headers": "x-team"}}, "spec.budgets[0].scope"),
])
def test_schema_is_strict(change: dict[str, Any], path: str) -> None:
    assert path in [p for p, _ in problems(budget_policy(URL, [{**MONTHLY, **change}]))]


def test_store_and_batch_values_are_checked() -> None:
    doc = budget_policy(URL, [MONTHLY], budgetStore={"redis": {"url": "http://redis"}, "onUnavailable": "open"})
    doc["spec"]["routes"][0]["batch"] = "always"
    paths = [p for p, _ in problems(doc)]
    assert {"spec.budgetStore.redis.url", "spec.budgetStore.onUnavailable", "spec.routes[0].batch"} <= set(paths)


def test_batch_preferred_needs_a_batch_api() -> None:
    doc = budget_policy(URL, [])
    doc["spec"]["routes"][0]["batch"] = "preferred"  # gpt-4o's capabilities leave out batch
    assert problems(doc) == [("spec.routes[0].batch", "model 'gpt-4o' has no batch API (an openai provider and the batch capability)")]
