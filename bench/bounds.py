"""A regression ensemble's line-following members kept near its trees (``training/ensemble.py``'s ``Bounds``):
on each regression task of ../shared/bench, one training run, and its test score as the bundle answers (with the
bounds it chose, if any) and with the bounds taken off, beside the out-of-fold losses it chose them on.

    python bench/bounds.py --budget 60                      # every regression task, seed 0
    python bench/bounds.py --tasks house_prices --seeds 0,1,2 --out bench/results/bounds-house

Each run is its own process (``bench/accuracy.py --run-one``'s way: a fresh interpreter per training run).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from accuracy import BENCH, ROOT, read_task, score  # noqa: E402


def run_one(name: str, budget: float, seed: int) -> dict[str, Any]:
    import mlengineer

    task, train, test = read_task(BENCH / name)
    target = task["target"]
    model = mlengineer.train(train, target, task=task["task"], time_budget=budget, seed=seed, track=False)
    rows, truth = test.drop(columns=[target]), test[target]
    params = model.metadata["leaderboard"][0]["params"]
    bounds = model.predictor.bounds
    kept = model.predict_raw(rows)
    model.predictor.bounds = None
    plain = model.predict_raw(rows)
    model.predictor.bounds = bounds
    return {"task": name, "seed": seed, "metric": task["metric"], "test": score(task, truth, kept, model.classes),
            "test_without_bounds": score(task, truth, plain, model.classes), "bounds": params.get("bounds"),
            "out_of_fold": params.get("bounds_tried") or {}, "rows_changed": int(np.sum(kept != plain)),
            "members": {n: round(w, 3) for n, w in params["weights"].items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budget", type=float, default=60.0)
    ap.add_argument("--tasks", default="all", help="comma-separated regression tasks, or all")
    ap.add_argument("--seeds", default="0", help="comma-separated seeds")
    ap.add_argument("--out", default=None, help="results path without suffix (.jsonl and .md are written)")
    ap.add_argument("--run-one", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.run_one:
        name, seed = a.run_one.split(":")
        print("RESULT " + json.dumps(run_one(name, a.budget, int(seed))), flush=True)
        return
    try:
        seeds = [int(s) for s in a.seeds.split(",")]
    except ValueError:
        sys.exit(f"error: --seeds {a.seeds!r}: give whole numbers separated by commas, e.g. 0,1,2")
    regression = sorted(p.name for p in BENCH.iterdir() if (p / "task.json").exists()
                        and json.loads((p / "task.json").read_text())["task"] == "regression")
    names = regression if a.tasks == "all" else a.tasks.split(",")
    unknown = [n for n in names if n not in regression]
    if unknown:
        sys.exit(f"error: --tasks: {unknown[0]!r} is not a regression task of {BENCH}: choose from {', '.join(regression)}")
    results = []
    for name in names:
        for seed in seeds:
            out = subprocess.run([sys.executable, __file__, "--budget", str(a.budget), "--run-one", f"{name}:{seed}"],
                                 capture_output=True, text=True, cwd=ROOT)
            line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
            if line is None:
                print(f"{name} seed {seed}: failed\n{out.stderr[-2000:]}", file=sys.stderr)
                continue
            r = json.loads(line[len("RESULT "):])
            results.append(r)
            print(f"{name:28s} seed {seed}  {r['test']:.6g} (without bounds {r['test_without_bounds']:.6g})  "
                  f"chose {'none' if r['bounds'] is None else r['bounds']['margin']}", flush=True)
    table = _table(results)
    print(table)
    if a.out:
        Path(a.out + ".jsonl").write_text("".join(json.dumps(r) + "\n" for r in results))
        Path(a.out + ".md").write_text(table + "\n")


def _table(results: list[dict[str, Any]]) -> str:
    lines = ["| task | seed | members | out of fold: none / margins 4, 2, 1, 0.5 | chosen | test rows changed | test | without bounds |",
             "|---|---|---|---|---|---|---|---|"]
    for r in results:
        oof = r["out_of_fold"]
        tried = " / ".join(f"{oof[k]:.6g}" for k in ("none", "4.0", "2.0", "1.0", "0.5") if k in oof) or "no mix"
        chosen = "none" if r["bounds"] is None else f"{r['bounds']['margin']:.4g} ({', '.join(r['bounds']['capped'])})"
        lines.append(f"| {r['task']} | {r['seed']} | {', '.join(r['members'])} | {tried} | {chosen} | "
                     f"{r['rows_changed']} | {r['test']:.6g} | {r['test_without_bounds']:.6g} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
