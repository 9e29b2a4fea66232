"""Does monitoring raise alarms only when something changed, find shifts of known size, and estimate
performance before the outcomes come? Side by side with Evidently in the same run.

For each task of ../shared/bench (train.csv.gz), shuffled and cut in two halves:

- a model is trained on one half (its bundle keeps the reference sample);
- false alarms: the other half, a random split of the same data, is monitored: any dataset-level drift
  alarm, and the share of columns flagged;
- power: the same half with one synthetic shift on one column (the most important one that fits): a mean
  shift of 0.5 SD, a category's share doubled, 20% of the values removed, the spread scaled by 1.5, and the
  relation of the most important column to the target broken (its values shuffled among the rows: every
  column keeps its distribution, so only outcomes can show it: detected when the realised performance alarm
  fires or the relation test names that column; the random halves count relation alarms too);
- estimated against realised performance: on the random half, and on a shifted split (rows drawn into the
  live half with a probability that grows with the rank of the most important column, a second model
  trained on the rest): ROC AUC for binary tasks, accuracy for multiclass (also without CBPE's own
  calibration, on the same models), RMSE for regression;
- Evidently 0.7 (DataDriftPreset with its defaults) on the same reference/current pairs, with the same column
  kinds: the share of column verdicts that agree, and its time beside ours.

Then speed: drift and estimates over 1,000,000 logged rows x 20 columns (a prediction log written in the
server's format), in a fresh process, time and peak memory over the data's own size; and the cost the live
gauges add to a request (``LiveMonitor.observe``) and their refresh off the request path.

    .venv/bin/python bench/monitoring.py [--tasks adult,abalone] [--time-budget 10] [--skip-evidently]
        [--skip-speed] [--out bench/results/monitoring.jsonl]
    .venv/bin/python bench/monitoring.py --estimate-only --kinds multiclass --seeds 0,1,2   # estimates only

Evidently runs in its own virtual environment, bench/.venv-evidently, created on first use (evidently 0.7.x
with pandas < 3, which it needs); never in the project's.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
BENCH = HERE.parent.parent / "shared" / "bench"
EVIDENTLY_VENV = HERE / ".venv-evidently"
SHIFTS = ("mean", "category", "missing", "scale")


def read(task: str) -> pd.DataFrame:
    path = BENCH / task / "train.csv.gz"
    if task == "house_prices":  # "NA" is a category there (no pool, no garage), not a missing value
        return pd.read_csv(path, keep_default_na=False, na_values=[""])
    return pd.read_csv(path)


def evidently_python() -> Path:
    """Evidently's own interpreter, installing it the first time (evidently 0.7 needs pandas < 3)."""
    py = EVIDENTLY_VENV / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(EVIDENTLY_VENV)], check=True)
        (EVIDENTLY_VENV / ".gitignore").write_text("*\n")
        subprocess.run([str(py), "-m", "pip", "install", "-q", "evidently>=0.7,<0.8", "pandas<3"], check=True)
    return py


# -- synthetic shifts --------------------------------------------------------------------------------------
def _ranked(model: Any, kinds: dict[str, str], eligible: Any) -> list[str]:
    imp = model.metadata.get("feature_importance") or {}
    cols = [c for c in model.feature_names if eligible(c, kinds[c])]
    return sorted(cols, key=lambda c: -float(imp.get(c, 0.0)))


def shift(model: Any, kinds: dict[str, str], cur: pd.DataFrame, kind: str, rng: np.random.Generator
          ) -> tuple[pd.DataFrame, str | None]:
    """``cur`` with one synthetic shift of ``kind`` on the most important column that fits it, and that column
    (None when no column fits)."""
    out = cur.copy()

    def numbers(c: str, k: str) -> bool:
        v = pd.to_numeric(cur[c], errors="coerce")
        return k == "numeric" and v.nunique() > 5 and float(v.std()) > 0

    if kind in ("mean", "scale"):
        cols = _ranked(model, kinds, numbers)
        if not cols:
            return out, None
        c = cols[0]
        v = pd.to_numeric(cur[c], errors="coerce").astype(float)
        out[c] = v + 0.5 * v.std() if kind == "mean" else v.mean() + 1.5 * (v - v.mean())
        return out, c
    if kind == "missing":
        c = _ranked(model, kinds, lambda c, k: k != "text")[0]
        filled = np.flatnonzero(cur[c].notna().to_numpy())
        take = rng.choice(filled, size=min(len(filled), int(round(0.2 * len(cur)))), replace=False)
        out[c] = out[c].astype(object)
        out.loc[out.index[take], c] = None
        return out, c
    for c in _ranked(model, kinds, lambda c, k: k == "categorical" or cur[c].nunique() <= 5):
        shares = cur[c].astype(str).value_counts(normalize=True)
        fit = shares[(shares >= 0.05) & (shares <= 0.45)]
        if len(fit):
            value = fit.index[0]
            others = np.flatnonzero((cur[c].astype(str) != value).to_numpy())
            take = rng.choice(others, size=int(round(fit.iloc[0] * len(cur))), replace=False)
            original = cur[c][cur[c].astype(str) == value].iloc[0]
            out[c] = out[c].astype(object)
            out.loc[out.index[take], c] = original
            return out, c
    return out, None


def broken(model: Any, cur: pd.DataFrame, rng: np.random.Generator) -> tuple[pd.DataFrame, str]:
    """``cur`` with the most important column's values shuffled among the rows (outcomes kept)."""
    imp = model.metadata.get("feature_importance") or {}
    c = max(model.feature_names, key=lambda n: float(imp.get(n, 0.0)))
    out = cur.copy()
    out[c] = cur[c].to_numpy()[rng.permutation(len(cur))]
    return out, c


def covariate_split(df: pd.DataFrame, column: str, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows drawn into the live half with a probability rising from 0.15 to 0.85 with ``column``'s rank."""
    rank = df[column].rank(method="average", pct=True, na_option="keep").fillna(0.5).to_numpy()
    live = rng.random(len(df)) < 0.15 + 0.7 * rank
    return df.loc[~live].reset_index(drop=True), df.loc[live].reset_index(drop=True)


def comparable(model: Any, frame: pd.DataFrame, reference: dict[str, Any]) -> pd.DataFrame:
    """The feature columns as both tools see them: numbers (dates in days) as floats, categories as their
    canonical text, so that Evidently and mlengineer compare exactly the same values."""
    from mlengineer.monitoring.columns import prepare, role_of

    out = {}
    for c, role in role_of(model).items():
        col = prepare(frame[c], role, model.schema[c].datetime_format, name=c, categories=reference[c].categories)
        if col.kind == "categorical":
            cats = np.asarray([*col.categories, None], dtype=object)
            out[c] = cats[np.where(col.values < 0, len(col.categories), col.values)]
        else:
            out[c] = col.values
    return pd.DataFrame(out)


# -- one task ----------------------------------------------------------------------------------------------
HEADLINE = {"binary": "roc_auc", "multiclass": "accuracy", "regression": "rmse"}


def plain_estimate(model: Any, frame: pd.DataFrame, kind: str) -> float | None:
    """Multiclass: CBPE without its own calibration (the bundle's probabilities as they come), beside the
    corrected estimate on the very same model and rows."""
    if kind != "multiclass":
        return None
    from mlengineer.monitoring.estimate import decisions, estimate_classifier

    raw = model.predict_raw(frame.drop(columns=[model.target], errors="ignore"))
    return estimate_classifier(HEADLINE[kind], raw, decisions(raw), draws=2).value


def _perf(result: dict[str, Any], kind: str) -> dict[str, Any]:
    e = result["performance"]["metrics"][HEADLINE[kind]]
    return {"estimated": e["estimated"]["value"] if e["estimated"] else None,
            "realised": e["realised"]["value"] if e["realised"] else None,
            # the realised value's own sampling spread (its bootstrap interval / 3.92): part of any gap
            "realised_sd": (e["realised"]["high"] - e["realised"]["low"]) / 3.92 if e["realised"] else None,
            "performance_alarm": result["performance"]["alarm"],
            "concept_drift": result["performance"].get("concept_drift", False),
            "relation_changed": result["relation"]["changed"]}


def _drift(result: dict[str, Any]) -> dict[str, Any]:
    cols = result["drift"]["columns"]
    return {"alarm": result["alarms"]["drift"], "tested": result["drift"]["verdict"]["tested"],
            "flagged": [c["column"] for c in cols if c["drifted"]],
            "value_flagged": [c["column"] for c in cols if c["value_drifted"]],
            "prediction_drifted": result["drift"]["prediction"]["drifted"]}


def run_task(task: str, budget: float, seed: int, pairs: list[dict[str, Any]], tmp: Path) -> dict[str, Any]:
    import mlengineer
    from mlengineer.monitoring.columns import drift_kinds
    from mlengineer.monitoring.current import from_data
    from mlengineer.monitoring.monitor import monitor
    from mlengineer.monitoring.reference import reference_of

    spec = json.loads((BENCH / task / "task.json").read_text())
    target, kind = spec["target"], spec["task"]
    rng = np.random.default_rng(seed)
    df = read(task)
    df = df.loc[df[target].notna()].sample(frac=1.0, random_state=seed).reset_index(drop=True)
    half = len(df) // 2
    ref_df, cur_df = df.iloc[:half].reset_index(drop=True), df.iloc[half:].reset_index(drop=True)
    model = mlengineer.train(ref_df, target, time_budget=budget, task=kind, track=False, seed=seed)
    ref, kinds = reference_of(model), drift_kinds(model)
    row: dict[str, Any] = {"task": task, "kind": kind, "rows_reference": len(ref.drift_rows), "rows_current": len(cur_df)}
    features = model.feature_names
    comparable(model, ref.drift_rows, ref.columns).to_parquet(tmp / f"{task}-ref.parquet", index=False)

    def check(name: str, frame: pd.DataFrame, labelled: bool) -> tuple[dict[str, Any], float]:
        start = time.perf_counter()
        result = monitor(model, from_data(model, frame if labelled else frame.drop(columns=[target]), name),
                         reference=ref)
        seconds = time.perf_counter() - start
        comparable(model, frame, ref.columns).to_parquet(tmp / f"{task}-{name}.parquet", index=False)
        pairs.append({"name": f"{task}/{name}", "reference": str(tmp / f"{task}-ref.parquet"),
                      "current": str(tmp / f"{task}-{name}.parquet"),
                      "numerical": [c for c in features if kinds[c] == "numeric"],
                      "categorical": [c for c in features if kinds[c] == "categorical"],
                      "text": [c for c in features if kinds[c] == "text"]})
        return result, seconds

    random_result, seconds = check("random", cur_df, labelled=True)
    row["random"] = {**_drift(random_result), **_perf(random_result, kind), "seconds": seconds,
                     "estimated_plain": plain_estimate(model, cur_df, kind)}
    for name in SHIFTS:
        shifted, column = shift(model, kinds, cur_df, name, rng)
        if column is None:
            row[name] = None
            continue
        result, _ = check(name, shifted, labelled=False)
        row[name] = {"column": column, **_drift(result), "detected": column in _drift(result)["flagged"]}
    shuffled, column = broken(model, cur_df, rng)
    result, _ = check("broken", shuffled, labelled=True)
    # found when the outcomes show it: the metric fell, or the column's relation to the outcome changed
    row["broken"] = {"column": column, **_drift(result), **_perf(result, kind),
                     "detected": bool(result["performance"]["alarm"]) or column in result["relation"]["changed"],
                     "by_relation": column in result["relation"]["changed"],
                     "by_performance": bool(result["performance"]["alarm"]),
                     "reference": result["performance"]["metrics"][HEADLINE[kind]]["reference"]["value"]}
    top = max(features, key=lambda n: float((model.metadata.get("feature_importance") or {}).get(n, 0.0)))
    base, live = covariate_split(df, top, rng)
    model2 = mlengineer.train(base, target, time_budget=budget, task=kind, track=False, seed=seed)
    shifted_result = monitor(model2, from_data(model2, live, "covariate-shifted half"))
    row["covariate"] = {"column": top, "rows": len(live), **_drift(shifted_result), **_perf(shifted_result, kind),
                        "estimated_plain": plain_estimate(model2, live, kind)}
    return row


def confidence_estimate(model: Any, ref: Any, frame: pd.DataFrame) -> float:
    """Multiclass: CBPE through its calibration of the answer's confidence alone (before the correctness
    model), on the same model and rows."""
    from mlengineer.monitoring.estimate import estimate_classifier

    raw = model.predict_raw(frame.drop(columns=[model.target], errors="ignore"))
    d = ref.decided(raw)
    return estimate_classifier("accuracy", ref.for_estimate(raw, d), d, draws=2).value


def run_estimates(task: str, budget: float, seed: int) -> list[dict[str, Any]]:
    """``--estimate-only``: the headline estimate against the realised value on a random half and on a
    covariate-shifted split, nothing else (multiclass: also through the confidence calibration alone)."""
    import mlengineer
    from mlengineer.monitoring.current import from_data
    from mlengineer.monitoring.monitor import monitor
    from mlengineer.monitoring.reference import reference_of

    spec = json.loads((BENCH / task / "task.json").read_text())
    target, kind = spec["target"], spec["task"]
    df = read(task)
    df = df.loc[df[target].notna()].sample(frac=1.0, random_state=seed).reset_index(drop=True)
    half = len(df) // 2
    model = mlengineer.train(df.iloc[:half].reset_index(drop=True), target, time_budget=budget, task=kind,
                             track=False, seed=seed)
    top = max(model.feature_names, key=lambda n: float((model.metadata.get("feature_importance") or {}).get(n, 0.0)))
    base, live = covariate_split(df, top, np.random.default_rng(seed + 100))
    out = []
    for split, m, frame in (("random", model, df.iloc[half:].reset_index(drop=True)),
                            ("covariate", mlengineer.train(base, target, time_budget=budget, task=kind, track=False,
                                                           seed=seed), live)):
        ref = reference_of(m)
        perf = _perf(monitor(m, from_data(m, frame, split), reference=ref), kind)
        row = {"task": task, "kind": kind, "seed": seed, "split": split, "rows": len(frame),
               "scored_reference": len(ref.scored), "correctness_model": ref.correctness is not None,
               "estimated": perf["estimated"], "realised": perf["realised"], "realised_sd": perf["realised_sd"]}
        if kind == "multiclass":
            row["estimated_confidence"] = confidence_estimate(m, ref, frame)
            row["estimated_plain"] = plain_estimate(m, frame, kind)
        out.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    return out


def estimate_totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean |estimate - realised| per kind and split, for each estimator recorded."""
    t: dict[str, Any] = {}
    for kind in HEADLINE:
        for split in ("random", "covariate"):
            part = [r for r in rows if r["kind"] == kind and r["split"] == split and r["realised"] is not None]
            for key in ("estimated", "estimated_confidence", "estimated_plain"):
                errs = [abs(r[key] - r["realised"]) / (r["realised"] if kind == "regression" else 1) for r in part
                        if r.get(key) is not None]
                if errs:
                    t[f"{split}_{kind}_{key}_mae"] = round(float(np.mean(errs)), 4)
            if part:
                t[f"{split}_{kind}_cases"] = len(part)
    return t


def run_evidently(pairs: list[dict[str, Any]], tmp: Path) -> dict[str, Any]:
    job, out = tmp / "job.json", tmp / "evidently.json"
    job.write_text(json.dumps({"pairs": pairs}))
    start = time.perf_counter()
    subprocess.run([str(evidently_python()), str(HERE / "evidently_drift.py"), str(job), str(out)], check=True)
    results = {r["name"]: r for r in json.loads(out.read_text())}
    return {"pairs": results, "wall_s": time.perf_counter() - start}


def ours_drift_seconds(pair: dict[str, Any]) -> float:
    """Our column tests alone (no predictions, no estimates) on one pair, for the time beside Evidently's."""
    from mlengineer.monitoring.columns import prepare
    from mlengineer.monitoring.drift import compare_column

    ref, cur = pd.read_parquet(pair["reference"]), pd.read_parquet(pair["current"])
    start = time.perf_counter()
    for c in ref.columns:
        role = "numeric" if c in pair["numerical"] else "text" if c in pair["text"] else "categorical"
        r = prepare(ref[c], role, name=c)
        compare_column(r, prepare(cur[c], role, name=c, categories=r.categories))
    return time.perf_counter() - start


# -- speed ---------------------------------------------------------------------------------------------------
def synthetic(n: int, seed: int, regression: bool = False) -> pd.DataFrame:
    """20 columns (12 numbers, 8 categories of 3 to 50 values) and a target that depends on a few of them."""
    rng = np.random.default_rng(seed)
    data: dict[str, Any] = {f"num{i}": rng.normal(i, 1 + i / 4, n) if i % 3 else rng.lognormal(1, 0.6, n)
                            for i in range(12)}
    for i in range(8):
        k = [3, 5, 8, 12, 20, 30, 40, 50][i]
        data[f"cat{i}"] = np.asarray([f"c{i}_{j}" for j in range(k)], dtype=object)[rng.zipf(1.6, n) % k]
    df = pd.DataFrame(data)
    signal = df["num1"] - 2 * df["num4"] / 2 + (df["cat0"] == "c0_1") * 2 + rng.normal(0, 1.5, n)
    df["target"] = signal if regression else np.where(signal > signal.median(), "yes", "no")
    return df


def write_log(model: Any, df: pd.DataFrame, folder: Path, *, rows: int, part_rows: int = 100_000) -> None:
    """``rows`` rows in the prediction log's layout (parts as the server writes them), predicted by ``model``."""
    folder.mkdir(parents=True, exist_ok=True)
    features = df.drop(columns=["target"])
    start = pd.Timestamp("2025-01-01", tz="UTC")
    for p, first in enumerate(range(0, rows, part_rows)):
        idx = np.arange(first, min(first + part_rows, rows)) % len(features)
        part = features.iloc[idx].reset_index(drop=True)
        raw = model.predict_raw(part)
        out = part.copy()
        out["prediction"] = model.decide(raw) if model.task.is_classification else raw
        if model.task.is_classification:
            for i, c in enumerate(model.classes):
                out[f"proba_{c}"] = raw[:, i]
        out["_ts"] = start + pd.to_timedelta((first + np.arange(len(part))) * (7 * 86_400 / rows), unit="s")
        out["_row"] = np.zeros(len(part), dtype=np.int32)
        out["_request_id"] = [f"r{first + i}" for i in range(len(part))]
        out["_endpoint"], out["_model"], out["_version"] = "predict", model.name, "1"
        out.to_parquet(folder / f"part-20250101T000000-1-{p:06d}.parquet", index=False)


def speed_child(model_dir: str, log_dir: str) -> None:
    """In a fresh process: monitor the log, print seconds and memory (peak over the size after loading)."""
    import resource

    import mlengineer
    from mlengineer.monitoring.run import monitor_model

    model = mlengineer.load(model_dir)
    from mlengineer.monitoring.reference import reference_of

    reference_of(model).columns  # noqa: B018 - read and prepare the reference before the base is measured
    with open("/proc/self/status") as f:
        base = int(next(line for line in f if line.startswith("VmRSS")).split()[1])
    # the peak so far (loading the model and its libraries) is not monitoring's: reset the high-water mark
    # (Linux: 5 to clear_refs), so VmHWM afterwards is the peak of the monitoring pass alone
    reset = Path("/proc/self/clear_refs")
    if reset.exists():
        reset.write_text("5")
    start = time.perf_counter()
    cpu = time.process_time()
    _, result = monitor_model(model, log=log_dir)
    seconds, cpu_s = time.perf_counter() - start, time.process_time() - cpu
    with open("/proc/self/status") as f:
        hwm = next((int(line.split()[1]) for line in f if line.startswith("VmHWM")), None)
    peak = hwm if hwm is not None and reset.exists() else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": seconds, "cpu_s": cpu_s, "peak_over_base_mb": (peak - base) / 1024,
                      "rows": result["current"]["rows"], "drifted": result["drift"]["verdict"]["drifted"],
                      "estimate": result["performance"]["metrics"][result["performance"]["headline"]]["estimated"]}))


def speed(budget: float, tmp: Path, rows: int = 1_000_000) -> list[dict[str, Any]]:
    import mlengineer
    from mlengineer.monitoring.prediction_log import read_prediction_log

    out = []
    for regression in (False, True):
        df = synthetic(20_000, 1, regression=regression)
        model = mlengineer.train(df, "target", time_budget=budget, track=False, out=tmp / f"speed-{regression}")
        log = tmp / f"log-{regression}"
        write_log(model, synthetic(50_000, 2, regression=regression), log, rows=rows)
        data_mb = read_prediction_log(log).memory_usage(deep=True).sum() / 2**20
        runs = []
        for _ in range(3):  # a fresh process each time; the machine is shared, so the spread is reported too
            child = subprocess.run([sys.executable, __file__, "--speed-child", str(tmp / f"speed-{regression}"),
                                    str(log)], capture_output=True, text=True, check=True)
            runs.append({**json.loads(child.stdout.strip().splitlines()[-1]), "load_avg": os.getloadavg()[0]})
        best = sorted(runs, key=lambda r: r["seconds"])[1]  # the median run
        out.append({"task": "regression" if regression else "binary", "rows": rows, "columns": 20,
                    "data_mb": data_mb, **best, "x_data": best["peak_over_base_mb"] / data_mb,
                    "seconds_all": [round(r["seconds"], 2) for r in runs],
                    "peak_mb_all": [round(r["peak_over_base_mb"]) for r in runs],
                    "load_avg_all": [round(r["load_avg"], 1) for r in runs]})
    return out


def gauges(budget: float, tmp: Path) -> dict[str, Any]:
    """What live monitoring adds to one request, and what one refresh (off the request path) costs."""
    import mlengineer
    from mlengineer.monitoring.live import LiveMonitor
    from mlengineer.monitoring.reference import reference_of

    df = synthetic(20_000, 1)
    model = mlengineer.train(df, "target", time_budget=budget, track=False)
    live = LiveMonitor(model, reference_of(model), window_rows=2000, every_s=3600)
    rows = df.drop(columns=["target"]).head(2000)
    requests = [{c: (np.asarray([v], dtype=np.float64) if isinstance(v, float) else [v]) for c, v in r.items()}
                for r in rows.to_dict(orient="records")]
    raws = [model.predict_raw(rows.iloc[[i]]) for i in range(50)]
    n = 200_000
    start = time.perf_counter()
    for i in range(n):
        live.observe(requests[i % 2000], raws[i % 50], 1)
    observe_us = (time.perf_counter() - start) / n * 1e6
    times, cpu = [], []
    for _ in range(7):
        t, c = time.perf_counter(), time.process_time()
        live.refresh()
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    refresh_ms, refresh_cpu_ms = float(np.median(times[1:]) * 1000), float(np.median(cpu[1:]) * 1000)
    return {"observe_us": observe_us, "refresh_ms": refresh_ms, "refresh_cpu_ms": refresh_cpu_ms,
            "window_rows": 2000, "load_avg": os.getloadavg()[0],
            **{f"added_us_at_{rps}rps_every_{every}s": observe_us + refresh_cpu_ms * 1000 / (rps * every)
               for rps in (10, 100, 1000) for every in (10, 30)}}


# -- the run -------------------------------------------------------------------------------------------------
def summarise(rows: list[dict[str, Any]], ev: dict[str, Any] | None) -> list[str]:
    """Markdown tables and totals for bench/RESULTS.md."""
    lines = ["| task | kind | rows ref/live | random: drift alarm | flagged | perf. alarm | relation alarm | "
             "Evidently alarm | flagged | mean | category | missing | scale | broken (by) | est. vs real (random) | "
             "est. vs real (shifted) |",
             "|" + "---|" * 16]

    def ev_of(task: str, name: str) -> dict[str, Any]:
        return (ev or {}).get("pairs", {}).get(f"{task}/{name}", {})

    def mark(r: dict[str, Any], task: str, name: str) -> str:
        s = r.get(name)
        if s is None:
            return "n/a"
        e = ev_of(task, name).get("columns", {}).get(s["column"], {})
        theirs = "" if not e else f" / {'yes' if e['drifted'] else 'no'}"
        return f"{'yes' if s['detected'] else 'NO'}{theirs}"

    def broken_mark(b: dict[str, Any]) -> str:
        by = [w for w, on in (("relation", b["by_relation"]), ("metric", b["by_performance"])) if on]
        return f"yes ({', '.join(by)})" if by else "NO"

    for r in rows:
        e = ev_of(r["task"], "random")
        ev_flag = sum(c["drifted"] for c in e.get("columns", {}).values())
        fmt = "{:.3f}" if r["kind"] != "regression" else "{:,.4g}"
        lines.append(
            f"| {r['task']} | {r['kind']} | {r['rows_reference']:,}/{r['rows_current']:,} | "
            f"{'ALARM' if r['random']['alarm'] else 'no'} | {len(r['random']['flagged'])}/{r['random']['tested']} | "
            f"{'ALARM' if r['random']['performance_alarm'] else 'no'} | "
            f"{'ALARM' if r['random']['relation_changed'] else 'no'} | "
            f"{('ALARM' if e.get('dataset_drift') else 'no') if e else '-'} | {ev_flag if e else '-'} | "
            f"{mark(r, r['task'], 'mean')} | {mark(r, r['task'], 'category')} | {mark(r, r['task'], 'missing')} | "
            f"{mark(r, r['task'], 'scale')} | {broken_mark(r['broken'])} | "
            f"{fmt.format(r['random']['estimated'])} / {fmt.format(r['random']['realised'])} | "
            f"{fmt.format(r['covariate']['estimated'])} / {fmt.format(r['covariate']['realised'])} |")
    return lines


def totals(rows: list[dict[str, Any]], ev: dict[str, Any] | None) -> dict[str, Any]:
    t: dict[str, Any] = {"tasks": len(rows), "random_alarms": sum(r["random"]["alarm"] for r in rows),
                         "random_performance_alarms": sum(r["random"]["performance_alarm"] for r in rows),
                         "random_relation_alarms": sum(bool(r["random"]["relation_changed"]) for r in rows),
                         "random_relation_flagged": sum(len(r["random"]["relation_changed"]) for r in rows),
                         "covariate_relation_alarms": sum(bool(r["covariate"]["relation_changed"]) for r in rows),
                         "broken_by_relation": sum(r["broken"]["by_relation"] for r in rows),
                         "broken_by_performance": sum(r["broken"]["by_performance"] for r in rows),
                         "random_flagged": sum(len(r["random"]["flagged"]) for r in rows),
                         "random_tested": sum(r["random"]["tested"] for r in rows)}
    for name in (*SHIFTS, "broken"):
        done = [r[name] for r in rows if r.get(name) is not None]
        t[f"{name}_detected"], t[f"{name}_applied"] = sum(s["detected"] for s in done), len(done)
    for kind in HEADLINE:
        for split in ("random", "covariate"):
            pairs = [(r[split]["estimated"], r[split]["realised"]) for r in rows if r["kind"] == kind]
            errs = [abs(a - b) / (b if kind == "regression" else 1) for a, b in pairs if a is not None and b is not None]
            t[f"{split}_{kind}_{'rel_' if kind == 'regression' else ''}mae"] = float(np.mean(errs)) if errs else None
            plain = [abs(r[split]["estimated_plain"] - r[split]["realised"]) for r in rows
                     if r["kind"] == kind and r[split].get("estimated_plain") is not None]
            if plain:  # the same models' estimates without CBPE's own calibration
                t[f"{split}_{kind}_mae_uncorrected"] = float(np.mean(plain))
            # what a perfect estimator would still miss by: the mean |realised - true| of a sample that size
            sds = [r[split]["realised_sd"] / (r[split]["realised"] if kind == "regression" else 1) for r in rows
                   if r["kind"] == kind and r[split].get("realised_sd") is not None and r[split]["realised"]]
            t[f"{split}_{kind}_noise_floor"] = float(np.sqrt(2 / np.pi) * np.mean(sds)) if sds else None
    if ev:
        agree = total = ev_alarms = ev_flag = ev_tested = 0
        for r in rows:
            for name in ("random", *SHIFTS, "broken"):
                e = ev["pairs"].get(f"{r['task']}/{name}", {})
                mine = r.get(name)
                if not e.get("columns") or mine is None:
                    continue
                for col, verdict in e["columns"].items():
                    total += 1
                    agree += verdict["drifted"] == (col in mine["value_flagged"])
            e = ev["pairs"].get(f"{r['task']}/random", {})
            ev_alarms += bool(e.get("dataset_drift"))
            ev_flag += sum(c["drifted"] for c in e.get("columns", {}).values())
            ev_tested += len(e.get("columns", {}))
        t.update(agreement=agree / max(total, 1), verdicts=total, evidently_random_alarms=ev_alarms,
                 evidently_random_flagged=ev_flag, evidently_random_tested=ev_tested,
                 evidently_report_s=sum(p.get("seconds", 0.0) for p in ev["pairs"].values()),
                 evidently_wall_s=ev["wall_s"])
        for name in SHIFTS:
            found = [ev["pairs"].get(f"{r['task']}/{name}", {}).get("columns", {}).get(r[name]["column"], {})
                     for r in rows if r.get(name) is not None]
            t[f"evidently_{name}_detected"] = sum(bool(f.get("drifted")) for f in found)
    return t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", default=None)
    ap.add_argument("--time-budget", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-evidently", action="store_true")
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--skip-tasks", action="store_true")
    ap.add_argument("--out", default=str(HERE / "results" / "monitoring.jsonl"))
    ap.add_argument("--speed-child", nargs=2, default=None)
    ap.add_argument("--kinds", default=None, help="only tasks of these kinds, e.g. multiclass")
    ap.add_argument("--estimate-only", action="store_true",
                    help="only estimated against realised performance (random and shifted splits), per seed")
    ap.add_argument("--seeds", default=None, help="with --estimate-only: seeds to run, e.g. 0,1,2")
    args = ap.parse_args()
    if args.speed_child:
        speed_child(*args.speed_child)
        return
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    tasks = args.tasks.split(",") if args.tasks else pd.read_csv(BENCH / "INDEX.csv")["name"].tolist()
    if args.kinds:
        kinds = set(args.kinds.split(","))
        tasks = [t for t in tasks if json.loads((BENCH / t / "task.json").read_text())["task"] in kinds]
    if args.estimate_only:
        seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else [args.seed]
        est = [r for t in tasks for seed in seeds for r in run_estimates(t, args.time_budget, seed)]
        totals_ = estimate_totals(est)
        print(json.dumps(totals_, indent=1))
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("a") as f:
            f.write(json.dumps({"date": time.strftime("%Y-%m-%d"), "budget_s": args.time_budget,
                                "estimate_only": True, "totals": totals_, "estimates": est}, default=str) + "\n")
        return
    rows: list[dict[str, Any]] = []
    report: dict[str, Any] = {"date": time.strftime("%Y-%m-%d"), "budget_s": args.time_budget}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        pairs: list[dict[str, Any]] = []
        for task in [] if args.skip_tasks else tasks:
            t0 = time.perf_counter()
            rows.append(run_task(task, args.time_budget, args.seed, pairs, tmp))
            print(f"{task}: {time.perf_counter() - t0:.0f} s, load {os.getloadavg()[0]:.1f}", file=sys.stderr, flush=True)
        ev = None
        if rows and not args.skip_evidently:
            ev = run_evidently(pairs, tmp)
            report["ours_drift_s"] = sum(ours_drift_seconds(p) for p in pairs)
        if rows:
            report["totals"] = {**totals(rows, ev), "ours_drift_s": report.get("ours_drift_s")}
            print("\n".join(summarise(rows, ev)))
            print(json.dumps(report["totals"], indent=1))
        if not args.skip_speed:
            report["speed"] = speed(args.time_budget, tmp)
            report["gauges"] = gauges(args.time_budget, tmp)
            print(json.dumps({"speed": report["speed"], "gauges": report["gauges"]}, indent=1))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("a") as f:
        f.write(json.dumps({**report, "tasks": rows, "evidently": ev}, default=str) + "\n")


if __name__ == "__main__":
    main()
