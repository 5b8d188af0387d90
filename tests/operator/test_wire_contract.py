"""The operator/sidecar contract: messages, acks, bootstrap bundles, and the selection rule."""

from __future__ import annotations

import pytest

from modelroute.policy import compile_policy
from modelroute.policy.wire import (
    Ack,
    Bundle,
    Candidate,
    Message,
    choose,
    none_message,
    parse_labels_file,
    policy_message,
    selector_matches,
)
from tests.operator.harness import policy_doc


@pytest.mark.parametrize(("selector", "labels", "expected"), [
    ({}, {"app": "x"}, True),
    ({"matchLabels": {"app": "x"}}, {"app": "x", "tier": "a"}, True),
    ({"matchLabels": {"app": "x"}}, {"app": "y"}, False),
    ({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}]}, {"tier": "b"}, True),
    ({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["a"]}]}, {}, False),
    ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["a"]}]}, {}, True),
    ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["a"]}]}, {"tier": "a"}, False),
    ({"matchExpressions": [{"key": "gpu", "operator": "Exists"}]}, {"gpu": ""}, True),
    ({"matchExpressions": [{"key": "gpu", "operator": "DoesNotExist"}]}, {"gpu": ""}, False),
])
def test_label_selector(selector: dict, labels: dict, expected: bool) -> None:
    assert selector_matches(selector, labels) is expected


def test_priority_then_oldest_then_name_wins() -> None:
    old = Candidate("old", 0, "2025-01-01T00:00:00Z")
    new = Candidate("new", 0, "2026-01-01T00:00:00Z")
    high = Candidate("high", 10, "2026-06-01T00:00:00Z", {"matchLabels": {"tier": "premium"}})
    assert [c.name for c in choose([new, old, high], {"tier": "premium"})] == ["high", "old", "new"]
    assert [c.name for c in choose([new, old, high], {})] == ["old", "new"]
    twins = [Candidate("b", 0, "2025-01-01T00:00:00Z"), Candidate("a", 0, "2025-01-01T00:00:00Z")]
    assert choose(twins, {})[0].name == "a"


def test_messages_round_trip_a_compiled_policy() -> None:
    compiled = compile_policy(policy_doc("p", "http://127.0.0.1:1/v1"))
    msg = Message.decode(policy_message("ns", compiled).encode())
    assert (msg.type, msg.name, msg.namespace, msg.version) == ("policy", "p", "ns", compiled.version)
    assert msg.compiled() == compiled
    assert Message.decode(none_message("gone").encode()).reason == "gone"
    with pytest.raises(ValueError):
        Message.decode(b'{"type": "policy"}')
    with pytest.raises(ValueError):
        Message.decode(b'{"type": "exec"}')


def test_ack_and_bundle_round_trip() -> None:
    ack = Ack.decode(Ack("v1", False, "x" * 2000).encode())
    assert ack.version == "v1" and not ack.applied and len(ack.error or "") == 500
    compiled = compile_policy(policy_doc("p", "http://127.0.0.1:1/v1"))
    cand = Candidate("p", 3, "2026-01-01T00:00:00Z", {"matchLabels": {"a": "b"}})
    bundle = Bundle.decode(Bundle(cand, compiled.to_dict()).encode())
    assert bundle.candidate == cand and bundle.policy == compiled.to_dict()


def test_downward_api_labels_file() -> None:
    text = 'app="chat"\nmodelroute.dev/inject="true"\npod-template-hash="5d9c"\nweird="a\\"b"\n'
    assert parse_labels_file(text) == {"app": "chat", "modelroute.dev/inject": "true", "pod-template-hash": "5d9c", "weird": 'a"b'}
