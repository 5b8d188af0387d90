"""The calibration run behind ``modelroute calibrate``: data -> vectors -> plans -> fit -> report -> policy."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from numpy.typing import NDArray

from modelroute.calibrate import data as datamod
from modelroute.calibrate import fit as fitmod
from modelroute.calibrate import plans as plansmod
from modelroute.calibrate import policy as policymod
from modelroute.calibrate.report import Line, compare
from modelroute.embedding.library import Library
from modelroute.embedding.text import MAX_CHARS, MIN_CHARS, discriminating_text
from modelroute.routing.strategies.split import bucket, pick

Progress = Callable[[str, int, int], None]


@dataclass
class Options:
    data: str
    target: float
    out: str
    holdout: float = 0.25
    cascades: bool = True
    baseline: str | None = None
    prices: str | None = None
    vectors: str | None = None  # cache of prompt vectors (.npz), reused when it matches
    base_url: str = "http://127.0.0.1:8000/v1"
    name: str = "calibrated"
    salt: str = "modelroute"
    refit: bool = True  # write the policy fitted again on every prompt (the held-out report is of the training part's fit)


@dataclass
class Result:
    policy: Path
    lines: list[Line]
    alone: list[Line] = field(default_factory=list)  # the embedding router without cascades
    fit: fitmod.Fit | None = None  # the written policy's
    plans: list[plansmod.Plan] = field(default_factory=list)
    reported: fitmod.Fit | None = None  # the fit the held-out lines are of (on the training part)
    fitted_on: int = 0  # prompts the written policy was fitted on


def _noop(stage: str, done: int, total: int) -> None:
    pass


def embed_prompts(prompts: list[str], cache: str | None, progress: Progress) -> NDArray[np.float32]:
    """Vectors of the prompts' discriminating texts (from ``cache`` when it holds exactly these)."""
    texts = [discriminating_text(p, MIN_CHARS, MAX_CHARS) for p in prompts]
    digest = hashlib.sha256("\x00".join(texts).encode()).hexdigest()
    if cache and os.path.exists(cache):
        with np.load(cache, allow_pickle=False) as saved:
            if str(saved["digest"]) == digest:
                progress("embedding", len(texts), len(texts))
                cached: NDArray[np.float32] = saved["vectors"].astype(np.float32)
                return cached
    from modelroute.embedding.minilm import MiniLM

    model = MiniLM(threads=os.cpu_count() or 1)
    out = np.zeros((len(texts), 384), np.float32)
    step = 64
    for start in range(0, len(texts), step):
        out[start:start + step] = model.encode(texts[start:start + step], batch_size=32)
        progress("embedding", min(start + step, len(texts)), len(texts))
    if cache:
        with open(cache, "wb") as fh:
            np.savez_compressed(fh, vectors=out.astype(np.float16), digest=np.array(digest))
    return out


def realise(fitted: fitmod.Fit, plans: int, labels: NDArray[np.int64], keys: NDArray[np.int64], prompts: list[str]) -> NDArray[np.int64]:
    """The plan serving each prompt given its label (:func:`~modelroute.calibrate.fit.label_ids`)
    and first-model key, a mixed cell's split decided by the prompt's hash exactly as the split
    strategy decides it."""
    out = np.minimum(labels, plans - 1)
    own = np.flatnonzero(labels >= plans)
    cells = fitted.layout.cell(labels[own] - plans, keys[own])
    for i, cell in zip(own, cells):
        mix = fitted.mixes[int(cell)]
        out[i] = mix.high if not mix.pure and pick((1.0 - mix.share, mix.share), bucket(prompts[i])) == 1 else mix.low
    return out


def _fit_and_score(ds: datamod.Dataset, vecs: NDArray[np.float32], train: NDArray[np.int64], test: NDArray[np.int64],
                   baseline: str, opts: Options, cascades: bool, progress: Progress,
                   stage: str) -> tuple[fitmod.Fit, list[plansmod.Plan], list[Line]]:
    tr = ds.subset(train)
    plans = plansmod.candidate_plans(tr, baseline, cascades)
    q, k = plansmod.outcome_matrix(tr, plans)
    base = [p.name for p in plans].index(plansmod.single(baseline).name)
    unit = max(float(k[:, base].mean()), 1e-12)
    cond = plansmod.conditioning(tr, plans) if cascades else None
    fitted = fitmod.fit(vecs[train], q, k / unit, base, opts.target, lambda d, t: progress(stage, d, t), cond)
    lines: list[Line] = []
    if len(test):
        te = ds.subset(test)
        tq, tk = plansmod.outcome_matrix(te, plans)
        ids = fitmod.label_ids(fitted.layout, fitted.mixes, len(plans))
        got = fitmod.vote(vecs[train], ids[fitted.assign], vecs[test], len(plans) + fitted.regions)
        name = "embedding router + cascades" if cascades else "embedding router"
        chosen = realise(fitted, len(plans), got, plansmod.answer_keys(te, cond), te.prompts)
        lines = compare(plans, tq, tk, chosen, base, opts.target, q, name)
    return fitted, plans, lines


def calibrate(opts: Options, progress: Progress = _noop) -> Result:
    ds = datamod.load(opts.data)
    baseline = opts.baseline or max(ds.models, key=lambda m: ds.correct[:, ds.column(m)].mean())
    if baseline not in ds.models:
        raise ValueError(f"baseline {baseline!r} is not a model of the dataset")
    prices = policymod.read_prices(opts.prices, ds.models)
    vecs = embed_prompts(ds.prompts, opts.vectors, progress)
    held = datamod.held_out(ds.ids, opts.holdout, opts.salt)
    train, test = np.where(~held)[0], np.where(held)[0]
    stage = "fitting (with cascades)" if opts.cascades else "fitting (embedding alone)"
    fitted, plans, lines = _fit_and_score(ds, vecs, train, test, baseline, opts, opts.cascades, progress, stage)
    alone: list[Line] = []
    if opts.cascades and len(test):
        alone = _fit_and_score(ds, vecs, train, test, baseline, opts, False, progress, "fitting (embedding alone)")[2][:1]
    reported = fitted
    if opts.refit and len(test):  # more prompts fit better: on this data 75% of the file beats 56% by ~6 points of cost
        train = np.arange(len(ds))
        fitted, plans, _ = _fit_and_score(ds, vecs, train, train[:0], baseline, opts, opts.cascades, progress,
                                          "refitting on every prompt")
    region_label = policymod.region_labels(plans, fitted.layout, fitted.mixes)
    labels = [region_label[int(r)] for r in fitted.assign]
    tr = ds.subset(train)
    quality = np.stack([plansmod.outcomes(tr, plansmod.single(m))[0] for m in ds.models], 1).astype(np.float32)
    meta = {"embedder": "local:all-MiniLM-L6-v2", "dimensions": 384, "text": {"minChars": MIN_CHARS, "maxChars": MAX_CHARS},
            "source": os.path.basename(opts.data), "target": opts.target, "baseline": baseline}
    library = Library.build(vecs[train], labels, models=ds.models, quality=quality, cost=tr.cost.astype(np.float32), meta=meta)
    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    library.save(out / policymod.LIBRARY_FILE)
    doc = policymod.policy_document(opts.name, ds.models, prices, baseline, baseline, plans, fitted.layout,
                                     fitted.mixes, opts.base_url, fitmod.K)
    summary = {"target": opts.target, "regions": fitted.regions, "margin": fitted.margin, "fitted_on_prompts": len(train),
               "by_answer": [r for r, c in enumerate(fitted.layout.conditional) if c],
               "out_of_fold": {"quality_vs_baseline": round(fitted.oof_quality, 4), "cost_vs_baseline": round(fitted.oof_cost, 4)},
               "held_out_report_fitted_on_prompts": int((~held).sum()),
               "held_out": {ln.name: {"accuracy": round(ln.accuracy, 4), "quality_vs_baseline": round(ln.quality_ratio, 4),
                                      "cost_vs_baseline": round(ln.cost_ratio, 4)} for ln in lines + alone}}
    path = policymod.write(out, doc, summary)
    return Result(path, lines, alone, fitted, plans, reported, len(train))
