"""The example library of the embedding router: labelled unit vectors in one file.

Formats (chosen by the file's extension):

``.npz`` (written by ``modelroute calibrate``): ``vectors`` (n, d) float16/float32 unit rows;
``labels`` (n,) strings; optionally ``models`` (m,) with ``quality`` (n, m) per-model scores 0..1 and
``cost`` (n, m) USD; ``meta``, a JSON string (``embedder``, ``text`` rule, ``dimensions``).

``.jsonl``: an optional first line ``{"meta": {...}}``, then one example a line:
``{"label": "...", "vector": [...]}`` or ``{"label": "...", "text": "..."}`` (texts are embedded
when the library loads), optionally ``"quality": {model: score}`` and ``"cost": {model: usd}``.

Loading is cached per file (path, size, modification time), so a policy version loads its
library once and versions that share an unchanged file share it.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
from numpy.typing import NDArray

from modelroute.embedding.knn import VectorIndex, normalise

Matrix = NDArray[np.float32]
EmbedTexts = Callable[[list[str]], Matrix]


class LibraryError(ValueError):
    """The library file is missing or malformed."""


@dataclass
class Library:
    vectors: Matrix
    labels: tuple[str, ...]  # distinct labels
    label_ids: NDArray[np.int64]  # (n,) index into labels
    models: tuple[str, ...] = ()
    quality: Matrix | None = None  # (n, m)
    cost: Matrix | None = None  # (n, m)
    meta: dict[str, Any] = field(default_factory=dict)
    _index: VectorIndex | None = None

    def __len__(self) -> int:
        return len(self.vectors)

    @property
    def index(self) -> VectorIndex:
        if self._index is None:
            self._index = VectorIndex(self.vectors)
        return self._index

    @staticmethod
    def build(vectors: Matrix, labels: Sequence[str], *, models: Sequence[str] = (), quality: Matrix | None = None,
              cost: Matrix | None = None, meta: dict[str, Any] | None = None) -> Library:
        names = tuple(sorted(set(labels)))
        lookup = {name: i for i, name in enumerate(names)}
        ids = np.array([lookup[label] for label in labels], np.int64)
        vecs = normalise(np.asarray(vectors, np.float32))
        return Library(vecs, names, ids, tuple(models), quality, cost, dict(meta or {}))

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the ``.npz`` form (vectors as float16: half the size, cosine error < 1e-3)."""
        arrays: dict[str, Any] = {
            "vectors": self.vectors.astype(np.float16),
            "labels": np.array([self.labels[i] for i in self.label_ids]),
            "meta": np.array(json.dumps(self.meta, sort_keys=True)),
        }
        if self.models:
            arrays["models"] = np.array(self.models)
        if self.quality is not None:
            arrays["quality"] = self.quality.astype(np.float16)
        if self.cost is not None:
            arrays["cost"] = self.cost.astype(np.float32)
        with open(path, "wb") as fh:
            np.savez_compressed(fh, **arrays)


def read_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The library's ``meta`` without loading its vectors (cheap: for validation)."""
    p = Path(path)
    if not p.is_file():
        raise LibraryError(f"library file {p} does not exist")
    try:
        if p.suffix == ".npz":
            with np.load(p, allow_pickle=False) as data:
                return dict(json.loads(str(data["meta"]))) if "meta" in data.files else {}
        with p.open() as fh:
            first = json.loads(fh.readline() or "{}")
        return dict(first["meta"]) if isinstance(first, dict) and isinstance(first.get("meta"), dict) else {}
    except (OSError, ValueError, KeyError) as exc:
        raise LibraryError(f"library file {p} is not readable: {exc}") from None


def _load_npz(p: Path) -> Library:
    with np.load(p, allow_pickle=False) as data:
        for key in ("vectors", "labels"):
            if key not in data.files:
                raise LibraryError(f"{p} has no {key!r} array")
        vectors = data["vectors"].astype(np.float32)
        labels = [str(x) for x in data["labels"]]
        models = tuple(str(x) for x in data["models"]) if "models" in data.files else ()
        quality = data["quality"].astype(np.float32) if "quality" in data.files else None
        cost = data["cost"].astype(np.float32) if "cost" in data.files else None
        meta = dict(json.loads(str(data["meta"]))) if "meta" in data.files else {}
    if vectors.ndim != 2 or len(vectors) != len(labels) or len(vectors) == 0:
        raise LibraryError(f"{p}: vectors {vectors.shape} and {len(labels)} labels do not match")
    for name, arr in (("quality", quality), ("cost", cost)):
        if arr is not None and arr.shape != (len(labels), len(models)):
            raise LibraryError(f"{p}: {name} has shape {arr.shape}, expected {(len(labels), len(models))}")
    return Library.build(vectors, labels, models=models, quality=quality, cost=cost, meta=meta)


def _load_jsonl(p: Path, embed: EmbedTexts | None) -> Library:
    rows: list[dict[str, Any]] = []
    meta: dict[str, Any] = {}
    with p.open() as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:
                raise LibraryError(f"{p}:{number}: not JSON") from None
            if number == 1 and isinstance(row, dict) and isinstance(row.get("meta"), dict):
                meta = row["meta"]
                continue
            if not isinstance(row, dict) or not isinstance(row.get("label"), str) or not ("vector" in row or "text" in row):
                raise LibraryError(f"{p}:{number}: needs a string label and a vector or a text")
            rows.append(row)
    if not rows:
        raise LibraryError(f"{p} has no examples")
    texts = [str(r["text"]) for r in rows if "vector" not in r]
    if texts and embed is None:
        raise LibraryError(f"{p} has texts but no embedder was given")
    embedded: Iterator[Matrix] = iter(embed(texts) if texts and embed is not None else [])
    vectors = np.stack([np.asarray(r["vector"], np.float32) if "vector" in r else next(embedded) for r in rows])
    models = tuple(sorted({m for r in rows for m in (r.get("quality") or {})}))
    quality = cost = None
    if models:
        quality = np.array([[float((r.get("quality") or {}).get(m, np.nan)) for m in models] for r in rows], np.float32)
        cost = np.array([[float((r.get("cost") or {}).get(m, np.nan)) for m in models] for r in rows], np.float32)
    return Library.build(vectors, [r["label"] for r in rows], models=models, quality=quality, cost=cost, meta=meta)


_CACHE: dict[tuple[str, int, int], Library] = {}
_LOCK = threading.Lock()


def load_library(path: str | os.PathLike[str], embed: EmbedTexts | None = None) -> Library:
    """Load (once per unchanged file) and index a library."""
    p = Path(path).resolve()
    try:
        stat = p.stat()
    except OSError:
        raise LibraryError(f"library file {p} does not exist") from None
    key = (str(p), stat.st_size, stat.st_mtime_ns)
    with _LOCK:
        if key in _CACHE:
            return _CACHE[key]
        library = _load_npz(p) if p.suffix == ".npz" else _load_jsonl(p, embed)
        library.index  # build the search index now, off the request path
        if len(_CACHE) >= 4:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = library
        return library
