"""The BERT encoder of all-MiniLM-L6-v2 in plain numpy (the fallback backend).

Exact to float32 rounding (erf GELU); slower than the ONNX Runtime backend because OpenBLAS
repacks every weight matrix on each call, which dominates for short inputs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

Matrix = NDArray[np.float32]
DIMENSIONS = 384
_HEADS = 12
_LAYERS = 6
_EPS = 1e-12


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


def layer_norm(x: Matrix, weight: Matrix, bias: Matrix) -> Matrix:
    mean = x.mean(-1, keepdims=True)
    centred = x - mean
    var = np.mean(centred * centred, -1, keepdims=True)
    out: Matrix = (centred / np.sqrt(var + _EPS)) * weight + bias
    return out


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
        x = layer_norm(context @ self.out + self.out_b + x, *self.ln1)
        hidden = gelu(x @ self.up + self.up_b)
        return layer_norm(hidden @ self.down + self.down_b + x, *self.ln2)



class NumpyEncoder:
    """Hidden states of the encoder: ``(tokens (b, n) int64, mask (b, n) float32) -> (b, n, 384)``."""

    def __init__(self, w: dict[str, Any]) -> None:
        self._words = w["embeddings.word_embeddings.weight"]
        self._positions = w["embeddings.position_embeddings.weight"]
        self._type0 = w["embeddings.token_type_embeddings.weight"][0]
        self._ln = (w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        self._layers = [_Layer(w, i) for i in range(_LAYERS)]

    def __call__(self, tokens: NDArray[np.int64], mask: Matrix) -> Matrix:
        n = tokens.shape[1]
        x = layer_norm(self._words[tokens] + self._positions[:n] + self._type0, *self._ln)
        mask_bias = ((1.0 - mask) * np.float32(-1e9))[:, None, None, :].astype(np.float32)
        for layer in self._layers:
            x = layer(x, mask_bias)
        return x
