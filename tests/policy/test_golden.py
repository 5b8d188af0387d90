"""Golden fixtures: each ``testdata/NN-name.input.yaml`` compiles to ``NN-name.expected.json``
(a compiled policy, or the list of problems with their field paths).

Regenerate after an intended change with ``UPDATE_GOLDEN=1 pytest tests/policy``, then review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from modelroute.policy import CompiledPolicy, PolicyError, compile_text

DATA = Path(__file__).parent / "testdata"
CASES = sorted(p.name[: -len(".input.yaml")] for p in DATA.glob("*.input.yaml"))


def outcome(name: str) -> dict:
    text = (DATA / f"{name}.input.yaml").read_text()
    try:
        policy = compile_text(text, base_dir="/policies")
    except PolicyError as exc:
        return {"problems": [[p.path, p.message] for p in exc.problems]}
    return {"compiled": policy.to_dict()}


@pytest.mark.parametrize("name", CASES)
def test_golden(name: str) -> None:
    got = outcome(name)
    expected_path = DATA / f"{name}.expected.json"
    if os.environ.get("UPDATE_GOLDEN"):
        expected_path.write_text(json.dumps(got, indent=2, sort_keys=True) + "\n")
    assert got == json.loads(expected_path.read_text())


@pytest.mark.parametrize("name", [c for c in CASES if "compiled" in outcome(c)])
def test_compiled_policy_round_trips_through_json(name: str) -> None:
    policy = compile_text((DATA / f"{name}.input.yaml").read_text(), base_dir="/policies")
    again = CompiledPolicy.from_dict(json.loads(json.dumps(policy.to_dict())))
    assert again == policy
