"""Embedders the embedding router can use: the local MiniLM, or a registry model's embeddings
endpoint (OpenAI-compatible ``/v1/embeddings``) through the strategy's :class:`ModelClient`.

The local model is loaded once per process and runs on one worker thread, so the event loop
stays free while a request is embedded (ONNX Runtime and numpy release the GIL).
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from modelroute.embedding.knn import normalise
from modelroute.routing.strategy import ModelClient

Matrix = NDArray[np.float32]
LOCAL_NAME = "local:all-MiniLM-L6-v2"


class Embedder(Protocol):
    name: str

    async def embed(self, texts: list[str]) -> tuple[Matrix, float]:
        """Unit vectors of ``texts`` and what embedding them cost (USD)."""
        ...


_MODEL_LOCK = threading.Lock()
_MODELS: dict[tuple[str | None, int], object] = {}
_EXECUTOR = ThreadPoolExecutor(max_workers=1, thread_name_prefix="modelroute-embed")


def local_model(backend: str | None = None, max_tokens: int = 256):  # type: ignore[no-untyped-def]
    """The process-wide MiniLM (loaded on first use)."""
    from modelroute.embedding.minilm import MiniLM

    with _MODEL_LOCK:
        key = (backend, max_tokens)
        if key not in _MODELS:
            _MODELS[key] = MiniLM(backend=backend, max_tokens=max_tokens)
        return _MODELS[key]


class LocalEmbedder:
    name = LOCAL_NAME

    def __init__(self, backend: str | None = None, max_tokens: int = 256) -> None:
        self.backend = backend
        self.max_tokens = max_tokens

    def encode(self, texts: list[str]) -> Matrix:
        out: Matrix = local_model(self.backend, self.max_tokens).encode(texts)
        return out

    async def embed(self, texts: list[str]) -> tuple[Matrix, float]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(_EXECUTOR, self.encode, texts), 0.0

    def preload(self) -> None:
        """Start loading the model in the background (returns at once)."""
        _EXECUTOR.submit(local_model, self.backend, self.max_tokens)


class RemoteEmbedder:
    """A registry model's embeddings endpoint; ``name`` names the upstream model."""

    def __init__(self, client: ModelClient | None, model: str, upstream: str, timeout: float) -> None:
        self.client = client
        self.model = model
        self.name = f"model:{upstream}"
        self.timeout = timeout

    async def embed(self, texts: list[str]) -> tuple[Matrix, float]:
        if self.client is None:
            raise RuntimeError("no model client to call the embeddings endpoint")
        rows, cost = await self.client.embed(self.model, texts, timeout=self.timeout)
        return normalise(np.asarray(rows, np.float32)), cost
