"""The ``rateLimits`` section: compiled into the settings the hook reads, rejected with field
paths when wrong, and a policy without limits or the section pays for no phase."""

from __future__ import annotations

from typing import Any

import pytest

from modelroute.policy import PolicyError, compile_policy
from modelroute.ratelimits import RateLimitHook
from modelroute.ratelimits.config import build
from tests.ratelimits.helpers import org_policy

URL = "http://127.0.0.1:9/v1"
REDIS = {"redis": {"url": "redis://redis:6379/0", "keyPrefix": "acme", "timeoutMs": 50}}


def problems(doc: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(PolicyError) as info:
        compile_policy(doc)
    return [(p.path, p.message) for p in info.value.problems]


def test_the_section_compiles_into_settings() -> None:
    doc = org_policy(URL, mini={"rpm": 600, "tpm": 100000}, budgetStore=REDIS,
                     rateLimits={"store": "shared", "reserve": [{"route": "premium", "share": 0.3},
                                                                {"route": "code", "share": 0.2, "models": ["gpt-4o"]}]})
    cfg = build(compile_policy(doc))
    mini, big = cfg.models["gpt-4o-mini"], cfg.models["gpt-4o"]
    assert (mini.rpm, mini.tpm, big.rpm) == (600, 100000, None)  # every model is watched once the section is there
    assert mini.floor("premium") == 0 and mini.floor("default") == pytest.approx(0.3)
    assert big.floor("code") == pytest.approx(0.3) and big.floor("premium") == pytest.approx(0.2)
    assert cfg.store is not None and (cfg.store.key_prefix, cfg.store.timeout_seconds) == ("acme", 0.05)
    assert cfg.follow_headers
    hook = RateLimitHook()
    assert hook.phases(compile_policy(doc)) == {"admit", "skip", "attempted", "settled"}


def test_phases_follow_the_policy() -> None:
    hook = RateLimitHook()
    assert hook.phases(compile_policy(org_policy(URL))) == frozenset()  # nothing to watch: no cost
    assert hook.phases(compile_policy(org_policy(URL, mini={"rpm": 5}))) == {"skip", "attempted", "settled"}
    ignoring = org_policy(URL, mini={"rpm": 5}, rateLimits={"providerHeaders": "ignore"})
    assert hook.phases(compile_policy(ignoring)) == {"skip", "settled"}
    assert list(build(compile_policy(org_policy(URL, mini={"rpm": 5}))).models) == ["gpt-4o-mini"]


def test_cross_field_problems_have_paths() -> None:
    doc = org_policy(URL, rateLimits={"store": "shared", "reserve": [
        {"route": "nightly", "share": 0.5}, {"route": "premium", "share": 0.6, "models": ["gpt-4o-mini", "gpt-5"]}]})
    got = problems(doc)
    assert ("spec.rateLimits.store", "a shared store is the Redis of budgetStore: set budgetStore.redis.url") in got
    assert ("spec.rateLimits.reserve[0].route", "unknown route 'nightly' (routes: code, default, long-input, premium)") in got
    assert ("spec.rateLimits.reserve[1].models[1]", "unknown model 'gpt-5'") in got
    assert ("spec.rateLimits.reserve[1].share",
            "the reserves of model 'gpt-4o-mini' add up to 1.1: they must leave some of its limit") in got


@pytest.mark.parametrize("section, path", [
    ({"store": "redis"}, "spec.rateLimits.store"),
    ({"providerHeaders": "trust"}, "spec.rateLimits.providerHeaders"),
    ({"reserve": [{"route": "premium", "share": 1}]}, "spec.rateLimits.reserve[0].share"),
    ({"reserve": [{"route": "premium", "share": 0}]}, "spec.rateLimits.reserve[0].share"),
    ({"reserve": [{"share": 0.2}]}, "spec.rateLimits.reserve[0]"),
    ({"reserve": [{"route": "premium", "share": 0.2, "models": []}]}, "spec.rateLimits.reserve[0].models"),
    ({"shared": True}, "spec.rateLimits"),
])
def test_schema_is_strict(section: dict[str, Any], path: str) -> None:
    assert path in [p for p, _ in problems(org_policy(URL, rateLimits=section))]
