"""Wrongly typed or missing fields anywhere in a valid policy: every example policy, with each of
its fields in turn given every other JSON type or dropped, then with 150 seeded random
combinations, either compiles (and a Router is built on it) or is refused with a PolicyError
whose every problem names a field path. Nothing else escapes, so neither the sidecar's reload nor
the operator's compile can fall over on a bad resource; the last good policy stays in force."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelroute.policy import PolicyError, compile_policy
from modelroute.routing import Router
from tests.support import each_field_mutated, mutated

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CASES = 150  # per example policy
POLICIES = sorted(p for p in EXAMPLES.glob("*/policy.yaml"))


def _resource(path: Path) -> dict[str, Any]:
    [doc] = [d for d in yaml.safe_load_all(path.read_text()) if d and d.get("kind") == "RoutingPolicy"]
    return doc


def test_every_example_is_fuzzed() -> None:
    assert len(POLICIES) >= 8


@pytest.mark.parametrize("path", POLICIES, ids=lambda p: p.parent.name)
def test_a_mutated_policy_compiles_or_is_refused_with_paths(path: Path) -> None:
    valid, rng = _resource(path), random.Random(path.parent.name)
    Router(compile_policy(valid, base_dir=str(path.parent)))  # the example itself is good
    refused = 0
    for doc in [*each_field_mutated(valid), *(mutated(valid, rng, drop=0.2) for _ in range(CASES))]:
        try:
            Router(compile_policy(doc, base_dir=str(path.parent)))
        except PolicyError as exc:
            refused += 1
            assert exc.problems, doc
            for problem in exc.problems:
                assert problem.path.split(".")[0].split("[")[0] in ("spec", "metadata", "apiVersion", "kind"), (problem, doc)
                assert problem.message, doc
    assert refused >= CASES // 3  # most mutations break something, so the checks above ran
