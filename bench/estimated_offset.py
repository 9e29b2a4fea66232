"""How often does the performance alarm's comparison of an estimate with the reference's estimate (before
outcomes arrive: ``change.estimated_change``) call a model worse, model by model, on batches drawn like
training, and how often on batches whose inputs moved to where the model errs more? The reference's estimate
(the estimator applied to the reference rows, which it was also fitted on) is the same for every batch of a
model, so how far it is from the estimator's own level is one offset all its batches share.

Models as in ``bench/reference_offset.py`` (the same rule, data seeds, budget and fresh pools), and a third
task, ``spread``: the regression rule with its noise growing with ``x4`` (SD ``5 (0.6 + 0.5 |x4|)``, 5 on
average), so that a model's errors depend on an input the estimator can read. Each model's batches come from
its own pool of 60,000 rows it never saw; no outcome of a batch is used by the test:

- null batches: ``--batches`` batches of each size of ``--sizes``, drawn like training;
- shifted batches: ``--shifted`` batches of each size with a share (half, all) of their rows drawn from a
  region where the model errs more: rows near the class boundary (``|lin| < 0.5``: ROC AUC about 0.60 there,
  0.82 overall) for the classifiers, rows of large noise (``|x4| > 1.5``: RMSE about 55% higher) for
  ``spread``, the ends of the rule (``|lin| > 3``, 2% of rows, where the trees run out of training rows: RMSE
  11-32% higher) for the plain regressors.

Each batch's estimate (``LossModel.estimate`` of the reference's loss model, or CBPE on the calibrated
probabilities, as the monitor computes them) is compared with the reference's (``Reference.estimated``) by
``estimated_change`` on the model's headline metric; a batch alarms as the monitor's comparison does: worse
beyond chance (``bound`` above 0) and by more than the tolerance (5% of an error, 1 point of a score); beyond
chance alone is counted too. The model's levels: its estimator and its realised metric on the 60,000 rows.
Each batch is judged twice: against the reference's estimate as the monitor takes it (``rule``), and against
the same estimator's value from cross-fitted expected errors of the reference rows (``crossed``, regressors
only: the reference's estimate if it did not read the loss model's fit to those very rows; for classifiers
the same as ``rule``).

    .venv/bin/python bench/estimated_offset.py [--tasks regression,spread,binary] [--models 8] [--batches 300]
        [--sizes 50,100,200] [--shifted 100] [--work /tmp/estimated_offset]
        [--out bench/results/estimated_offset.jsonl]

The JSONL holds one line per model, batch size, kind and strength: the counts, the lowest p-value, and the
batches' mean realised and estimated change.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from reference_offset import POOL, draw, parser, run  # noqa: E402
from reference_offset import train as reference_train  # noqa: E402

SHIFTS = (0.5, 1.0)  # the share of a shifted batch's rows drawn from the region


def rows_of(n: int, seed: int, task: str) -> pd.DataFrame:
    """Rows of the task's rule: ``reference_offset.draw``'s, or for ``spread`` its regression with the same
    noise scaled by ``0.6 + 0.5 |x4|``."""
    frame = draw(n, seed, "binary" if task == "binary" else "regression")
    if task == "spread":
        lin = 10 * (frame.x1 + 0.5 * frame.x2 - 0.5 * frame.x3 + 0.7 * (frame.c == "a"))
        frame["y"] = lin + (frame.y - lin) * (0.6 + 0.5 * frame.x4.abs())
    return frame


def region(frame: pd.DataFrame, task: str) -> np.ndarray:
    """Where the task's model errs more (the rows a shifted batch is drawn from)."""
    lin = frame.x1 + 0.5 * frame.x2 - 0.5 * frame.x3 + 0.7 * (frame.c == "a")
    if task == "binary":
        return (lin.abs() < 0.5).to_numpy()
    return (frame.x4.abs() > 1.5 if task == "spread" else lin.abs() > 3).to_numpy()


def train(task: str, seed: int, work: Path, budget: float) -> Any:
    """``reference_offset.train``, of this script's rows (``rows_of``)."""
    return reference_train(task, seed, work, budget, rows_of)


def judge(now: dict[str, Any], befores: dict[str, dict[str, Any]], higher: bool) -> dict[str, Any]:
    """Each reference estimate's verdict on one batch: beyond chance, and the monitor's alarm (beyond the
    tolerance too)."""
    from mlengineer.monitoring.change import estimated_change

    out = {}
    for rule, before in befores.items():
        test = estimated_change(now, before, higher=higher)
        worse = -test["value"] if higher else test["value"]
        tolerance = 0.01 if higher else 0.05 * abs(before["value"])
        out[f"{rule}_beyond"] = bool(test["bound"] > 0)
        out[f"{rule}_alarm"] = bool(test["bound"] > 0 and worse > tolerance)
        out[f"{rule}_p"] = test["p_value"]
    return out


def cross_fitted(ref: Any, name: str) -> dict[str, Any]:
    """The reference's estimate from the loss model's cross-fitted expected errors of the reference rows (each
    row's from a model that did not see it, as ``LossModel.fit`` computes them for its moments), in place of
    the final model's in-sample ones."""
    from sklearn.model_selection import KFold

    loss = ref.loss_model()
    F = np.column_stack([ref.encoded, ref.raw]).astype(np.float32)
    err = np.abs(ref.y.astype(np.float64) - ref.raw)
    oof = np.empty(len(err))
    for fit_rows, test_rows in KFold(3, shuffle=True, random_state=loss.seed).split(F):
        oof[test_rows] = loss._regressor().fit(F[fit_rows], err[fit_rows]).predict(F[test_rows])
    return dict(loss.estimate(name, np.maximum(oof, loss.floor), ref.raw).to_dict())


def one_model(task: str, seed: int, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every batch of one model: null batches, then shifted ones."""
    from mlengineer.metrics import get_metric
    from mlengineer.monitoring.estimate import estimable, estimate_classifier, realised
    from mlengineer.monitoring.reference import reference_of

    model = train(task, seed, args.work, args.time_budget)
    ref = reference_of(model)
    name = estimable(ref.task, model.metadata.get("metric"))[0]
    higher = get_metric(name, ref.task).greater_is_better
    before = ref.estimated[name].to_dict()
    befores = {"rule": before, "crossed": cross_fitted(ref, name) if ref.task == "regression" else before}
    pool = rows_of(POOL, 10_000 + seed, task)
    feats = pool.drop(columns="y")
    raw = model.predict_raw(feats)
    y = pool["y"].to_numpy(np.float64 if ref.task == "regression" else np.int64)
    if ref.task == "regression":
        loss = ref.loss_model()
        assert loss is not None
        m = loss.expected_error(np.asarray(model.encode(feats[model.feature_names])), raw)
        d = None

        def estimate(r: np.ndarray) -> dict[str, Any]:
            return loss.estimate(name, m[r], raw[r], seed=0).to_dict()
    else:
        d = ref.decided(raw)
        cbpe = ref.for_estimate(raw, d)

        def estimate(r: np.ndarray) -> dict[str, Any]:
            return estimate_classifier(name, cbpe[r], d[r], seed=0).to_dict()

    def real(r: np.ndarray) -> float:
        return realised(name, y[r], raw[r], d=None if d is None else d[r]).value

    sign = -1 if higher else 1
    every = np.arange(POOL)
    level, est_level = real(every), estimate(every)["value"]
    info = {"task": task, "model": seed, "metric": name, "reference_rows": len(ref.y), "level": level,
            "estimated_level": est_level, "reference_estimated": before["value"],
            "reference": ref.performance[name].value,
            "reference_estimate_better_by": sign * (est_level - before["value"]) / abs(est_level),
            "crossed_better_by": sign * (est_level - befores["crossed"]["value"]) / abs(est_level)}
    inside, outside = np.flatnonzero(region(pool, task)), np.flatnonzero(~region(pool, task))
    rows = []
    for n in args.sizes:
        for k in range(args.batches + args.shifted * len(SHIFTS)):
            kind, strength = ("null", 0.0) if k < args.batches else ("shifted", SHIFTS[(k - args.batches) // args.shifted])
            if kind == "null":
                at = (k * n) % (POOL - n)
                take = np.arange(at, at + n)
            else:
                r = np.random.default_rng(100_000 * seed + 1_000 * n + k)
                many = round(strength * n)
                take = np.r_[r.choice(inside, many, replace=many > len(inside)), r.choice(outside, n - many, replace=False)]
            now = estimate(take)
            rows.append({**info, "rows": n, "kind": kind, "strength": strength, **judge(now, befores, higher),
                         "estimated_change": now["value"] - before["value"], "realised_change": real(take) - level})
    return rows


def counts(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One model's batches counted by size, kind and strength."""
    frame = pd.DataFrame(rows)
    keys = ["task", "model", "metric", "reference_rows", "level", "estimated_level", "reference_estimated",
            "reference", "reference_estimate_better_by", "crossed_better_by", "rows", "kind", "strength"]
    group = frame.groupby(keys, sort=False)
    out = group[["rule_alarm", "rule_beyond", "crossed_alarm", "crossed_beyond"]].sum()
    out[["mean_estimated_change", "mean_realised_change"]] = group[["estimated_change", "realised_change"]].mean()
    out[["rule_min_p", "crossed_min_p"]] = group[["rule_p", "crossed_p"]].min()  # how near chance came to alarming
    out["batches"] = group.size()
    records = out.reset_index().to_dict("records")
    return [{k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()} for r in records]


def table(summary: list[dict[str, Any]]) -> None:
    """Alarms per task and size (the monitor's reference estimate, then the cross-fitted one): null batches
    overall and per model, shifted batches by strength."""
    frame = pd.DataFrame(summary)
    for (task, n), part in frame.groupby(["task", "rows"], sort=False):
        null = part[part.kind == "null"].sort_values("model")
        print(f"{task} {n} rows, null: alarms {null.rule_alarm.sum()} / crossed {null.crossed_alarm.sum()} of "
              f"{null.batches.sum()} (beyond chance {null.rule_beyond.sum()} / {null.crossed_beyond.sum()}); per "
              f"model {list(null.rule_alarm)} / {list(null.crossed_alarm)}; reference's estimate better than the "
              f"estimator's level by {[round(100 * v, 1) for v in null.reference_estimate_better_by]}% / "
              f"{[round(100 * v, 1) for v in null.crossed_better_by]}%; lowest p-value {null.rule_min_p.min():.3f} / "
              f"{null.crossed_min_p.min():.3f}")
        for strength, shifted in part[part.kind == "shifted"].groupby("strength"):
            print(f"    shifted {strength}: alarms {shifted.rule_alarm.sum()} / {shifted.crossed_alarm.sum()} of "
                  f"{shifted.batches.sum()} (beyond {shifted.rule_beyond.sum()} / {shifted.crossed_beyond.sum()}); "
                  f"mean change realised {shifted.mean_realised_change.mean():.4f}, estimated "
                  f"{shifted.mean_estimated_change.mean():.4f}")


def main() -> None:
    p = parser(__doc__ or "", tasks="regression,spread,binary", models=8, first_model=0, work="/tmp/estimated_offset",
               out="bench/results/estimated_offset.jsonl")
    p.add_argument("--shifted", type=int, default=100)
    run(p.parse_args(), one_model, counts, table,
        lambda r: f"{r['metric']} reference's estimate better than the estimator's level by "
                  f"{100 * r['reference_estimate_better_by']:.1f}% ({r['reference_rows']} rows)")


if __name__ == "__main__":
    main()
