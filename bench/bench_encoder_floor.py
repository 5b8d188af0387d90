"""The floor under the local embedder: MiniLM-L6's matrix products alone, on one core.

The issue asks the local all-MiniLM-L6-v2 for a p50 under 10 ms on a 256-token input, on one core.
This script times only the encoder's matrix products at that length, with nothing else (no
tokenizer, layer norm, GELU, softmax, copies), so their sum is a lower bound on any implementation
built from this machine's GEMM kernels:

- fp32: numpy (OpenBLAS) on one thread; the dense layers (Q, K, V, output, the two FFN products)
  and the attention products (12 heads, Q·Kᵀ and P·V);
- int8: ONNX Runtime's ``MatMulInteger`` (u8 x s8, VNNI kernels) on one thread, dense layers only
  (attention stays fp32 in every int8 scheme ORT offers).

Run it with ``python bench/bench_encoder_floor.py`` (it pins OpenBLAS to one thread unless
``OPENBLAS_NUM_THREADS`` says otherwise); the figures are in bench/README.md.
"""
from __future__ import annotations

import os
import statistics
from typing import Any, Callable

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy loads OpenBLAS

import numpy as np  # noqa: E402
from _timing import timed  # noqa: E402

TOKENS, HIDDEN, FFN, HEADS, LAYERS = 256, 384, 1536, 12, 6
DENSE = [(TOKENS, HIDDEN, HIDDEN)] * 4 + [(TOKENS, HIDDEN, FFN), (TOKENS, FFN, HIDDEN)]


def p50_ms(fn: Callable[[], Any], n: int = 200) -> float:
    return statistics.median(timed(fn, n, warmup=10)) * 1e3


def fp32_dense(m: int, k: int, n: int) -> float:
    rng = np.random.default_rng(0)
    a, b = rng.random((m, k), np.float32), rng.random((k, n), np.float32)
    return p50_ms(lambda: a @ b)


def fp32_attention() -> float:
    rng = np.random.default_rng(0)
    head = HIDDEN // HEADS
    q, k, v = (rng.random((HEADS, TOKENS, head), np.float32) for _ in range(3))
    kt = np.ascontiguousarray(k.transpose(0, 2, 1))
    p = rng.random((HEADS, TOKENS, TOKENS), np.float32)
    return p50_ms(lambda: q @ kt) + p50_ms(lambda: p @ v)


def int8_dense(m: int, k: int, n: int) -> float:
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.integers(-127, 127, (k, n), dtype=np.int8), "W")
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["A", "W"], ["Y"])], "floor",
        [helper.make_tensor_value_info("A", TensorProto.UINT8, [m, k])],
        [helper.make_tensor_value_info("Y", TensorProto.INT32, [m, n])], [weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    feed = {"A": rng.integers(0, 255, (m, k), dtype=np.uint8)}
    return p50_ms(lambda: session.run(None, feed))


def main() -> None:
    flops = sum(2 * m * k * n for m, k, n in DENSE)
    fp32 = sum(fp32_dense(*shape) for shape in DENSE)
    attention = fp32_attention()
    int8 = sum(int8_dense(*shape) for shape in DENSE)
    print(f"one layer's dense products: {flops / 1e9:.2f} GFLOP")
    print(f"fp32 dense    per layer {fp32:7.3f} ms  ({flops / fp32 / 1e6:6.1f} GFLOP/s)"
          f"  x{LAYERS} = {fp32 * LAYERS:6.1f} ms")
    print(f"fp32 attention per layer {attention:6.3f} ms"
          f"                      x{LAYERS} = {attention * LAYERS:6.1f} ms")
    print(f"int8 dense    per layer {int8:7.3f} ms  ({flops / int8 / 1e6:6.1f} GOP/s)  "
          f"x{LAYERS} = {int8 * LAYERS:6.1f} ms")
    print(f"floor, fp32: {(fp32 + attention) * LAYERS:.1f} ms;"
          f" int8 dense + fp32 attention: {(int8 + attention) * LAYERS:.1f} ms; goal 10 ms")


if __name__ == "__main__":
    main()
