"""The BERT encoder of all-MiniLM-L6-v2 as an ONNX Runtime graph built in memory (default backend).

No exported model file exists or is needed: the graph is assembled here from the safetensors
weights with ONNX Runtime's fused CPU operators (``com.microsoft`` Attention,
SkipLayerNormalization, BiasGelu; erf GELU, fused QKV), so its outputs equal the
sentence-transformers reference to float32 rounding. ONNX Runtime prepacks the constant weight
matrices once, which is what makes short inputs several times faster than plain numpy.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

Matrix = NDArray[np.float32]
_LAYERS = 6
_HEADS = 12
_EPS = 1e-12
_MS = "com.microsoft"


def _layer_nodes(w: dict[str, Any], i: int, x: str, const: Any, node: Any) -> tuple[list[Any], str]:
    p = f"encoder.layer.{i}."
    att = p + "attention.self."
    qkv = np.concatenate([w[att + n + ".weight"] for n in ("query", "key", "value")]).T
    qkv_b = np.concatenate([w[att + n + ".bias"] for n in ("query", "key", "value")])
    names = {
        "qkv": const(f"qkv{i}", qkv), "qkv_b": const(f"qkv_b{i}", qkv_b),
        "out": const(f"out{i}", w[p + "attention.output.dense.weight"].T),
        "out_b": const(f"out_b{i}", w[p + "attention.output.dense.bias"]),
        "g1": const(f"g1_{i}", w[p + "attention.output.LayerNorm.weight"]),
        "b1": const(f"b1_{i}", w[p + "attention.output.LayerNorm.bias"]),
        "up": const(f"up{i}", w[p + "intermediate.dense.weight"].T),
        "up_b": const(f"up_b{i}", w[p + "intermediate.dense.bias"]),
        "down": const(f"down{i}", w[p + "output.dense.weight"].T),
        "down_b": const(f"down_b{i}", w[p + "output.dense.bias"]),
        "g2": const(f"g2_{i}", w[p + "output.LayerNorm.weight"]),
        "b2": const(f"b2_{i}", w[p + "output.LayerNorm.bias"]),
    }
    n = names
    nodes = [
        node("Attention", [x, n["qkv"], n["qkv_b"], "mask"], [f"att{i}"], domain=_MS, num_heads=_HEADS),
        node("MatMul", [f"att{i}", n["out"]], [f"proj{i}"]),
        node("SkipLayerNormalization", [f"proj{i}", x, n["g1"], n["b1"], n["out_b"]], [f"mid{i}"],
             domain=_MS, epsilon=_EPS),
        node("MatMul", [f"mid{i}", n["up"]], [f"up{i}_y"]),
        node("BiasGelu", [f"up{i}_y", n["up_b"]], [f"act{i}"], domain=_MS),
        node("MatMul", [f"act{i}", n["down"]], [f"down{i}_y"]),
        node("SkipLayerNormalization", [f"down{i}_y", f"mid{i}", n["g2"], n["b2"], n["down_b"]], [f"h{i}"],
             domain=_MS, epsilon=_EPS),
    ]
    return nodes, f"h{i}"


def build_model(w: dict[str, Any]) -> bytes:
    """The serialised ONNX model: inputs ``input_ids`` (b, n) int64, ``position_ids`` (n,) int64,
    ``mask`` (b, n) int32; output ``hidden`` (b, n, 384)."""
    from onnx import TensorProto, helper, numpy_helper

    inits: list[Any] = []

    def const(name: str, value: Any) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(value, dtype=np.float32), name))
        return name

    node = helper.make_node
    const("word", w["embeddings.word_embeddings.weight"])
    const("pos", w["embeddings.position_embeddings.weight"])
    const("type0", w["embeddings.token_type_embeddings.weight"][0])
    const("emb_g", w["embeddings.LayerNorm.weight"])
    const("emb_b", w["embeddings.LayerNorm.bias"])
    nodes = [
        node("Gather", ["word", "input_ids"], ["we"]),
        node("Gather", ["pos", "position_ids"], ["pe"]),
        node("Add", ["we", "pe"], ["e1"]),
        node("Add", ["e1", "type0"], ["e2"]),
        node("LayerNormalization", ["e2", "emb_g", "emb_b"], ["h_emb"], epsilon=_EPS, axis=-1),
    ]
    x = "h_emb"
    for i in range(_LAYERS):
        more, x = _layer_nodes(w, i, x, const, node)
        nodes.extend(more)
    nodes.append(node("Identity", [x], ["hidden"]))
    graph = helper.make_graph(
        nodes, "all-MiniLM-L6-v2",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["b", "n"]),
         helper.make_tensor_value_info("position_ids", TensorProto.INT64, ["n"]),
         helper.make_tensor_value_info("mask", TensorProto.INT32, ["b", "n"])],
        [helper.make_tensor_value_info("hidden", TensorProto.FLOAT, ["b", "n", 384])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(_MS, 1)])
    data: bytes = model.SerializeToString()
    return data


class OnnxEncoder:
    """Hidden states of the encoder: ``(tokens (b, n) int64, mask (b, n) float32) -> (b, n, 384)``."""

    def __init__(self, w: dict[str, Any], threads: int = 1) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        self._session = ort.InferenceSession(build_model(w), options, providers=["CPUExecutionProvider"])

    def __call__(self, tokens: NDArray[np.int64], mask: Matrix) -> Matrix:
        feeds = {
            "input_ids": tokens,
            "position_ids": np.arange(tokens.shape[1], dtype=np.int64),
            "mask": mask.astype(np.int32),
        }
        hidden: Matrix = self._session.run(["hidden"], feeds)[0]
        return hidden
