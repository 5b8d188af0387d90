"""Nearest-neighbour search, the example library file formats, and what of a prompt is embedded."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from modelroute.embedding.knn import EXACT_BELOW, VectorIndex, normalise
from modelroute.embedding.library import LibraryError, load_library, read_meta, Library
from modelroute.embedding.text import discriminating_text


def clustered(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = normalise(rng.standard_normal((64, 48)).astype(np.float32))
    return normalise(centres[rng.integers(0, 64, n)] + 0.15 * rng.standard_normal((n, 48)).astype(np.float32))


def test_exact_search_orders_by_similarity() -> None:
    x = clustered(500)
    index = VectorIndex(x)
    assert index.exact
    found = index.search(x[7], 5)
    assert found.index[0] == 7 and found.similarity[0] == pytest.approx(1.0, abs=1e-5)
    assert list(found.similarity) == sorted(found.similarity, reverse=True)
    assert set(found.index) == set(np.argsort(-(x @ x[7]))[:5])


def test_ivf_search_recalls_the_exact_neighbours() -> None:
    x = clustered(EXACT_BELOW * 3, seed=1)
    index = VectorIndex(x)
    assert not index.exact
    rng = np.random.default_rng(2)
    queries = normalise(x[rng.integers(0, len(x), 50)] + 0.05 * rng.standard_normal((50, 48)).astype(np.float32))
    recall = [len(set(index.search(q, 10).index) & set(np.argsort(-(x @ q))[:10])) / 10 for q in queries]
    assert np.mean(recall) >= 0.95


def test_npz_round_trip(tmp_path: Path) -> None:
    x = clustered(40)
    lib = Library.build(x, ["a"] * 20 + ["b"] * 20, models=("m1", "m2"), quality=np.ones((40, 2), np.float32),
                        meta={"embedder": "local:all-MiniLM-L6-v2", "dimensions": 48})
    lib.save(tmp_path / "lib.npz")
    assert read_meta(tmp_path / "lib.npz")["dimensions"] == 48
    back = load_library(tmp_path / "lib.npz")
    assert back.labels == ("a", "b") and list(back.label_ids[:21]) == [0] * 20 + [1]
    assert np.allclose(back.vectors, x, atol=2e-3)  # stored as float16
    assert back.models == ("m1", "m2") and back.quality is not None and back.quality.shape == (40, 2)


def test_jsonl_with_vectors_and_texts(tmp_path: Path) -> None:
    path = tmp_path / "lib.jsonl"
    lines = [{"meta": {"embedder": "test"}}, {"label": "x", "vector": [1, 0, 0]}, {"label": "y", "text": "hello"}]
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    with pytest.raises(LibraryError, match="no embedder"):
        load_library(path)
    lib = load_library(path, lambda texts: np.array([[0, 1, 0]] * len(texts), np.float32))
    assert read_meta(path) == {"embedder": "test"}
    assert lib.index.search(np.array([0, 1, 0], np.float32), 1).index[0] == 1


def test_bad_library_files(tmp_path: Path) -> None:
    with pytest.raises(LibraryError, match="does not exist"):
        load_library(tmp_path / "absent.npz")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"label": 3}\n')
    with pytest.raises(LibraryError, match="needs a string label"):
        load_library(bad)


def test_discriminating_text_takes_the_final_question() -> None:
    few_shot = "Q: 1+1?\nA: 2\n\nQ: 2+2?\nA: 4\n\nQ: What is the boiling point of water at sea level in Celsius?\nA:"
    assert discriminating_text(few_shot) == "Q: What is the boiling point of water at sea level in Celsius?\nA:"
    short_tail = "Instructions that matter here.\n\nAnswer:"
    assert discriminating_text(short_tail, min_chars=20) == "Instructions that matter here.\n\nAnswer:"
    assert discriminating_text("x" * 5000, max_chars=100) == "x" * 100
    assert discriminating_text("  \n\n ") == ""


def test_discriminating_text_drops_the_templates_repeated_lines() -> None:
    shot = 'Kyle wears leg warmers. _ is cold.\nA) Kyle\nB) Logan\nPrint only a single choice from "A" or "B". Answer:\nA'
    question = 'The drink was rich in caffeine because the _ was not enough.\nA) caffeine\nB) sugar\nPrint only a single choice from "A" or "B". Answer:'
    prompt = f"Please answer with the letter.\n\n{shot}\n\n{question}"
    assert discriminating_text(prompt) == "The drink was rich in caffeine because the _ was not enough.\nA) caffeine\nB) sugar"
    # a tail made only of lines seen before extends backwards to where they were first seen
    assert discriminating_text("Answer:\n\nAnswer:", min_chars=4) == "Answer:\n\nAnswer:"
