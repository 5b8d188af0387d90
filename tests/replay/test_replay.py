"""Replay: the shared RouterBench data set reproduces totals computed by hand from the raw file; plain
request lines cost from recorded usage or the estimate; the CLI compares two policies and writes a
self-contained HTML report; the impact preview compares versions."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelroute.policy import compile_policy
from modelroute.replay.preview import preview, preview_status, summary_of, workload_from_text
from modelroute.replay.run import replay, replay_sync
from modelroute.replay.workload import read_workload
from tests.support import quickstart

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "routerbench-train.jsonl"
needs_data = pytest.mark.skipif(not DATA.exists(), reason="../shared/data is not beside the checkout")
BASELINE, CODE, CHEAP = "gpt-4-1106-preview", "gpt-3.5-turbo-1106", "mistralai/mixtral-8x7b-chat"


def rb_policy(name: str = "rb-rules", code_model: str = CODE) -> dict[str, Any]:
    return {
        "apiVersion": "modelroute.dev/v1alpha1", "kind": "RoutingPolicy", "metadata": {"name": name},
        "spec": {
            "providers": [{"name": "p", "type": "openai", "baseURL": "http://127.0.0.1:9/v1"}],
            "models": [{"name": m, "provider": "p", "pricing": {"input": 1, "output": 1}} for m in (BASELINE, CODE, CHEAP)],
            "baseline": BASELINE, "default": CHEAP,
            "routes": [{"name": "code", "when": "!request.prompt.contains('Answer:')", "model": code_model}],
        },
    }


@needs_data
def test_the_shared_data_set_reproduces_totals_computed_by_hand() -> None:
    rows = [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]
    cost = baseline = correct = baseline_correct = 0.0
    mix: Counter[str] = Counter()
    for row in rows:
        model = CHEAP if "Answer:" in row["prompt"] else CODE  # what the policy's one rule says
        mix[model] += 1
        cost += row["models"][model]["cost_usd"]
        baseline += row["models"][BASELINE]["cost_usd"]
        correct += row["models"][model]["correct"]
        baseline_correct += row["models"][BASELINE]["correct"]
    result = replay_sync(compile_policy(rb_policy()), read_workload(DATA))
    assert result.total.requests == len(rows) == 2205 and not result.errors
    assert dict(result.mix) == {("default", CHEAP): mix[CHEAP], ("code", CODE): mix[CODE]}
    assert math.isclose(result.total.cost, cost, rel_tol=1e-12)
    assert math.isclose(result.total.baseline_cost, baseline, rel_tol=1e-12)
    assert math.isclose(result.total.quality or 0, correct / len(rows), rel_tol=1e-12)
    assert math.isclose(result.total.baseline_quality or 0, baseline_correct / len(rows), rel_tol=1e-12)
    assert math.isclose(result.total.saving, 1 - cost / baseline, rel_tol=1e-12)
    assert result.routes["code"].requests == mix[CODE] == 299


def test_plain_lines_cost_from_recorded_usage_or_the_estimate(tmp_path: Path) -> None:
    lines = [
        {"request": {"model": "auto", "messages": [{"role": "user", "content": "x" * 400}]}, "usage": {"prompt_tokens": 1000, "completion_tokens": 100}},
        {"request": {"model": "auto", "messages": [{"role": "user", "content": "x" * 400}], "max_tokens": 50}},
        {"request": {"model": "auto", "messages": [{"role": "user", "content": "hi"}]}, "headers": {"X-User-Tier": "premium"},
         "usage": {"prompt_tokens": 10, "completion_tokens": 10}},
        {"request": {"model": "claude-9", "messages": [{"role": "user", "content": "hi"}]}},
    ]
    path = tmp_path / "w.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    result = replay_sync(compile_policy(quickstart("http://127.0.0.1:9/v1")), read_workload(path))
    mini = (1000 * 0.15 + 100 * 0.60) / 1e6 + ((400 // 4 + 4) * 0.15 + 50 * 0.60) / 1e6
    assert math.isclose(result.routes["default"].cost, mini, rel_tol=1e-12)
    assert math.isclose(result.routes["premium"].cost, (10 * 2.5 + 10 * 10) / 1e6, rel_tol=1e-12)
    base = (1000 * 2.5 + 100 * 10) / 1e6 + (104 * 2.5 + 50 * 10) / 1e6 + (10 * 2.5 + 10 * 10) / 1e6
    assert math.isclose(result.total.baseline_cost, base, rel_tol=1e-12)
    assert result.errors == Counter({"model_not_found": 1}) and result.estimated == 1 and result.requests == 4
    assert result.total.quality is None


@needs_data
def test_cli_compares_two_policies_and_writes_a_self_contained_report(tmp_path: Path) -> None:
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text(yaml.safe_dump(rb_policy("cheap-code")))
    b.write_text(yaml.safe_dump(rb_policy("strong-code", code_model=BASELINE)))
    report = tmp_path / "report.html"
    run = subprocess.run([sys.executable, "-m", "modelroute", "replay", "--policy", str(a), "--workload", str(DATA),
                          "--compare", str(b), "--html", str(report)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "cheap-code" in run.stdout and "strong-code" in run.stdout and "quality (recorded correct)" in run.stdout
    assert "route mix of strong-code" in run.stdout and "2205 requests" in run.stdout
    page = report.read_text()
    assert page.count("<svg") == 3 and "<circle" in page and "<script" not in page
    assert "src=" not in page and "href=" not in page  # nothing to fetch: self-contained


async def test_preview_compares_cost_per_1000_with_the_previous_version(tmp_path: Path) -> None:
    text = "\n".join(json.dumps({"request": {"model": "auto", "messages": [{"role": "user", "content": f"q{i}"}]},
                                 "headers": {"x-user-tier": "premium"} if i % 4 == 0 else {},
                                 "usage": {"prompt_tokens": 100, "completion_tokens": 100}}) for i in range(20))
    items = workload_from_text(text)
    old = compile_policy(quickstart("http://127.0.0.1:9/v1"))
    new = compile_policy(quickstart("http://127.0.0.1:9/v1", default="gpt-4o"))
    status = await preview(new, items, old, max_cost_increase_percent=10)
    old_per_1000 = (5 * 1250 + 15 * 75) / 1e6 / 20 * 1000
    assert status["previous"] == {"policyVersion": old.version, "costPer1000": f"{old_per_1000:.6f}"}
    assert status["costPer1000"] == f"{1250 / 1e6 * 1000:.6f}" == status["baselineCostPer1000"]
    assert status["costIncreaseExceeded"] is True and status["costChangePercent"] > 10
    assert status["routeMix"] == [{"route": "default", "model": "gpt-4o", "requests": 15, "share": 0.75},
                                  {"route": "premium", "model": "gpt-4o", "requests": 5, "share": 0.25}]
    cheaper = preview_status(await replay(old, items), await replay(new, items))
    assert cheaper["costIncreaseExceeded"] is False and cheaper["costChangePercent"] < 0 and cheaper["savingPercent"] > 0
    first = await preview(old, items)
    assert first["previous"] is None and first["costIncreaseExceeded"] is False
    assert summary_of(await replay(old, items))["requests"] == 20


def cascade_policy(checks: dict[str, Any]) -> dict[str, Any]:
    doc = rb_policy("rb-cascade")
    doc["spec"]["routes"] = [{"name": "cascade", "when": "true", "strategy": "cheap-first"}]
    doc["spec"]["strategies"] = {"cheap-first": {"type": "cascade", "chain": [CHEAP, BASELINE], "checks": checks}}
    return doc


def _core(text: str) -> str:
    """The agreement check's comparison, written out: lower case, punctuation gone, spaces collapsed."""
    return " ".join("".join(c if c.isalnum() or c == "_" or c.isspace() else " " for c in text.lower()).split())


@needs_data
def test_a_cascade_replays_on_recorded_answers_escalating_where_its_check_fails() -> None:
    """Mixtral first, checked for agreement with gpt-3.5's recorded answer; on disagreement gpt-4
    serves. Every attempt and the agreement call are paid for, as in the sidecar."""
    from modelroute.calibrate.data import answer_of

    rows = [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]
    off = {"empty": False, "truncated": False, "refusal": False, "json": False}
    result = replay_sync(compile_policy(cascade_policy({**off, "agreement": {"model": CODE}})), read_workload(DATA))
    cost = correct = 0.0
    escalated = 0
    for row in rows:
        m = row["models"]
        mine, theirs = _core(answer_of(m[CHEAP]["response"])), _core(answer_of(m[CODE]["response"]))
        cost += m[CHEAP]["cost_usd"] + m[CODE]["cost_usd"]
        if mine and mine == theirs:
            correct += m[CHEAP]["correct"]
        else:
            escalated += 1
            cost += m[BASELINE]["cost_usd"]
            correct += m[BASELINE]["correct"]
    assert 0 < escalated < len(rows)
    assert dict(result.mix) == {("cascade", CHEAP): len(rows) - escalated, ("cascade", BASELINE): escalated}
    assert result.total.escalated == result.total.escalations == escalated
    assert math.isclose(result.total.cost, cost, rel_tol=1e-12)
    assert math.isclose(result.total.quality or 0, correct / len(rows), rel_tol=1e-12)
    assert not result.unreplayed_calls and not result.first_candidate_only


@needs_data
def test_a_judge_has_no_recorded_replies_so_its_calls_are_refused_and_counted(tmp_path: Path) -> None:
    doc = cascade_policy({"judge": {"model": CODE, "onError": "reject"}})
    policy = tmp_path / "judge.yaml"
    policy.write_text(yaml.safe_dump(doc))
    rows = [json.loads(line) for line in DATA.read_text().splitlines()[:40]]
    workload = tmp_path / "w.jsonl"
    workload.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    result = replay_sync(compile_policy(doc), read_workload(workload))
    from modelroute.calibrate.data import answer_of
    from modelroute.routing.answers import is_refusal

    answers = [answer_of(r["models"][CHEAP]["response"]) for r in rows]
    assert all(a.strip() and not is_refusal(a) for a in answers)  # past the heuristics: each answer reaches the judge
    judged = len(rows)
    assert result.unreplayed_calls == Counter({CODE: judged})
    assert result.total.escalated == len(rows) and dict(result.mix) == {("cascade", BASELINE): len(rows)}
    run = subprocess.run([sys.executable, "-m", "modelroute", "replay", "--policy", str(policy), "--workload", str(workload)],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert f"model calls with no recorded reply, refused: {CODE} ({judged})" in run.stdout
    assert f"escalated by a cascade        {len(rows)} (100.0%)" in run.stdout
