"""A whole test set in one batch, in process: the LightGBM members' compiled walk of many rows against
LightGBM's own batch prediction, on tasks of ../shared/bench.

    .venv/bin/python bench/batch_predict.py --budget 60 --tasks poker_hand,letter,covertype_subsample
    .venv/bin/python bench/batch_predict.py --budget 60 --tasks poker_hand --families lightgbm

Each task is trained once (the default search, or ``--families``), saved and loaded back as a bundle, and its
test rows predicted in one call (``model.predict_raw``) five times each way, alternating: with the walk
(``_lgbwalk.compiled_rows``, taken where rows x trees reach ``BATCH_WORK``) and with ``MLENGINEER_TREE_WALK=0``
(LightGBM's own ``predict``). Median seconds of each, the largest difference between their answers, the
LightGBM members' trees. Rows go to bench/results/batch_predict-<time>.jsonl; a Markdown table to stdout.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SUITE = ROOT.parent / "shared" / "bench"
sys.path.insert(0, str(ROOT / "bench"))
REPEATS = 5


def timed(model: Any, X: Any, walk: bool) -> tuple[float, np.ndarray]:
    os.environ["MLENGINEER_TREE_WALK"] = "1" if walk else "0"
    try:
        t0 = time.perf_counter()
        out = model.predict_raw(X)
        return time.perf_counter() - t0, np.asarray(out, dtype=np.float64)
    finally:
        del os.environ["MLENGINEER_TREE_WALK"]


def run_task(folder: Path, budget: float, families: list[str] | None) -> dict[str, Any]:
    import mlengineer
    from accuracy import read_task, score
    from single_row import trees

    task, train, test = read_task(folder)
    target = task["target"]
    X_test = test.drop(columns=[target])
    options: dict[str, Any] = {"families": families} if families else {}
    with tempfile.TemporaryDirectory() as d:
        mlengineer.train(train, target, task=task["task"], time_budget=budget, seed=0, track=False,
                         out=Path(d) / "m", **options)
        model = mlengineer.load(Path(d) / "m")
        timed(model, X_test, True)  # the walk compiled (or read from numba's cache), the data paths warm
        seconds: dict[bool, list[float]] = {True: [], False: []}
        answers: dict[bool, np.ndarray] = {}
        for _ in range(REPEATS):
            for walk in (True, False):
                s, answers[walk] = timed(model, X_test, walk)
                seconds[walk].append(s)
        classes = list(model.classes) if model.task.is_classification else []
        return {"task": task["name"], "rows": len(X_test), "trees": trees(model),
                "members": [e["model"] for e in model.metadata.get("ensemble", [])],
                "test": score(task, test[target], answers[True], classes), "metric": task["metric"],
                "walk_s": round(float(np.median(seconds[True])), 3),
                "lightgbm_s": round(float(np.median(seconds[False])), 3),
                "max_abs_diff": float(np.max(np.abs(answers[True] - answers[False])))}


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| task | test rows | LightGBM trees | members | LightGBM's batch s | the walk s | speed-up | max difference |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['task']} | {r['error']} | | | | | | |")
            continue
        lines.append(f"| {r['task']} | {r['rows']:,} | {r['trees']:,} | {', '.join(r['members'])} | {r['lightgbm_s']} | "
                     f"{r['walk_s']} | {r['lightgbm_s'] / max(r['walk_s'], 1e-9):.1f}x | {r['max_abs_diff']:.1e} |")
    return "\n".join(lines)


def main() -> None:
    from single_row import task_row

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--budget", type=float, default=60.0)
    ap.add_argument("--tasks", default="poker_hand,letter,covertype_subsample,adult,higgs_subsample")
    ap.add_argument("--families", default="", help="comma-separated families (default: the whole search)")
    args = ap.parse_args()
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    out = ROOT / "bench" / "results" / f"batch_predict-{time.strftime('%Y%m%d-%H%M%S')}.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    families = [f for f in args.families.split(",") if f] or None
    rows = []
    for name in [t for t in args.tasks.split(",") if t]:
        rows.append(task_row(partial(run_task, SUITE / name, args.budget, families), out, task=name))
    print(table(rows))


if __name__ == "__main__":
    main()
