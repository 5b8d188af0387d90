"""ControlState: which policy serves which pod, what each subscriber is sent, and the status numbers."""

from __future__ import annotations

from modelroute.operator.state import ControlState, PodRecord, PolicyRecord
from modelroute.operator.status import desired_status
from modelroute.policy import compile_policy
from modelroute.policy.wire import Ack, Candidate
from tests.operator.harness import policy_doc


def record(name: str, ns: str = "default", priority: int = 0, created: str = "2026-01-01T00:00:00Z",
           selector: dict | None = None, default: str = "gpt-4o-mini") -> PolicyRecord:
    compiled = compile_policy(policy_doc(name, "http://127.0.0.1:1/v1", default=default))
    return PolicyRecord(ns, name, Candidate(name, priority, created, selector or {}), compiled, generation=1)


def drain(queue: object) -> list[str]:
    out = []
    while not queue.empty():  # type: ignore[attr-defined]
        msg = queue.get_nowait()  # type: ignore[attr-defined]
        out.append(f"{msg.type}:{msg.name or ''}")
    return out


def test_pushes_follow_selection_priority_and_deletion() -> None:
    dirty: list[tuple[str, str]] = []
    state = ControlState(on_dirty=dirty.append)
    state.upsert_pod(PodRecord("default", "web", "u1", {"app": "web", "tier": "premium"}))
    sub = state.subscribe(("default", "web"))
    assert drain(sub.queue) == ["none:"]
    state.upsert_policy(record("base", created="2025-01-01T00:00:00Z"))
    assert drain(sub.queue) == ["policy:base"]
    state.upsert_policy(record("premium", priority=5, selector={"matchLabels": {"tier": "premium"}}))
    assert drain(sub.queue) == ["policy:premium"]
    state.upsert_policy(record("other-ns", ns="elsewhere", priority=100))
    assert drain(sub.queue) == []  # a policy never affects pods of another namespace
    assert state.stats(("default", "base")).shadowed == ("web (served by premium)",)
    state.remove_policy(("default", "premium"))
    assert drain(sub.queue) == ["policy:base"]
    state.remove_policy(("default", "base"))
    assert drain(sub.queue) == ["none:"]
    assert ("default", "premium") in dirty


def test_rejected_first_version_serves_nobody_and_acks_count_as_synced() -> None:
    state = ControlState()
    for i in range(3):
        state.upsert_pod(PodRecord("default", f"p{i}", f"u{i}", {}))
    bad = record("p")
    bad.compiled, bad.problems = None, ("spec.default: unknown model 'x'",)
    state.upsert_policy(bad)
    assert state.winner(("default", "p0")) is None
    status = desired_status(state, bad)
    accepted = status["conditions"][0]
    assert accepted["status"] == "False" and "spec.default" in accepted["message"]
    good = record("p")
    state.upsert_policy(good)
    assert good.compiled is not None
    state.ack(("default", "p0"), Ack(good.compiled.version, True))
    state.ack(("default", "p1"), Ack("older", True))
    state.ack(("default", "p2"), Ack(good.compiled.version, False, "boom"))
    status = desired_status(state, good)
    assert (status["selectedPods"], status["syncedPods"], status["synced"]) == (3, 1, "1/3")
    assert status["conditions"][1]["status"] == "False" and "p1" in status["conditions"][1]["message"]
    assert status["models"] == "gpt-4o-mini,gpt-4o"


def test_a_new_pod_under_an_old_name_forgets_the_old_ack() -> None:
    state = ControlState()
    state.upsert_policy(record("p"))
    state.upsert_pod(PodRecord("default", "web", "u1", {}))
    state.ack(("default", "web"), Ack("v", True))
    state.upsert_pod(PodRecord("default", "web", "u2", {}))
    assert ("default", "web") not in state.acks
