"""``modelroute test`` (policy unit tests with exit codes for CI) and ``modelroute explain`` (the trace)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelroute.cli import main
from tests.support import quickstart

EXPERIMENT = [{"name": "mini-vs-4o", "key": {"header": "x-user-id"}, "appliesTo": ["default"],
               "arms": [{"name": "control", "model": "gpt-4o"}, {"name": "candidate", "model": "gpt-4o-mini"}]}]


def hi(**extra: Any) -> dict[str, Any]:
    return {"model": "auto", "messages": [{"role": "user", "content": "hi"}], **extra}


@pytest.fixture
def policy(tmp_path: Path) -> Path:
    doc = quickstart("http://127.0.0.1:9/v1", strategies={"casc": {"type": "cascade", "chain": ["gpt-4o-mini", "gpt-4o"]}})
    doc["spec"]["routes"].insert(0, {"name": "research", "match": {"headers": {"x-team": "research"}}, "strategy": "casc"})
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def write(tmp_path: Path, name: str, data: Any) -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data) if name.endswith(".yaml") else json.dumps(data))
    return path


def test_passing_cases_exit_0(policy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cases = write(tmp_path, "cases.yaml", {"cases": [
        {"name": "chat goes to mini", "request": hi(), "expect": {"route": "default", "model": "gpt-4o-mini",
                                                                 "candidates": ["gpt-4o-mini", "gpt-4o"]}},
        {"name": "code goes to 4o", "request": hi(), "headers": {"X-Modelroute-Task": "code_generation"},
         "expect": {"route": "code", "model": "gpt-4o", "strategy": "rules"}},
        {"name": "research cascades", "request": hi(), "headers": {"x-team": "research"},
         "expect": {"route": "research", "strategy": "cascade", "model": "gpt-4o-mini"}},
        {"name": "unknown model", "request": hi(model="claude-9"), "expect": {"error": "model_not_found"}},
    ]})
    assert main(["test", str(policy), str(cases)]) == 0
    out = capsys.readouterr().out
    assert out.count("PASS  ") == 4 and "PASS: 4/4" in out and "FAIL" not in out


def test_a_failing_case_is_named_and_exits_1(policy: Path, tmp_path: Path) -> None:
    cases = write(tmp_path, "cases.yaml", [
        {"name": "premium goes to 4o", "request": hi(), "headers": {"x-user-tier": "premium"}, "expect": {"route": "premium"}},
        {"name": "wrong on purpose", "request": hi(), "expect": {"route": "code", "model": "gpt-4o"}},
    ])
    run = subprocess.run([sys.executable, "-m", "modelroute", "test", str(policy), str(cases)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 1
    assert "PASS  premium goes to 4o" in run.stdout and "FAIL  wrong on purpose (default -> gpt-4o-mini)" in run.stdout
    assert "route: expected 'code', got 'default'" in run.stdout and "model: expected 'gpt-4o', got 'gpt-4o-mini'" in run.stdout
    assert "FAIL: 1/2" in run.stdout


def test_unreadable_cases_and_invalid_policies_exit_2(policy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = write(tmp_path, "bad.yaml", [{"name": "x", "request": hi(), "expect": {"rout": "default"}}])
    assert main(["test", str(policy), str(bad)]) == 2
    assert "unknown fields ['rout']" in capsys.readouterr().out
    broken = write(tmp_path, "broken.yaml", quickstart("http://127.0.0.1:9/v1", default="nope"))
    assert main(["test", str(broken), str(bad)]) == 2
    assert "spec.default: unknown model 'nope'" in capsys.readouterr().out


def test_experiment_arms_are_testable_by_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "p.yaml", quickstart("http://127.0.0.1:9/v1", experiments=EXPERIMENT))
    arms = {}
    for key in ("alice", "bob", "carol", "dave"):
        request = write(tmp_path, "r.json", {"request": hi(), "headers": {"x-user-id": key}})
        assert main(["explain", str(path), str(request), "--json"]) == 0
        arms[key] = json.loads(capsys.readouterr().out)["decision"]["annotations"]["arm"]
    cases = write(tmp_path, "cases.yaml", [{"name": k, "request": hi(), "headers": {"x-user-id": k},
                                             "expect": {"experiment": "mini-vs-4o", "arm": a}} for k, a in arms.items()])
    assert main(["test", str(path), str(cases)]) == 0


def test_explain_traces_every_route_strategy_and_cost(policy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    request = write(tmp_path, "req.json", hi(max_tokens=100))
    assert main(["explain", str(policy), str(request), "--header", "x-user-tier=premium"]) == 0
    out = capsys.readouterr().out
    assert "1. research" in out and "no match: header x-team in ['research'] does not hold" in out
    assert "3. premium" in out and "chosen: all conditions hold" in out
    assert "4. long-input" in out and "not reached" in out
    assert "decision: route premium by rules: route matched" in out and "model: gpt-4o; fallbacks: none" in out
    assert "expected cost (5 in, 100 out): gpt-4o USD 0.0010125; baseline gpt-4o USD 0.0010125" in out

    assert main(["explain", str(policy), str(request), "--header", "x-team=research", "--json"]) == 0
    trace = json.loads(capsys.readouterr().out)
    assert trace["decision"]["strategy"] == "cascade" and trace["decision"]["annotations"]["cascade"] == ["gpt-4o-mini", "gpt-4o"]
    assert trace["decision"]["candidates"] == ["gpt-4o-mini", "gpt-4o"]
    assert trace["expected_cost"]["candidates"] == {"gpt-4o-mini": "0.00006075", "gpt-4o": "0.0010125"}


def test_explain_shows_models_left_out_and_the_error(policy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = yaml.safe_load(policy.read_text())
    doc["spec"]["models"][0]["capabilities"] = ["json"]  # gpt-4o-mini: no tools
    doc["spec"]["models"][1]["capabilities"] = ["json"]
    policy.write_text(yaml.safe_dump(doc))
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    request = write(tmp_path, "req.json", {"request": hi(tools=[tool]), "headers": {}})
    assert main(["explain", str(policy), str(request)]) == 1
    out = capsys.readouterr().out
    assert "left out: gpt-4o-mini (no tools capability)" in out and "no_eligible_model" in out
