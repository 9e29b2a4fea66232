"""Are mlengineer's ranges, sets and probabilities honest on data it never saw?

For each task of the shared benchmark suite (../shared/bench), train at a modest time budget on train.csv.gz
and measure on test.csv.gz:

- regression: how often the 90% conformal interval holds the true value, and its width; beside it the
  constant-width interval (one error quantile for every row) for comparison, and both on the 10% of rows
  with the highest predictions, where a skewed target's errors are largest;
- classification: how often the 90% prediction set holds the true label, and its average size;
- calibration: expected calibration error before and after the calibration fitted at training on the
  validation rows (the sweep estimator, and 15 equal-width bins beside it; multiclass on the top class's
  confidence); for binary tasks also the calibration step with its rows kept apart from training (train
  on 85% of train.csv, ``recalibrate`` on the other 15%), which is what the pass/fail check uses: the
  validation rows' models are weaker than the final ones refit on all rows, so a calibrator learned on
  them can over-correct the final model.

    .venv/bin/python bench/uncertainty.py --time-budget 20 [--tasks abalone,adult] [--out bench/results/uncertainty.jsonl]
        [--calibration-fraction 0.1]

``--calibration-fraction`` trains the automatic path with that share of train.csv kept apart from every
fit (the calibrator and the conformal scores then come from the final model's own predictions).

Prints a Markdown table (for bench/RESULTS.md) and writes one JSON line per task.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
BENCH = (HERE.parent.parent / "shared" / "bench") if (HERE.parent.parent / "shared" / "bench").is_dir() \
    else HERE.parent / ".." / "shared" / "bench"
COVERAGE = 0.9


def read(task: str, part: str) -> pd.DataFrame:
    path = BENCH / task / f"{part}.csv.gz"
    if task == "house_prices":  # "NA" is a category there (no pool, no garage), not a missing value
        return pd.read_csv(path, keep_default_na=False, na_values=[""])
    return pd.read_csv(path)


def run_task(task: str, budget: float, seed: int, calibration_fraction: float = 0.0) -> dict:
    import mlengineer
    from mlengineer.evaluation.calibration import expected_calibration_error
    from mlengineer.evaluation.intervals import conformal_quantile

    spec = json.loads((BENCH / task / "task.json").read_text())
    target = spec["target"]
    train, test = read(task, "train"), read(task, "test")
    start = time.perf_counter()
    model = mlengineer.train(train, target, time_budget=budget, task=spec["task"], track=False, seed=seed,
                             calibration_fraction=calibration_fraction)
    fit_s = time.perf_counter() - start
    test = test.loc[test[target].notna()]
    y = model.task.encode(test[target])
    X = model.encode(test.drop(columns=[target]))
    uncalibrated = model.predictor.predict_raw(X)
    row: dict = {"task": task, "kind": spec["task"], "n_test": len(test), "budget_s": budget, "fit_s": round(fit_s, 1),
                 "calibration_rows": int(len(model.validation.get("y", []))),
                 "uncertainty_and_explain_s": model.metadata["timings"].get("uncertainty_and_explain_s")}
    if spec["task"] == "regression":
        pred = uncalibrated
        lower, upper = model.prediction_interval(pred, COVERAGE)
        inside = (y >= lower) & (y <= upper)
        q = conformal_quantile(np.abs(model.validation["y"] - model.validation["pred"]), COVERAGE)
        const_inside = np.abs(y - pred) <= q
        top = pred >= np.quantile(pred, 0.9)
        row.update(coverage=float(inside.mean()), width=float(np.mean(upper - lower)),
                   const_coverage=float(const_inside.mean()), const_width=float(2 * q),
                   top_coverage=float(inside[top].mean()), const_top_coverage=float(const_inside[top].mean()),
                   rmse=float(np.sqrt(np.mean((y - pred) ** 2))))
    else:
        cal = model.extras.get("calibrator")
        proba = cal.transform(uncalibrated) if cal is not None else uncalibrated
        member = model.extras["conformal"].sets(proba, COVERAGE)
        row.update(heldout_calibration(train, test, target, budget, seed, spec["task"]))
        row.update(coverage=float(member[np.arange(len(y)), y].mean()), set_size=float(member.sum(axis=1).mean()),
                   calibration=cal.method if cal is not None else "none",
                   ece_before=expected_calibration_error(y, uncalibrated),
                   ece_after=expected_calibration_error(y, proba),
                   ece15_before=expected_calibration_error(y, uncalibrated, bins=15),
                   ece15_after=expected_calibration_error(y, proba, bins=15))
    return row


def heldout_calibration(train: pd.DataFrame, test: pd.DataFrame, target: str, budget: float, seed: int,
                        kind: str) -> dict:
    """The calibration step with its rows kept apart from training: train on 85% of train.csv, calibrate
    probabilities and conformal sets on the other 15% (``mlengineer calibrate --data``), measure on the
    test rows."""
    from sklearn.model_selection import train_test_split

    import mlengineer
    from mlengineer.evaluation.calibration import expected_calibration_error
    from mlengineer.evaluation.uncertainty import recalibrate

    counts = train[target].value_counts()
    stratify = train[target] if counts.min() >= 2 else None  # a class seen once cannot be on both sides
    fit, cal = train_test_split(train, test_size=0.15, stratify=stratify, random_state=seed)
    cal = cal.loc[cal[target].isin(set(fit[target]))]
    model = mlengineer.train(fit, target, time_budget=budget, task=kind, track=False, seed=seed)
    summary = recalibrate(model, cal)
    y = model.task.encode(test[target])
    raw = model.predictor.predict_raw(model.encode(test.drop(columns=[target])))
    cal_fn = model.extras.get("calibrator")
    after = cal_fn.transform(raw) if cal_fn is not None else raw
    member = model.extras["conformal"].sets(after, COVERAGE)
    return {"heldout_rows": int(len(cal)), "heldout_method": summary["method"],
            "heldout_ece_before": expected_calibration_error(y, raw),
            "heldout_ece_after": expected_calibration_error(y, after),
            "heldout_coverage": float(member[np.arange(len(y)), y].mean()),
            "heldout_set_size": float(member.sum(axis=1).mean())}


def passes(r: dict) -> bool:
    small = r["n_test"] < 1000
    if r["kind"] == "regression":
        lo, hi = (0.85, 0.95) if small else (0.87, 0.93)
        return lo <= r["coverage"] <= hi
    # classification is checked on the step the issue describes: calibration rows kept apart from training
    ok = r["heldout_coverage"] >= (0.85 if small else 0.88)
    if r["kind"] == "binary":
        before, after = r["heldout_ece_before"], r["heldout_ece_after"]
        ok = ok and (after <= 0.03 if not small else after <= before + 1e-12)
    return ok


def table(rows: list[dict]) -> str:
    lines = ["| task | kind | test rows | 90% coverage | width or set size | constant-width coverage / width | "
             "top-10% coverage (adaptive / constant) | ECE before -> after, calibrated on validation rows (method) | "
             "ECE-15 before -> after | held-out calibration: set coverage, size | held-out calibration: ECE before "
             "-> after (method, rows) | pass |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['task']} | {r.get('kind', '')} | | fails: {r['error'][:80]} | | | | | | | | no |")
            continue
        if r["kind"] == "regression":
            size = f"{r['width']:.4g}"
            const = f"{r['const_coverage']:.1%} / {r['const_width']:.4g}"
            top = f"{r['top_coverage']:.1%} / {r['const_top_coverage']:.1%}"
            ece = ece15 = held = hset = ""
        else:
            size = f"{r['set_size']:.2f} labels"
            const = top = ""
            ece = f"{r['ece_before']:.4f} -> {r['ece_after']:.4f} ({r['calibration']})"
            ece15 = f"{r['ece15_before']:.4f} -> {r['ece15_after']:.4f}"
            hset = f"{r['heldout_coverage']:.1%}, {r['heldout_set_size']:.2f}"
            held = (f"{r['heldout_ece_before']:.4f} -> {r['heldout_ece_after']:.4f} ({r['heldout_method']}, "
                    f"{r['heldout_rows']})")
        lines.append(f"| {r['task']} | {r['kind']} | {r['n_test']} | {r['coverage']:.1%} | {size} | {const} | {top} | "
                     f"{ece} | {ece15} | {hset} | {held} | {'yes' if passes(r) else 'NO'} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--time-budget", type=float, default=20.0)
    ap.add_argument("--tasks", default="", help="comma-separated task names (default: all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--calibration-fraction", type=float, default=0.0,
                    help="share of rows the automatic path keeps apart from every fit (default 0: none)")
    ap.add_argument("--out", default=str(HERE / "results" / "uncertainty.jsonl"))
    args = ap.parse_args(argv)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    import warnings

    warnings.filterwarnings("ignore")
    tasks = [t for t in args.tasks.split(",") if t] or list(pd.read_csv(BENCH / "INDEX.csv")["name"])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    with out.open("w") as fh:
        for task in tasks:
            try:
                r = run_task(task, args.time_budget, args.seed, args.calibration_fraction)
            except Exception as e:  # one failing task must not hide the others' results
                r = {"task": task, "error": f"{type(e).__name__}: {e}"}
            rows.append(r)
            fh.write(json.dumps(r) + "\n")
            fh.flush()
            print(json.dumps(r), file=sys.stderr, flush=True)
    print(table(rows))
    return 0 if all("error" not in r and passes(r) for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
