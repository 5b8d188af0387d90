"""Each strategy of issue 4 on the held-out split of routerbench-train, against always gpt-4.

    python scripts/strategy_report.py [--data ../shared/data/routerbench-train.jsonl]

Same split as ``modelroute calibrate`` (hash-based, 25%); everything is fitted on the training
part only, and cascades are scored on recorded answers exactly as the replay provider serves them
(``modelroute.calibrate.plans.outcomes``; tests/calibrate checks the real Router gives the same).

- cascade alone: every prompt through one agreement cascade, for each cascade of the calibration's
  plan list; the line printed is the one with the best training-part trade-off (meets 97% there at
  the least cost, else the most accurate).
- classifier: the recorded data holds no classifier answers, so the classifier is a stand-in that
  answers the prompt's task label (trivial for these three formats), charged as
  mistral-7b-chat's recorded call on the prompt (an upper bound for a one-word answer). Its labels
  are the regions (served by Yi-34B's answer where it gives a letter, as the embedding router's
  are); the cells' plan mixes are fitted like the embedding router's (budget allocation, margin
  chosen by 5x repeated 5-fold cross-validation on the training part).
- embedding router alone and with cascades: ``modelroute calibrate`` as shipped.

``--splits N`` instead re-runs the whole calibration on N other random held-out splits (salts
``split-0`` ...) and prints each split's held-out figures: how much the result moves with the split.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from modelroute.calibrate import data as datamod
from modelroute.calibrate import fit as fitmod
from modelroute.calibrate import plans as plansmod
from modelroute.calibrate.cells import Conditioning, layout
from modelroute.calibrate.report import Line, score, table
from modelroute.calibrate.run import Options, calibrate, realise

BASELINE = "gpt-4-1106-preview"
CLASSIFIER = "mistralai/mistral-7b-chat"
HERE = Path(__file__).resolve().parent
DATA = HERE.parents[1] / "shared" / "data" / "routerbench-train.jsonl"
VECTORS = HERE.parent / "tests" / "calibrate" / "data" / "routerbench-vectors.npz"


def by_label(q: np.ndarray, k: np.ndarray, labels: np.ndarray, base: int, target: float, n: int,
             cond: Conditioning | None) -> fitmod.Fit:
    """Margin by repeated cross-validation, then the cells' mixes fitted on every training row."""
    tq, tk = np.zeros(len(fitmod.MARGINS)), np.zeros(len(fitmod.MARGINS))
    keys = cond.key if cond is not None else np.zeros(len(q), np.int64)
    for folds in fitmod.fold_shuffles(len(q)):
        for f in range(fitmod.FOLDS):
            tr, te = folds != f, folds == f
            lay = layout(labels[tr], n, cond, keys[tr])
            oq, ok = fitmod.margin_totals(q[tr], k[tr], lay.cell(labels[tr], keys[tr]), lay, lay.allowed(q.shape[1], cond),
                                          base, target, lambda ids: ids[labels[te]], q[te], k[te], keys[te])
            tq += oq
            tk += ok
    passing = [j for j in range(len(fitmod.MARGINS)) if tq[j] >= target * q[:, base].sum() * fitmod.REPEATS]
    margin = fitmod.MARGINS[min(passing, key=lambda j: tk[j])] if passing else fitmod.MARGINS[-1]
    lay = layout(labels, n, cond, keys)
    rq, rk = fitmod.cell_totals(q, k, lay.cell(labels, keys), lay, lay.allowed(q.shape[1], cond))
    mixes = fitmod.allocate(rq, rk, (target + margin) * q[:, base].sum())
    return fitmod.Fit(n, margin, labels, lay, mixes, float("nan"), float("nan"))


def classifier_line(name: str, tr: datamod.Dataset, te: datamod.Dataset, cascades: bool, target: float) -> Line:
    tasks = sorted(set(tr.tasks))
    plans = plansmod.candidate_plans(tr, BASELINE, cascades)
    base = [p.name for p in plans].index(plansmod.single(BASELINE).name)
    charge = tr.cost[:, tr.column(CLASSIFIER)][:, None]
    q, k = plansmod.outcome_matrix(tr, plans)
    cond = plansmod.conditioning(tr, plans) if cascades else None
    fitted = by_label(q, k + charge, np.array([tasks.index(t) for t in tr.tasks]), base, target, len(tasks), cond)
    tq, tk = plansmod.outcome_matrix(te, plans)
    tk = tk + te.cost[:, te.column(CLASSIFIER)][:, None]
    labels = fitmod.label_ids(fitted.layout, fitted.mixes, len(plans))[[tasks.index(t) for t in te.tasks]]
    chosen = realise(fitted, len(plans), labels, plansmod.answer_keys(te, cond), te.prompts)
    rows = np.arange(len(te))
    col = te.column(BASELINE)
    return score(name, tq[rows, chosen], tk[rows, chosen], te.correct[:, col], te.cost[:, col])


def cascade_line(tr: datamod.Dataset, te: datamod.Dataset, target: float) -> Line:
    cascades = [p for p in plansmod.candidate_plans(tr, BASELINE, True) if p.is_cascade and p.checkers]
    base_q = tr.correct[:, tr.column(BASELINE)].sum()

    def rank(plan: plansmod.Plan) -> tuple[bool, float]:
        q, k = plansmod.outcomes(tr, plan)
        return (q.sum() < target * base_q, k.sum() if q.sum() >= target * base_q else -q.sum())

    plan = min(cascades, key=rank)
    q, k = plansmod.outcomes(te, plan)
    col = te.column(BASELINE)
    return score(f"cascade alone ({' -> '.join(m.split('/')[-1] for m in plan.models)})", q, k,
                 te.correct[:, col], te.cost[:, col])


def splits(data: str, target: float, count: int) -> None:
    import tempfile

    met, seen = 0, []
    for i in range(count):
        with tempfile.TemporaryDirectory() as out:
            result = calibrate(Options(data, target, out, vectors=str(VECTORS), baseline=BASELINE, salt=f"split-{i}", refit=False))
        combo, alone = result.lines[0], result.alone[0]
        ok = combo.quality_ratio >= 0.97 and combo.cost_ratio <= 0.35
        met += ok
        seen.append((combo.quality_ratio, combo.cost_ratio))
        print(f"split-{i}: combination {combo.quality_ratio:6.1%} at {combo.cost_ratio:6.1%}"
              f"{' (bar met)' if ok else '           '}  alone {alone.quality_ratio:6.1%} at {alone.cost_ratio:6.1%}", flush=True)
    q, k = np.array(seen).T
    print(f"{count} splits: the combination meets the bar on {met}; held-out quality mean {q.mean():.1%} "
          f"(sd {q.std(ddof=1):.1%}), cost mean {k.mean():.1%} (sd {k.std(ddof=1):.1%})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--target", type=float, default=0.97)
    parser.add_argument("--out", default="/tmp/modelroute-strategy-report")
    parser.add_argument("--splits", type=int, default=0, help="re-run on this many other random splits")
    args = parser.parse_args()
    if args.splits:
        splits(args.data, args.target, args.splits)
        return
    ds = datamod.load(args.data)
    held = datamod.held_out(ds.ids, 0.25)
    tr, te = ds.subset(np.where(~held)[0]), ds.subset(np.where(held)[0])
    result = calibrate(Options(args.data, args.target, args.out, vectors=str(VECTORS), baseline=BASELINE, refit=False))
    lines = [result.lines[0], *result.alone, cascade_line(tr, te, args.target),
             classifier_line("classifier (task labels) alone", tr, te, False, args.target),
             classifier_line("classifier (task labels) + cascades", tr, te, True, args.target),
             *result.lines[1:]]
    print(f"held-out split: {len(te)} prompts; fitted on {len(tr)}")
    print(table(lines))


if __name__ == "__main__":
    main()
