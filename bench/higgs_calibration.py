"""Calibration on higgs_subsample: does a calibrator fitted on rows held out from training lower the test
rows' expected calibration error, and where is the noise floor of that estimate on 1,500 rows? (issue 6;
the findings are in bench/RESULTS.md)

    .venv/bin/python bench/higgs_calibration.py [--seed 0]

Trains on 70% of train.csv (20 s), keeps the other 30% (1,800 rows) for calibration, fits Platt and isotonic
calibrators on 900 and on all 1,800 of them, and prints the test ECE of each; then the ECE that a perfectly
calibrated model reads on the same 1,500 test rows (labels drawn from its own probabilities, 100 draws).

    .venv/bin/python bench/higgs_calibration.py --pooled [--ensemble-metric roc_auc]

Pooled instead: 5 folds over all 7,500 rows (train and test together), each trained for 20 s on the other
6,000, and the error measured once over the 7,500 out-of-fold predictions, where chance alone reads about
0.012 rather than 0.027: what the pipeline's calibration is, not what one split of 1,500 rows shows. With
``--ensemble-metric`` the ensemble's weights are chosen by that metric (default: log loss for ROC AUC).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from uncertainty import BENCH, read  # noqa: E402


def pooled(ensemble_metric: str | None) -> None:
    import pandas as pd
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    import mlengineer
    from mlengineer.evaluation.calibration import expected_calibration_error

    task = "higgs_subsample"
    target = json.loads((BENCH / task / "task.json").read_text())["target"]
    df = pd.concat([read(task, "train"), read(task, "test")], ignore_index=True)
    y = np.zeros(len(df), dtype=int)
    p1 = np.zeros(len(df))
    folds = StratifiedKFold(5, shuffle=True, random_state=0).split(df, df[target])
    for k, (fit, out) in enumerate(folds):
        model = mlengineer.train(df.iloc[fit], target, time_budget=20, track=False, seed=k,
                                 ensemble_metric=ensemble_metric)
        part = df.iloc[out]
        y[out] = model.task.encode(part[target])
        p1[out] = model.predictor.predict_raw(model.encode(part.drop(columns=[target])))[:, 1]
        weights = model.metadata["leaderboard"][0]["params"]["weights"]
        print(f"fold {k}: ECE {expected_calibration_error(y[out], np.c_[1 - p1[out], p1[out]]):.4f}, "
              f"ROC AUC {roc_auc_score(y[out], p1[out]):.4f}, ensemble {weights}", flush=True)
    print(f"pooled over {len(y):,} rows: ECE {expected_calibration_error(y, np.c_[1 - p1, p1]):.4f}, "
          f"ROC AUC {roc_auc_score(y, p1):.4f}")


def main() -> None:
    from sklearn.model_selection import train_test_split

    import mlengineer
    from mlengineer.evaluation.calibration import expected_calibration_error, fit_calibrator

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--pooled", action="store_true", help="5 folds over all 7,500 rows, one pooled error")
    ap.add_argument("--ensemble-metric", default=None, help="the metric the ensemble's weights are chosen by")
    a = ap.parse_args()
    if a.pooled:
        return pooled(a.ensemble_metric)
    seed = a.seed
    task = "higgs_subsample"
    target = json.loads((BENCH / task / "task.json").read_text())["target"]
    train, test = read(task, "train"), read(task, "test")
    fit, cal = train_test_split(train, test_size=0.30, stratify=train[target], random_state=seed)
    model = mlengineer.train(fit, target, time_budget=20, track=False, seed=seed)

    def raw(df):  # type: ignore[no-untyped-def]
        return model.predictor.predict_raw(model.encode(df.drop(columns=[target])))

    y_cal, p_cal = model.task.encode(cal[target]), raw(cal)
    y_test, p_test = model.task.encode(test[target]), raw(test)
    print(f"ECE without calibration: test rows {expected_calibration_error(y_test, p_test):.4f}, "
          f"calibration rows {expected_calibration_error(y_cal, p_cal):.4f}")
    for n in (900, len(y_cal)):
        for method in ("platt", "isotonic"):
            c = fit_calibrator(y_cal[:n], p_cal[:n], method=method)
            print(f"{method:8s} fitted on {n:5d} rows: test ECE {expected_calibration_error(y_test, c.transform(p_test)):.4f}")
    q = fit_calibrator(y_cal, p_cal, method="platt").transform(p_test)[:, 1]
    rng = np.random.default_rng(seed)
    sims = [expected_calibration_error((rng.random(len(q)) < q).astype(int), np.c_[1 - q, q]) for _ in range(100)]
    print(f"a perfectly calibrated model on these {len(q)} test rows reads ECE {np.mean(sims):.4f} on average "
          f"(90th percentile {np.quantile(sims, 0.9):.4f})")


if __name__ == "__main__":
    main()
