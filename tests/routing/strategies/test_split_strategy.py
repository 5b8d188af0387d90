"""Split strategy: each target gets its share of prompts, a prompt always the same target, targets
may be cascades, and a bad block is refused with the field's path."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from modelroute.policy import PolicyError
from modelroute.routing import Router
from modelroute.routing.strategies.split import bucket, pick
from tests.routing.strategies.strategy_support import policy, view

URL = "http://127.0.0.1:9"


def split(*targets: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"s": {"type": "split", "targets": list(targets)}, **extra}


async def test_each_target_gets_its_share_and_a_prompt_always_the_same_target() -> None:
    router = Router(policy(URL, split({"model": "cheap", "share": 0.3}, {"model": "strong", "share": 0.7})))
    prompts = [f"question {i}: what is {i} squared?" for i in range(4000)]
    served = [(await router.decide(view(p))).candidates[0] for p in prompts]
    share = served.count("cheap") / len(served)
    assert 0.27 < share < 0.33, share  # binomial sd 0.007
    again = [(await router.decide(view(p))).candidates[0] for p in prompts[:200]]
    assert again == served[:200]
    decision = await router.decide(view(prompts[0]))
    assert decision.annotations["split"]["strategy"] == "s" and "split s ->" in decision.reason


async def test_a_target_may_be_a_cascade_whose_chain_and_reviewer_carry_through() -> None:
    strategies = split({"strategy": "c", "share": 0.5}, {"model": "strong", "share": 0.5},
                       c={"type": "cascade", "chain": ["cheap", "strong"]})
    router = Router(policy(URL, strategies))
    decisions = [await router.decide(view(f"prompt {i}")) for i in range(64)]
    cascaded = [d for d in decisions if d.reviewer is not None]
    assert cascaded and len(cascaded) < len(decisions)
    assert all(d.candidates == ("cheap", "strong") and d.annotations["cascade"] == ["cheap", "strong"] for d in cascaded)
    assert all(d.candidates[0] == "strong" for d in decisions if d.reviewer is None)


def test_the_point_is_the_same_in_every_process() -> None:
    """The split survives restarts and replicas: no per-process hash seed in it."""
    code = "from modelroute.routing.strategies.split import bucket; print(repr(bucket('same prompt, ünïcode')))"
    seen = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={"PYTHONHASHSEED": seed, "PATH": ""}).stdout.strip() for seed in ("1", "2")}
    assert seen == {repr(bucket("same prompt, ünïcode"))}
    assert 0.0 <= bucket("") < 1.0


@pytest.mark.parametrize("point, index", [(0.0, 0), (0.2999, 0), (0.3, 1), (0.9999, 2), (1.0, 2)])
def test_pick_covers_zero_to_one_in_order(point: float, index: int) -> None:
    assert pick((0.3, 0.5, 0.2), point) == index


@pytest.mark.parametrize("strategies, path", [
    (split({"model": "cheap", "share": 1.0}), "spec.strategies.s.targets"),
    (split({"model": "cheap", "share": 0.5}, {"model": "strong", "share": 0.4}), "spec.strategies.s.targets"),
    (split({"model": "cheap", "share": 0.5}, {"model": "nope", "share": 0.5}), "spec.strategies.s.targets[1].model"),
    (split({"model": "cheap", "share": 1.0}, {"model": "strong", "share": 0}), "spec.strategies.s.targets[1].share"),
    (split({"model": "cheap", "share": 0.5}, {"model": "strong", "strategy": "s", "share": 0.5}),
     "spec.strategies.s.targets[1]"),
    (split({"model": "cheap", "share": 0.5}, {"strategy": "s", "share": 0.5}), "spec.strategies.s.targets[1].strategy"),
    (split({"model": "cheap", "share": 0.5}, {"strategy": "e", "share": 0.5},
           e={"type": "embedding", "library": "x.npz"}), "spec.strategies.s.targets[1].strategy"),
    ({"s": {"type": "split", "targets": [], "weights": [1]}}, "spec.strategies.s.weights"),
])
def test_bad_config_names_the_field(strategies: dict[str, Any], path: str) -> None:
    with pytest.raises(PolicyError) as err:
        Router(policy(URL, strategies))
    assert path in [p for p, _ in err.value.problems], err.value.problems
