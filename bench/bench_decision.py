"""Decision latency per strategy, excluding remote calls (one core for the local model).

    .venv/bin/python bench/bench_decision.py [--data ../shared/data/routerbench-train.jsonl]

Prints p50/p99 of: Router.decide with rules only; the local MiniLM on a 256-token input and on the
routerbench prompts' discriminating texts; kNN over 50,000 examples; Router.decide with the
embedding strategy (local model included) on routerbench prompts; cascade and cached classifier
decisions. Targets: rules < 20 us, embedding decision < 15 ms p50, lookup < 2 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Awaitable, Callable

import numpy as np

from _timing import timed
from modelroute.calibrate.run import Options, calibrate
from modelroute.embedding.knn import VectorIndex, normalise
from modelroute.embedding.minilm import MiniLM
from modelroute.embedding.text import discriminating_text
from modelroute.policy import compile_policy, compile_text
from modelroute.routing import Router, build_view

ROOT = Path(__file__).resolve().parents[1]


def stats(name: str, samples: list[float], unit: str = "ms") -> None:
    scale = 1e3 if unit == "ms" else 1e6
    s = np.array(samples) * scale
    print(f"{name:<52} p50 {np.percentile(s, 50):9.3f} {unit}   p99 {np.percentile(s, 99):9.3f} {unit}   n={len(s)}")


async def atimed(fn: Callable[[int], Awaitable[Any]], n: int) -> list[float]:
    await fn(0)
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        await fn(i)
        out.append(time.perf_counter() - t0)
    return out


def rules_router() -> Router:
    doc = {"providers": [{"name": "p", "type": "openai", "baseURL": "http://127.0.0.1:9/v1"}],
           "models": [{"name": m, "provider": "p", "pricing": {"input": 1, "output": 1}} for m in ("small", "big")],
           "default": "small",
           "routes": [{"name": "code", "match": {"task": ["code"]}, "model": "big"},
                      {"name": "premium", "match": {"headers": {"x-tier": "premium"}}, "model": "big"},
                      {"name": "long", "when": "request.input_tokens > 100000", "model": "big"}]}
    return Router(compile_policy(doc))


def strategies_router() -> Router:
    doc = {"providers": [{"name": "p", "type": "openai", "baseURL": "http://127.0.0.1:9/v1"}],
           "models": [{"name": m, "provider": "p", "pricing": {"input": 1, "output": 1}} for m in ("small", "big")],
           "default": "small",
           "strategies": {"c": {"type": "cascade", "chain": ["small", "big"]},
                          "k": {"type": "classifier", "model": "small", "models": {"simple": "small", "complex": "big"}},
                          "s": {"type": "split", "targets": [{"strategy": "c", "share": 0.3}, {"model": "big", "share": 0.7}]}}}
    return Router(compile_policy(doc))


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "routerbench-train.jsonl"))
    args = parser.parse_args()
    router = rules_router()
    body = {"model": "auto", "messages": [{"role": "user", "content": "hello there"}]}
    view = build_view(body, {})
    stats("rules: Router.decide (3 rules, default)", await atimed(lambda i: router.decide(view), 20000), "us")
    stats("rules: build_view + Router.decide", await atimed(lambda i: router.decide(build_view(body, {})), 20000), "us")
    router = strategies_router()
    cascade = router.strategies["c"]
    stats("cascade: choose (no remote call)", await atimed(lambda i: cascade.choose(view), 20000), "us")
    split = router.strategies["s"]
    long_view = build_view({"model": "auto", "messages": [{"role": "user", "content": "word " * 400}]}, {})
    stats("split: choose (2 KB prompt, no remote call)", await atimed(lambda i: split.choose(long_view), 20000), "us")
    classifier = router.strategies["k"]
    from modelroute.routing.strategies.classifier import prompt_key
    classifier._cache[prompt_key("hello there")] = "simple"  # type: ignore[attr-defined]
    stats("classifier: label + choose, cache hit", await atimed(lambda i: _classify(classifier, body), 20000), "us")

    model = MiniLM(threads=1)
    long_text = "The quick brown fox jumps over the lazy dog near the river bank. " * 40
    stats("MiniLM onnx, 256-token input, 1 thread", timed(lambda: model.encode([long_text]), 50))
    numpy_model = MiniLM(backend="numpy")
    stats("MiniLM numpy, 256-token input, 1 thread*", timed(lambda: numpy_model.encode([long_text]), 10))
    rows = [line for line in Path(args.data).read_text().splitlines() if line.strip()]
    import json
    prompts = [json.loads(r)["prompt"] for r in rows]
    texts = [discriminating_text(p) for p in prompts]
    lengths = [len(ids) for ids in model.token_ids(texts)]
    print(f"routerbench discriminating texts: tokens p50 {np.percentile(lengths, 50):.0f}, p90 {np.percentile(lengths, 90):.0f}")
    stats("MiniLM onnx, routerbench discriminating texts", [_t(lambda t=t: model.encode([t])) for t in texts[::5]])

    rng = np.random.default_rng(0)
    centres = normalise(rng.standard_normal((500, 384)).astype(np.float32))
    lib = normalise(centres[rng.integers(0, 500, 50_000)] + 0.1 * rng.standard_normal((50_000, 384)).astype(np.float32))
    index = VectorIndex(lib)
    queries = normalise(lib[rng.integers(0, 50_000, 500)] + 0.05 * rng.standard_normal((500, 384)).astype(np.float32))
    stats("kNN k=16 over 50,000 examples (IVF)", [_t(lambda q=q: index.search(q, 16)) for q in queries])

    with tempfile.TemporaryDirectory() as out:
        result = calibrate(Options(args.data, 0.97, out, vectors=str(ROOT / "tests/calibrate/data/routerbench-vectors.npz")))
        compiled = compile_text(result.policy.read_text(), out)
        smart = Router(compiled)
        await smart.strategies["router"].library()  # type: ignore[attr-defined]
        views = [{"model": "auto", "messages": [{"role": "user", "content": p}]} for p in prompts[::5]]
        stats("embedding: Router.decide, local model included", await atimed(lambda i: smart.decide(build_view(views[i % len(views)], {})), len(views)))
    print("* numpy backend: OpenBLAS threads as configured (OPENBLAS_NUM_THREADS=1 for one core)")


async def _classify(strategy: Any, body: dict[str, Any]) -> Any:
    view = build_view(body, {})
    await strategy.label(view)
    return await strategy.choose(view)


def _t(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
