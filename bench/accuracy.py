"""Accuracy at a fixed time budget: mlengineer against FLAML and AutoGluon on the shared benchmark tasks.

    python bench/accuracy.py --budget 60                       # every task, mlengineer only
    python bench/accuracy.py --budget 30 --tasks adult,car --peers
    python bench/accuracy.py --budget 60 --peers --out bench/results/accuracy-60s
    MLENGINEER_CACHE_DIR=/tmp/c python bench/accuracy.py --tasks car      # measures car's costs into /tmp/c
    python bench/accuracy.py --tasks car --costs-from /tmp/c               # then: before and after a change,
                                                                           # each from a copy of those costs
    python bench/accuracy.py --tasks vehicle --peers --seeds 0,1,2         # three runs each: means and spread

Every run is its own process (the peers through ../shared/peers/run_peer.py with their own interpreters),
one after another, and scored exactly as ../shared/bench/README.md says. Results go to a JSONL file (one
line per system and task) and a markdown table beside it: per task each system's metric, rank, fit time,
predict time and single-row latency; then mean ranks, wins and losses against each peer, budget overruns.
With several seeds (``--seeds``) every system runs once per seed and each cell is the mean of its runs with
their range: a first run's score moves with where the real clock stopped its search (letter 0.065-0.074 on one
code), so a gap smaller than the ranges is not a gap.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("MLENGINEER_SHARED", ROOT.parent / "shared"))
BENCH = SHARED / "bench"
PEER_SCRIPT = SHARED / "peers" / "run_peer.py"
PEER_HOME = Path(os.environ.get("MLENGINEER_PEERS", Path.home() / ".cache" / "mlengineer-peers"))
PEERS = {"flaml": PEER_HOME / "flaml" / "bin" / "python", "autogluon": PEER_HOME / "autogluon" / "bin" / "python",
         # AutoGluon's best_quality preset (bagged and stacked), the stronger anchor: the same venv
         "autogluon-best": PEER_HOME / "autogluon" / "bin" / "python"}
HIGHER_IS_BETTER = {"roc_auc": True, "log_loss": False, "rmse": False}
#: issue 16's goal: the most a result may trail the best peer, relative, per metric (1% AUC, 5% log loss and
#: RMSE; its 3% for RMSE is the aim against best_quality at 600 s, a different anchor)
GOAL_GAP = {"roc_auc": 0.01, "log_loss": 0.05, "rmse": 0.05}


# -- one mlengineer run (a child process runs this) ---------------------------------------------------------

def read_task(folder: Path) -> tuple[dict[str, Any], Any, Any]:
    import pandas as pd

    task = json.loads((folder / "task.json").read_text())
    # house_prices: empty fields are missing, the literal NA is a category ("no pool")
    kw: dict[str, Any] = {"keep_default_na": False, "na_values": [""]} if task["name"] == "house_prices" else {}
    return task, pd.read_csv(folder / "train.csv.gz", **kw), pd.read_csv(folder / "test.csv.gz", **kw)


def score(task: dict[str, Any], y_true: Any, raw: np.ndarray, classes: list[Any]) -> float:
    from sklearn.metrics import log_loss, mean_squared_error, roc_auc_score

    if task["task"] == "regression":
        return float(np.sqrt(mean_squared_error(y_true, raw)))
    proba = np.clip(np.asarray(raw, dtype=float), 1e-15, 1)
    if task["task"] == "binary":
        return float(roc_auc_score(np.asarray(y_true) == classes[1], proba[:, 1]))
    return float(log_loss(y_true, proba / proba.sum(axis=1, keepdims=True), labels=classes))


def run_mlengineer(folder: Path, budget: float, seed: int, options: dict[str, Any]) -> dict[str, Any]:
    task, train, test = read_task(folder)
    target = task["target"]
    X_test, y_test = test.drop(columns=[target]), test[target]
    t0 = time.perf_counter()
    import mlengineer  # imported inside the timing, as run_peer.py imports the peers

    model = mlengineer.train(train, target, task=task["task"], time_budget=budget, seed=seed, track=False,
                             **options)
    fit_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    raw = model.predict_raw(X_test)
    predict_s = time.perf_counter() - t1
    lat = []
    for i in range(min(100, len(X_test))):
        row = X_test.iloc[[i]]
        s = time.perf_counter()
        model.predict_raw(row)
        lat.append(time.perf_counter() - s)
    meta = model.metadata
    ensemble = [r for r in meta["leaderboard"] if r["model"] == "ensemble"]
    plan = meta.get("reproducibility", {}).get("plan", {})  # where a first run stopped by the real clock
    calibrator = model.extras.get("calibrator")
    calibration = {"method": "none"}
    if calibrator is not None:  # the members' own probabilities scored as well: what the calibrator changed
        fitted = {k: v for k, v in vars(calibrator).items() if isinstance(v, float)}
        calibration = {"method": calibrator.method, **fitted,
                       "value_uncalibrated": score(task, y_test, model.predictor.predict_raw(model.encode(X_test)),
                                                   model.classes)}
    return {"system": "mlengineer", "task": task["name"], "metric": task["metric"],
            "value": score(task, y_test, raw, model.classes), "budget_s": budget, "fit_s": round(fit_s, 2),
            "predict_s": round(predict_s, 3), "predict_1row_ms": round(1000 * float(np.median(lat)), 2),
            "n_train": len(train), "n_test": len(test),
            "validation": meta.get("split"), "refit": meta.get("refit_on_all_rows"),
            "ensemble": {e["model"]: round(e["weight"], 3) for e in meta.get("ensemble", [])},
            "n_candidates": len(meta["leaderboard"]) - 1,
            "train_1row_ms": ensemble[0].get("predict_1row_ms") if ensemble else None,
            "calibration": calibration, "timings": meta.get("timings"),
            "held": {k: plan.get(f"held_{k}") for k in ("stops", "refit_budget_s")}}


# -- the driver ---------------------------------------------------------------------------------------------

def _run(cmd: list[str], system: str, task: str, timeout: float, costs_from: Path | None = None) -> dict[str, Any]:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    with tempfile.TemporaryDirectory(prefix="mlengineer-costs-") as copy:
        if costs_from is not None:  # a fresh copy for each run: every run plans from the same measured costs
            shutil.copytree(costs_from, copy, dirs_exist_ok=True)
            env["MLENGINEER_CACHE_DIR"] = copy
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
        except subprocess.TimeoutExpired:
            return {"system": system, "task": task, "error": f"timed out after {timeout:.0f} s"}
    for line in reversed(proc.stdout.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
    return {"system": system, "task": task, "error": f"exit {proc.returncode}: {tail[0][:300]}"}


def rank_task(results: dict[str, dict[str, Any]], metric: str) -> dict[str, float]:
    """Rank per system (1 = best; ties share the mean rank; a failed run ranks last)."""
    sign = -1.0 if HIGHER_IS_BETTER[metric] else 1.0
    keyed = {s: (sign * r["value"] if "value" in r else np.inf) for s, r in results.items()}
    out = {}
    for s, v in keyed.items():
        better = sum(1 for o in keyed.values() if o < v)
        ties = sum(1 for o in keyed.values() if o == v)
        out[s] = better + (ties + 1) / 2
    return out


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def pool(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per task and system: where a system ran a task several times (``--seeds``), the mean of its
    scores as its value, the scores themselves under ``values``, its longest fit and its median one-row time.
    A failed run leaves the others' mean; a task and system with no score keeps its first error."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["task"], r["system"]), []).append(r)
    out = []
    for runs in groups.values():
        ok = [r for r in runs if "value" in r]
        if len(runs) == 1 or not ok:
            out.append(runs[0])
            continue
        values = [float(r["value"]) for r in ok]
        out.append({**ok[0], "value": float(np.mean(values)), "values": values, "failed_runs": len(runs) - len(ok),
                    "fit_s": max(float(r["fit_s"]) for r in ok),
                    "predict_s": float(np.median([r["predict_s"] for r in ok])),
                    "predict_1row_ms": float(np.median([r["predict_1row_ms"] for r in ok]))})
    return out


def _cell(r: dict[str, Any]) -> str:
    """A score, or the mean of several with their range and the runs that failed."""
    if "values" not in r:
        return _fmt(r["value"])
    lo, hi = min(r["values"]), max(r["values"])
    failed = f", {r['failed_runs']} failed" if r.get("failed_runs") else ""
    return f"{_fmt(r['value'])} ({_fmt(lo)}-{_fmt(hi)}, {len(r['values'])} runs{failed})"


def report(rows: list[dict[str, Any]], budget: float) -> str:
    rows = pool(rows)
    systems = list(dict.fromkeys(r["system"] for r in rows))
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    by = {(r["task"], r["system"]): r for r in rows}
    head = ["task", "metric"]
    for s in systems:
        head += [s, "rank", "fit s", "predict s", "1-row ms"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    ranks: dict[str, list[float]] = {s: [] for s in systems}
    wins = {s: [0, 0, 0] for s in systems if s != "mlengineer"}
    overruns: dict[str, list[str]] = {s: [] for s in systems}
    failures: dict[str, list[str]] = {s: [] for s in systems}
    gaps: list[str] = []
    for t in tasks:
        res = {s: by[(t, s)] for s in systems if (t, s) in by}
        metric = next((r["metric"] for r in res.values() if "metric" in r), None)
        if metric is None:
            continue
        rk = rank_task(res, metric)
        cells = [t, metric]
        for s in systems:
            r = res.get(s, {})
            if "value" not in r:
                failures[s].append(t)
                cells += [f"fails: {r.get('error', 'not run')[:60]}", _fmt(rk.get(s)), "-", "-", "-"]
            else:
                ranks[s].append(rk[s])
                if r["fit_s"] > 1.1 * budget:
                    overruns[s].append(f"{t} ({r['fit_s']:.1f} s)")
                cells += [_cell(r), _fmt(rk[s], 1), _fmt(r["fit_s"], 1), _fmt(r["predict_s"], 3),
                          _fmt(r["predict_1row_ms"], 2)]
        me = res.get("mlengineer", {})
        for s in wins:
            if s in res:
                a, b = rk.get("mlengineer", np.inf), rk[s]
                wins[s][0 if a < b else 1 if a > b else 2] += 1
        peers = [r["value"] for s, r in res.items() if s != "mlengineer" and "value" in r]
        if "value" in me and peers:
            best = max(peers) if HIGHER_IS_BETTER[metric] else min(peers)
            gap = (best - me["value"]) if HIGHER_IS_BETTER[metric] else (me["value"] - best)
            rel = gap / abs(best) if best else 0.0
            if rel > GOAL_GAP[metric]:
                gaps.append(f"{t}: {rel:+.1%} behind the best peer ({metric} {me['value']:.4f} vs {best:.4f})")
        lines.append("| " + " | ".join(cells) + " |")
    lat = {s: [by[(t, s)]["predict_1row_ms"] for t in tasks if (t, s) in by and "value" in by[(t, s)]]
           for s in systems}
    out = ["\n".join(lines), "", "| system | mean rank | tasks with a model | median 1-row ms | over budget+10% |",
           "|---|---|---|---|---|"]
    for s in systems:
        out.append(f"| {s} | {np.mean(ranks[s]) if ranks[s] else float('nan'):.2f} | "
                   f"{len(tasks) - len(failures[s])}/{len(tasks)} | "
                   f"{np.median(lat[s]) if lat[s] else float('nan'):.2f} | "
                   f"{', '.join(overruns[s]) or 'none'} |")
    out.append("")
    for s, (w, lo, tie) in wins.items():
        out.append(f"- mlengineer against {s}: {w} wins, {lo} losses, {tie} ties")
    if wins:
        out.append("- more than 1% (AUC) / 5% (log loss, RMSE) behind the best peer: "
                   + ("; ".join(gaps) if gaps else "none"))
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--budget", type=float, default=60.0, help="seconds per training run")
    ap.add_argument("--tasks", default="all", help="comma-separated task names, or all")
    ap.add_argument("--peers", action="store_true", help="also run FLAML and AutoGluon on the same tasks")
    ap.add_argument("--systems", default="mlengineer,flaml,autogluon",
                    help="with --peers: which systems to run (comma-separated)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--seeds", default=None, metavar="N,N,...",
                    help="run every system once per seed (instead of --seed): each cell the mean and range")
    ap.add_argument("--out", default=None, help="results path without suffix (default bench/results/accuracy-...)")
    ap.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                    help="a TrainConfig option for mlengineer, e.g. max_predict_ms_per_row=2 (JSON values)")
    ap.add_argument("--costs-from", default=None, metavar="DIR",
                    help="each mlengineer run reads a fresh copy of this cache folder (MLENGINEER_CACHE_DIR of an "
                         "earlier run): two code versions compared on the same measured costs plan alike")
    ap.add_argument("--run-one", default=None, help=argparse.SUPPRESS)  # internal: one mlengineer run
    a = ap.parse_args(argv)
    options = {}
    for item in a.option:
        key, _, value = item.partition("=")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    if a.run_one:
        print(json.dumps(run_mlengineer(BENCH / a.run_one, a.budget, a.seed, options), default=str))
        return 0

    names = [p.name for p in sorted(BENCH.iterdir()) if (p / "task.json").is_file()]
    if a.tasks != "all":
        wanted = [t.strip() for t in a.tasks.split(",") if t.strip()]
        unknown = [t for t in wanted if t not in names]
        if unknown:
            print(f"Unknown task(s): {', '.join(unknown)}; the tasks are: {', '.join(names)}", file=sys.stderr)
            return 2
        names = wanted
    costs_from = Path(a.costs_from) if a.costs_from else None
    if costs_from is not None and not (costs_from / "costs").is_dir():
        print(f"--costs-from {costs_from}: no measured costs there (no costs/ folder); give the MLENGINEER_CACHE_DIR "
              "of an earlier run", file=sys.stderr)
        return 2
    try:
        seeds = [int(x) for x in a.seeds.split(",") if x.strip()] if a.seeds else [a.seed]
    except ValueError:
        print(f"--seeds {a.seeds}: give whole numbers separated by commas, e.g. --seeds 0,1,2", file=sys.stderr)
        return 2
    if not seeds:
        print("--seeds: give at least one seed, e.g. --seeds 0,1,2", file=sys.stderr)
        return 2
    systems = [s.strip() for s in a.systems.split(",")] if a.peers else ["mlengineer"]
    for s in systems:
        if s != "mlengineer" and not PEERS.get(s, Path("/nonexistent")).is_file():
            print(f"Peer {s!r} is not installed at {PEERS.get(s)}: run ../shared/peers/setup.sh", file=sys.stderr)
            return 2
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M")
    base = Path(a.out) if a.out else ROOT / "bench" / "results" / f"accuracy-{a.budget:g}s-{stamp}"
    base.parent.mkdir(parents=True, exist_ok=True)
    jsonl = base.with_suffix(".jsonl")
    rows: list[dict[str, Any]] = []
    timeout = a.budget * 3 + 180
    with jsonl.open("w") as f:
        for name in names:
            for seed in seeds:  # each seed's runs side by side: the systems share the machine's state alike
                for s in systems:
                    if s == "mlengineer":
                        cmd = [sys.executable, str(Path(__file__).resolve()), "--run-one", name,
                               "--budget", str(a.budget), "--seed", str(seed)]
                        cmd += [x for item in a.option for x in ("--option", item)]
                    else:
                        cmd = [str(PEERS[s]), str(PEER_SCRIPT), "--system", s, "--task", str(BENCH / name),
                               "--budget", str(a.budget), "--seed", str(seed)]
                    r = _run(cmd, s, name, timeout, costs_from if s == "mlengineer" else None)
                    r.setdefault("budget_s", a.budget)
                    r["seed"] = seed
                    rows.append(r)
                    f.write(json.dumps(r, default=str) + "\n")
                    f.flush()
                    shown = f"{r['value']:.4f} in {r['fit_s']:.1f} s, 1 row {r['predict_1row_ms']:.2f} ms" \
                        if "value" in r else r["error"]
                    print(f"{name:28s} {s:11s} seed {seed:<3d} {shown}", flush=True)
    md = report(rows, a.budget)
    header = (f"# Accuracy at {a.budget:g} s per task ({dt.date.today()}, {os.cpu_count()} cores)\n\n"
              f"Command: `python bench/accuracy.py {' '.join(argv if argv is not None else sys.argv[1:])}`\n\n")
    base.with_suffix(".md").write_text(header + md)
    print(md)
    print(f"Wrote {jsonl} and {base.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
