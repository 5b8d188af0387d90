"""Embedding routing: embed the request, find its nearest labelled examples, let them decide.

The request's discriminating text (:func:`modelroute.embedding.text.discriminating_text`: the last
paragraphs of the last user message) is embedded by the local MiniLM or a registry model's
embeddings endpoint, and looked up in the example library (``library``: a file beside the
policy). ``decide: vote`` (default) takes the label with the largest similarity-weighted vote of
the ``k`` nearest examples; ``decide: quality`` averages the neighbours' per-model quality scores
and takes the cheapest model within ``qualityTarget`` of the best. A label is a registry model, or
is mapped by ``labels`` to a model or to another strategy (a cascade, say) that then chooses. When
the nearest example is less similar than ``minSimilarity`` the request goes to ``default`` (or,
without one, on to the next route).

The library loads in the background when the strategy is built (once per policy version); the
first requests wait for it.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Future, ThreadPoolExecutor
from collections.abc import Mapping
from typing import Any

import numpy as np

from modelroute.embedding.library import Library, LibraryError, load_library, read_meta
from modelroute.embedding.text import MAX_CHARS, MIN_CHARS, discriminating_text
from modelroute.policy import CompiledPolicy
from modelroute.routing.request import RequestView
from modelroute.routing.strategies._config import Config
from modelroute.routing.strategies.embedders import Embedder, LocalEmbedder, RemoteEmbedder
from modelroute.routing.strategy import Choice, ModelClient, Strategy

_FIELDS = ("library", "embedder", "k", "minSimilarity", "default", "decide", "labels", "qualityTarget",
           "text", "timeoutSeconds", "backend")
_LOADER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="modelroute-library")


class EmbeddingStrategy(Strategy):
    type = "embedding"

    def __init__(self, name: str, config: Mapping[str, Any], policy: CompiledPolicy, client: ModelClient | None) -> None:
        super().__init__(name, config, policy, client)
        cfg = Config(name, config, policy, _FIELDS)
        self.path = cfg.required_string("library")
        self.k = cfg.integer("k", 16, lo=1, hi=1000)
        self.min_similarity = cfg.number("minSimilarity", 0.3, lo=-1.0, hi=1.0)
        self.default = cfg.model("default", required=False)
        self.decide = cfg.string("decide", "vote", choices=("vote", "quality")) or "vote"
        self.quality_target = cfg.number("qualityTarget", 0.97, lo=0.0, hi=1.0)
        text = cfg.mapping("text")
        self.min_chars = cfg.integer("minChars", MIN_CHARS, lo=0, block=text, at=("text",))
        self.max_chars = cfg.integer("maxChars", MAX_CHARS, lo=1, block=text, at=("text",))
        self.embedder = self._embedder(cfg, client)
        self.targets = self._targets(cfg, policy, client)
        meta = self._check_library(cfg)
        cfg.check()
        self.meta = meta
        self._future: Future[Library] = _LOADER.submit(self._load)

    def _embedder(self, cfg: Config, client: ModelClient | None) -> Embedder:
        name = cfg.string("embedder", "local") or "local"
        backend = cfg.string("backend", None, choices=("onnx", "numpy"))
        if name == "local":
            embedder = LocalEmbedder(backend)
            embedder.preload()
            return embedder
        if name not in cfg.policy.models:
            cfg.fail(f"must be 'local' or a registry model; unknown model {name!r}", "embedder")
            return LocalEmbedder(backend)
        timeout = cfg.number("timeoutSeconds", 2.0, lo=0.01)
        return RemoteEmbedder(client, name, cfg.policy.models[name].upstream_model, timeout)

    def _targets(self, cfg: Config, policy: CompiledPolicy, client: ModelClient | None) -> dict[str, str | Strategy]:
        """label -> registry model, or -> another strategy that chooses."""
        out: dict[str, str | Strategy] = {}
        for label, target in cfg.mapping("labels").items():
            if isinstance(target, str) and target in policy.models:
                out[label] = target
            elif isinstance(target, Mapping) and set(target) == {"strategy"}:
                nested = cfg.strategy(target["strategy"], client, (self.type,), "labels", label)
                if nested is not None:
                    out[label] = nested
            else:
                cfg.fail("must be a registry model or {strategy: <name>}", "labels", label)
        return out

    def _check_library(self, cfg: Config) -> dict[str, Any]:
        if not self.path:
            return {}
        try:
            meta = read_meta(self.path)
        except LibraryError as exc:
            cfg.fail(str(exc), "library")
            return {}
        built_with = meta.get("embedder")
        if built_with is not None and built_with != self.embedder.name:
            cfg.fail(f"library was built with embedder {built_with!r}, this strategy uses {self.embedder.name!r}", "library")
        dims = meta.get("dimensions")
        if isinstance(self.embedder, LocalEmbedder) and dims not in (None, 384):
            cfg.fail(f"library vectors have {dims} dimensions; the local embedder makes 384", "library")
        return meta

    def _load(self) -> Library:
        encode = self.embedder.encode if isinstance(self.embedder, LocalEmbedder) else None
        library = load_library(self.path, encode)
        unknown = [label for label in library.labels if label not in self.targets and label not in self.policy.models]
        if self.decide == "vote" and unknown:
            raise LibraryError(f"library labels {unknown[:5]} are neither registry models nor mapped in labels")
        return library

    async def library(self) -> Library:
        return await asyncio.wrap_future(self._future)

    async def choose(self, view: RequestView) -> Choice:
        text = discriminating_text(view.prompt_text(), self.min_chars, self.max_chars)
        if not text:
            return Choice(self.default, "no text to embed", {"embedding": "no text"})
        vectors, cost = await self.embedder.embed([text])
        view.decision_cost_usd += cost
        library = await self.library()
        found = library.index.search(vectors[0], self.k)
        nearest = float(found.similarity[0]) if len(found.index) else -1.0
        notes: dict[str, Any] = {"similarity": round(nearest, 4)}
        if nearest < self.min_similarity:
            return Choice(self.default, f"far from every example (similarity {nearest:.3f})", notes)
        if self.decide == "quality":
            label = self._by_quality(library, found.index, found.similarity)
        else:
            label = self._by_vote(library, found.index, found.similarity)
        notes["label"] = label
        target = self.targets.get(label, label)
        if isinstance(target, Strategy):
            choice = await target.choose(view)
            return Choice(choice.model, f"neighbours chose {label}: {choice.reason}", {**notes, **choice.annotations},
                          chain=choice.chain, reviewer=choice.reviewer)
        if target not in self.policy.models:
            return Choice(self.default, f"label {label!r} is not a registry model", notes)
        return Choice(target, f"neighbours chose {label}", notes)

    @staticmethod
    def _by_vote(library: Library, index: np.ndarray, sims: np.ndarray) -> str:
        votes = np.bincount(library.label_ids[index], weights=np.maximum(sims, 1e-6), minlength=len(library.labels))
        return library.labels[int(np.argmax(votes))]

    def _by_quality(self, library: Library, index: np.ndarray, sims: np.ndarray) -> str:
        if library.quality is None:
            raise LibraryError("decide: quality needs a library with per-model quality scores")
        weights = np.maximum(sims, 1e-6)[:, None]
        quality = np.nansum(library.quality[index] * weights, 0) / weights.sum()
        usable = [i for i, m in enumerate(library.models) if m in self.policy.models or m in self.targets]
        best = max(quality[i] for i in usable)
        able = [i for i in usable if quality[i] >= self.quality_target * best]
        price = self._prices(library, index)
        return library.models[min(able, key=lambda i: (price[i], -quality[i]))]

    def _prices(self, library: Library, index: np.ndarray) -> list[float]:
        if library.cost is not None and not np.isnan(library.cost[index]).all():
            return [float(x) if x == x else float("inf") for x in np.nanmean(library.cost[index], 0)]
        out = []
        for m in library.models:
            spec = self.policy.models.get(m)
            out.append(spec.pricing.input + spec.pricing.output if spec else float("inf"))
        return out

    async def aclose(self) -> None:
        for target in self.targets.values():
            if isinstance(target, Strategy):
                await target.aclose()
