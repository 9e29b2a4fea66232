"""Does a seeded run repeat? Each task trained twice with the same seed and budget, in two processes, and
the test rows' predictions compared exactly; then once more with another seed.

    python bench/reproducible.py --budget 30 --tasks credit_g,abalone,cardiotocography

Each training is its own process (as a user's two runs would be). The first run of a task measures the
costs the plan is built on and remembers them (``~/.cache/mlengineer/costs``, or ``--cache`` here: a fresh
folder by default, so the first run measures); the second reads them back. Prints one line per task and
writes JSON lines to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))


def run_one(task_name: str, budget: float, seed: int, out: Path) -> None:
    """(child process) Train once and save the test predictions and what the run says about itself."""
    import mlengineer
    from accuracy import BENCH, read_task

    task, train, test = read_task(BENCH / task_name)
    model = mlengineer.train(train, task["target"], task=task["task"], time_budget=budget, seed=seed, track=False)
    raw = model.predict_raw(test.drop(columns=[task["target"]]))
    meta = model.metadata
    np.save(out, np.asarray(raw))
    repro = meta["reproducibility"]
    out.with_suffix(".json").write_text(json.dumps({
        "ensemble": {e["model"]: e["weight"] for e in meta["ensemble"]},
        "candidates": [r["model"] for r in meta["leaderboard"]], "train_s": meta["train_seconds"],
        "reproducible": repro.get("reproducible"), "why": repro.get("why"),
        "reused": repro.get("plan", {}).get("measurements_reused")}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--budget", type=float, default=30.0)
    ap.add_argument("--tasks", default="credit_g,abalone,cardiotocography")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache", default=None, help="the measurements' folder (default: a fresh one)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "reproducible.jsonl"))
    ap.add_argument("--run-one", nargs=4, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.run_one:
        name, budget, seed, out = args.run_one
        run_one(name, float(budget), int(seed), Path(out))
        return
    cache = args.cache or tempfile.mkdtemp(prefix="mlengineer-costs-")
    env = {**os.environ, "MLENGINEER_CACHE_DIR": cache, "PYTHONWARNINGS": "ignore"}
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.tasks.split(","):
            runs = []
            for i, seed in enumerate((args.seed, args.seed, args.seed + 1)):
                path = Path(tmp) / f"{name}-{i}.npy"
                subprocess.run([sys.executable, __file__, "--run-one", name, str(args.budget), str(seed), str(path)],
                               check=True, env=env, capture_output=True)
                runs.append((np.load(path), json.loads(path.with_suffix(".json").read_text())))
            (a, ma), (b, mb), (c, _) = runs
            row = {"task": name, "budget_s": args.budget, "identical": bool(np.array_equal(a, b)),
                   "same_ensemble": ma["ensemble"] == mb["ensemble"], "same_candidates": ma["candidates"] == mb["candidates"],
                   "max_abs_diff": float(np.max(np.abs(a - b))), "other_seed_max_abs_diff": float(np.max(np.abs(a - c))),
                   "train_s": [ma["train_s"], mb["train_s"]], "reproducible_flag": [ma["reproducible"], mb["reproducible"]],
                   "why": ma["why"] + mb["why"], "second_reused_measurements": mb["reused"]}
            rows.append(row)
            print(f"{name:20s} identical={row['identical']} ensemble={row['same_ensemble']} "
                  f"candidates={row['same_candidates']} train_s={row['train_s']} why={row['why']}", flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "a") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
