"""One row, in process: the compiled row path against the batch paths, on the 24 tasks of ../shared/bench.

    .venv/bin/python bench/single_row.py --budget 20                  # every task, two models each
    .venv/bin/python bench/single_row.py --budget 20 --tasks adult,car
    .venv/bin/python bench/single_row.py --budget 20 --models xgboost     # XGBoost: compiled against native
    .venv/bin/python bench/single_row.py --budget 20 --models single      # one LightGBM booster (max_models=1)
    .venv/bin/python bench/single_row.py --budget 20 --models single,single_100us   # and one within 0.1 ms

Each task is trained twice with a short budget (the default ensemble, and one boosted model:
``families=["lightgbm"]``; ``--models xgboost`` adds ``families=["xgboost"]``, ``--models single`` the best
single LightGBM booster: ``families=["lightgbm"], max_models=1``; ``single_100us`` the same with
``max_predict_ms_per_row=0.1``, the booster cut to the rounds that answer within it), saved and loaded back as a
bundle (so whatever is compiled at save time is what answers). Then up to 300 test rows are predicted one at a time, each in three ways:

- ``frame``: a one-row DataFrame (``model.predict_raw(X_test.iloc[[i]])``), what bench/accuracy.py's
  "1-row ms" measures;
- ``record before``: one record through the column-array path (``use_row_path = False``), what the server
  did for a single-row request before the row path;
- ``record after``: one record through the row path (``model.predict_record``), what the server does now.

Median and p99 microseconds of each, and the largest difference between the row path's answers and the
batch path's. A bundle with compiled members (XGBoost as ONNX, bundle/compiled.py) is also loaded a second
time with them detached: ``native trees`` is the row path with XGBoost's own ``inplace_predict``, what one
record cost before compiling; with the compile time at save and the compiled-against-native difference. A
bundle with LightGBM members is loaded once more with ``MLENGINEER_TREE_WALK=0``: ``LightGBM's own call`` is
the row path with LightGBM's single-row API instead of the compiled walk (``_lgbwalk.py``). Rows go to
bench/results/single_row-<time>.jsonl; a Markdown table to stdout.
"""

from __future__ import annotations

import argparse
import json
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


def latencies(fn: Any, rows: list[Any]) -> tuple[float, float]:
    for r in rows[:20]:  # warm-up
        fn(r)
    lat = []
    for r in rows:
        t = time.perf_counter()
        fn(r)
        lat.append(time.perf_counter() - t)
    return 1e6 * float(np.median(lat)), 1e6 * float(np.percentile(lat, 99))


def measure(model: Any, X_test: Any, n: int, path: Path | None = None) -> dict[str, Any]:
    frames = [X_test.iloc[[i]] for i in range(min(n, len(X_test)))]
    records = X_test.iloc[: len(frames)].to_dict(orient="records")
    out: dict[str, Any] = {"rows": len(records), "row_path": model.row_path() is not None}
    model.use_row_path = False
    out["frame_us"] = latencies(model.predict_raw, frames)
    out["before_us"] = latencies(model.predict_raw, records)
    before = [model.predict_raw(r) for r in records]
    model.use_row_path = True
    out["after_us"] = latencies(model.predict_raw, records)
    after = [model.predict_raw(r) for r in records]
    out["max_diff"] = float(max(np.max(np.abs(a - b)) for a, b in zip(after, before, strict=True)))
    compiled = {k: v for k, v in model.metadata.get("compiled", {}).items() if v.get("compiled")}
    if compiled and path is not None:
        out.update(native_trees(path, records, after, compiled))
    if path is not None and any(e["model"].startswith("lightgbm") for e in model.metadata.get("ensemble", [])):
        out.update(lightgbm_own_call(path, records, after))
    return out


def lightgbm_own_call(path: Path, records: list[Any], walked: list[Any]) -> dict[str, Any]:
    """The same bundle loaded with ``MLENGINEER_TREE_WALK=0``: its LightGBM members answer one record through
    LightGBM's own single-row call instead of the compiled walk (``_lgbwalk.py``)."""
    import mlengineer

    os.environ["MLENGINEER_TREE_WALK"] = "0"
    try:
        own = mlengineer.load(path)
        answers = [own.predict_raw(r) for r in records]  # builds the row path while the variable is set
        return {"lgb_own_us": latencies(own.predict_raw, records),
                "lgb_walk_diff": float(max(np.max(np.abs(a - b)) for a, b in zip(walked, answers, strict=True)))}
    finally:
        del os.environ["MLENGINEER_TREE_WALK"]


def native_trees(path: Path, records: list[Any], compiled_answers: list[Any], compiled: dict[str, Any]) -> dict[str, Any]:
    """The same bundle with its compiled members detached: one record through XGBoost's own trees."""
    import mlengineer
    from mlengineer.bundle.compiled import fitted_members

    native = mlengineer.load(path)
    for _, member in fitted_members(native.predictor):
        if callable(getattr(member, "attach_compiled", None)):
            member.attach_compiled(None)
    answers = [native.predict_raw(r) for r in records]
    return {"native_trees_us": latencies(native.predict_raw, records), "compiled": sorted(compiled),
            "compile_s": round(sum(v.get("seconds", 0.0) for v in compiled.values()), 2),
            "compiled_diff": float(max(np.max(np.abs(a - b)) for a, b in zip(compiled_answers, answers, strict=True)))}


#: what each ``--models`` name trains with
MODELS: dict[str, dict[str, Any]] = {"default": {}, "lightgbm": {"families": ["lightgbm"]},
                                     "xgboost": {"families": ["xgboost"]},
                                     "single": {"families": ["lightgbm"], "max_models": 1},
                                     "single_100us": {"families": ["lightgbm"], "max_models": 1,
                                                      "max_predict_ms_per_row": 0.1}}


def run_task(folder: Path, budget: float, model_kind: str, n: int) -> dict[str, Any]:
    import mlengineer
    from accuracy import read_task, score

    task, train, test = read_task(folder)
    target = task["target"]
    X_test = test.drop(columns=[target])
    options = MODELS[model_kind]
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        mlengineer.train(train, target, task=task["task"], time_budget=budget, seed=0, track=False,
                         out=Path(d) / "m", **options)
        fit_s = time.perf_counter() - t0
        model = mlengineer.load(Path(d) / "m")
        members = [e["model"] for e in model.metadata.get("ensemble", [])]
        classes = list(model.classes) if model.task.is_classification else []
        return {"task": task["name"], "model": model_kind, "fit_s": round(fit_s, 1), "members": members,
                "metric": task["metric"], "test": score(task, test[target], model.predict_raw(X_test), classes),
                "trees": trees(model), **measure(model, X_test, n, Path(d) / "m")}


def trees(model: Any) -> int:
    """The trees of the bundle's LightGBM members (0 without any)."""
    from mlengineer.bundle.compiled import fitted_members

    return sum(m.estimator.num_trees() for _, m in fitted_members(model.predictor)
               if getattr(m, "family", "") == "lightgbm" and hasattr(m.estimator, "num_trees"))


def table(rows: list[dict[str, Any]]) -> str:
    head = ("| task | model | members | frame median / p99 us | record before median / p99 us | "
            "record after median / p99 us | speed-up (median) | max diff |")
    lines = [head, "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['task']} | {r['model']} | fails: {r['error']} | | | | | |")
            continue
        f, b, a = r["frame_us"], r["before_us"], r["after_us"]
        lines.append(f"| {r['task']} | {r['model']} | {', '.join(r['members']) or '-'} | {f[0]:.0f} / {f[1]:.0f} | "
                     f"{b[0]:.0f} / {b[1]:.0f} | **{a[0]:.0f}** / {a[1]:.0f} | {b[0] / a[0]:.1f}x | "
                     f"{r['max_diff']:.1e} |")
    for model in MODELS:
        ok = [r for r in rows if r["model"] == model and "error" not in r]
        if ok:
            med = {k: float(np.median([r[k][0] for r in ok])) for k in ("frame_us", "before_us", "after_us")}
            p99 = {k: float(np.median([r[k][1] for r in ok])) for k in ("frame_us", "before_us", "after_us")}
            worst = max(ok, key=lambda r: r["after_us"][0])
            lines.append(f"\n{model}: over {len(ok)} tasks, median of the per-task medians: frame "
                         f"{med['frame_us']:.0f} us, record before {med['before_us']:.0f} us, record after "
                         f"**{med['after_us']:.0f} us** (median p99 {p99['after_us']:.0f} us; slowest task "
                         f"{worst['task']} {worst['after_us'][0]:.0f} us)")
    return "\n".join(lines) + compiled_table(rows) + walk_table(rows) + limit_table(rows)


def limit_table(rows: list[dict[str, Any]]) -> str:
    """``single`` against ``single_100us`` per task: trees, record time and test score."""
    by = {(r["task"], r["model"]): r for r in rows if "error" not in r}
    pairs = [(by[t, "single"], by[t, "single_100us"]) for t, m in by if m == "single" and (t, "single_100us") in by]
    if not pairs:
        return ""
    lines = ["", "", "| task | metric | single: trees, record median us, test | within 0.1 ms: trees, record median us, "
             "test |", "|---|---|---|---|"]
    for a, b in pairs:
        lines.append(f"| {a['task']} | {a['metric']} | {a['trees']}, {a['after_us'][0]:.0f}, {a['test']:.4f} | "
                     f"{b['trees']}, **{b['after_us'][0]:.0f}**, {b['test']:.4f} |")
    med = [float(np.median([p[i]["after_us"][0] for p in pairs])) for i in (0, 1)]
    within = sum(p[1]["after_us"][0] <= 100 for p in pairs)
    lines.append(f"\nover {len(pairs)} tasks, median of the per-task medians: single {med[0]:.0f} us, within 0.1 ms "
                 f"**{med[1]:.0f} us** ({within} of {len(pairs)} at or under 100 us)")
    return "\n".join(lines)


def walk_table(rows: list[dict[str, Any]]) -> str:
    """One record through the row path: LightGBM's own single-row call against the compiled walk."""
    return _against_table([r for r in rows if "lgb_own_us" in r], "lgb_own_us", "members",
                          ("LightGBM's own call", "walk"), "bundles with LightGBM members",
                          lambda r: f"{r['lgb_walk_diff']:.1e}")


def compiled_table(rows: list[dict[str, Any]]) -> str:
    """One record through the row path, XGBoost's own trees against the compiled ones, where a bundle has any."""
    return _against_table([r for r in rows if "native_trees_us" in r], "native_trees_us", "compiled",
                          ("native trees", "compiled"), "bundles with compiled members",
                          lambda r: f"{r['compile_s']:.2f} | {r['compiled_diff']:.1e}", "compile s (at save) | ")


def _against_table(rows: list[dict[str, Any]], key: str, members: str, names: tuple[str, str], which: str,
                   last: Any, extra: str = "") -> str:
    """The row path's record time against ``key``'s (another way of answering the same bundle), per task."""
    if not rows:
        return ""
    old, new = names
    cols = 7 + extra.count("|")
    label = "members" if members == "members" else f"{members} members"
    lines = ["", "", f"| task | model | {label} | {old} median / p99 us | {new} median / p99 us | "
             f"speed-up (median) | {extra}max diff |", "|---" * cols + "|"]
    for r in rows:
        o, a = r[key], r["after_us"]
        lines.append(f"| {r['task']} | {r['model']} | {', '.join(r[members])} | {o[0]:.0f} / {o[1]:.0f} | "
                     f"**{a[0]:.0f}** / {a[1]:.0f} | {o[0] / a[0]:.1f}x | {last(r)} |")
    for kind in sorted({r["model"] for r in rows}):
        mine = [r for r in rows if r["model"] == kind]
        med = np.median([r[key][0] for r in mine]), np.median([r["after_us"][0] for r in mine])
        lines.append(f"\n{kind}: over {len(mine)} {which}, median of the per-task medians: {old} {med[0]:.0f} us, "
                     f"{new} **{med[1]:.0f} us**")
    return "\n".join(lines)


def task_row(run: Any, out: Path, **keys: Any) -> dict[str, Any]:
    """``run()``'s row (on failure, ``keys`` and the error: one task's failure is a row, not the end of the
    run), with the load average, appended to ``out`` as a JSON line and printed to stderr."""
    try:
        row = run()
    except Exception as e:  # noqa: BLE001
        row = {**keys, "error": f"{type(e).__name__}: {e}"[:160]}
    row["load_avg"] = round(os.getloadavg()[0], 1)
    with out.open("a") as f:
        f.write(json.dumps(row) + "\n")
    print(json.dumps(row), file=sys.stderr, flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--budget", type=float, default=20.0)
    ap.add_argument("--tasks", default="")
    ap.add_argument("--rows", type=int, default=300)
    ap.add_argument("--models", default="default,lightgbm")
    args = ap.parse_args()
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    names = [t for t in args.tasks.split(",") if t] or sorted(p.name for p in SUITE.iterdir() if (p / "task.json").exists())
    out = ROOT / "bench" / "results" / f"single_row-{time.strftime('%Y%m%d-%H%M%S')}.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    unknown = [m for m in args.models.split(",") if m not in MODELS]
    if unknown:
        raise SystemExit(f"--models: {', '.join(unknown)} not among {', '.join(MODELS)}")
    rows = []
    for name in names:
        for model in args.models.split(","):
            rows.append(task_row(partial(run_task, SUITE / name, args.budget, model, args.rows), out,
                                 task=name, model=model))
    print(table(rows))


if __name__ == "__main__":
    main()
