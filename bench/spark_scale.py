"""Spark at scale: audit, train and score 1M, 3M and 10M rows x 20 mixed columns on local[2] and on a
two-worker standalone cluster, beside the in-memory path, with the peak memory of the driver; and the
accuracy of Spark training against in-memory xgboost on the same held-out rows.

Run: ``.venv/bin/python bench/spark_scale.py [--rows 1000000,3000000,10000000] [--modes inmem,local,cluster]``
then ``--report`` prints the Markdown tables for bench/RESULTS.md. Tables are generated once as Parquet
folders (1M-row parts) under --data (default /tmp/mlengineer-spark-bench; never committed). Every step runs
the real CLI in a fresh process; its process tree (the Python driver, and the JVM Spark starts from it) is
sampled every 0.2 s for resident memory. On a cluster the executors belong to the workers, not to the
driver's tree, so that figure is the driver alone; in local mode the JVM is driver and executor in one.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
EXE = Path(sys.executable).parent / "mlengineer"
RESULTS = ROOT / "bench" / "results" / "spark_scale.jsonl"
PART_ROWS = 1_000_000
#: training budget per table size (seconds), the same for every engine
BUDGETS = {1_000_000: 600, 3_000_000: 900, 10_000_000: 1800}
SPARK_CONF = ["--spark-conf", "spark.driver.memory=3g", "--spark-conf", "spark.executor.memory=3g",
              "--spark-conf", "spark.sql.shuffle.partitions=16"]


def make_part(n: int, seed: int, offset: int) -> pd.DataFrame:
    """``n`` rows x 20 columns: an id, 9 numbers (one 10% missing), 3 whole-number codes, 5 text categories
    of 2 to 1,000 values, a date written as text, and a yes/no target that depends on several of them."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6))
    cat_a = rng.choice(["basic", "plus", "premium", "family"], n, p=[0.4, 0.3, 0.2, 0.1])
    cat_c = rng.integers(0, 100, n)
    code0 = rng.integers(0, 8, n)
    days = rng.integers(0, 1500, n)
    effect_c = np.sin(cat_c * 1.7)  # a category effect a model must learn value by value
    logit = (0.9 * x[:, 0] - 0.7 * x[:, 1] * x[:, 2] + 0.5 * np.tanh(x[:, 3]) + np.where(cat_a == "premium", 0.8, 0)
             - 0.3 * (code0 == 3) + 0.6 * effect_c + 0.4 * np.cos(days / 365 * 2 * np.pi) - 0.4)
    df = pd.DataFrame({
        "row_id": np.arange(offset, offset + n),
        "x0": x[:, 0], "x1": x[:, 1], "x2": x[:, 2],
        "x3": np.where(rng.random(n) < 0.1, np.nan, x[:, 3]),
        "x4": x[:, 4], "income": np.round(rng.lognormal(10, 1, n), 2), "ratio": rng.random(n),
        "visits": rng.poisson(3, n).astype(float), "temperature": np.round(rng.normal(15, 8, n), 1),
        "code0": code0, "rating": rng.integers(1, 6, n), "code2": rng.integers(0, 30, n),
        "plan": cat_a, "segment": rng.choice(list("ABCDEFGHIJKL"), n), "city": np.char.add("city_", cat_c.astype(str)),
        "shop": np.char.add("s", rng.integers(0, 1000, n).astype(str)), "member": rng.choice(["yes", "no"], n),
        "signup": (np.datetime64("2020-01-01") + days.astype("timedelta64[D]")).astype(str),
    })
    df["y"] = np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), "yes", "no")
    return df


def table(rows: int, data: Path) -> Path:
    """The Parquet folder of ``rows`` rows, written once (1M-row parts)."""
    folder = data / f"rows_{rows}"
    if (folder / "_SUCCESS").exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(0, rows, PART_ROWS):
        n = min(PART_ROWS, rows - i)
        make_part(n, seed=i // PART_ROWS, offset=i).to_parquet(folder / f"part-{i // PART_ROWS:05d}.parquet",
                                                               index=False)
    (folder / "_SUCCESS").write_text("")
    return folder


def _tree(pid: int) -> dict[int, tuple[str, int]]:
    """The process ``pid`` and its descendants: pid -> (command name, resident bytes)."""
    children: dict[int, list[int]] = {}
    info: dict[int, tuple[str, int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/comm", encoding="ascii", errors="replace") as f:
                comm = f.read().strip()
            rss = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
        info[int(entry)] = (comm, rss)
    out, todo = {}, [pid]
    while todo:
        p = todo.pop()
        if p in info:
            out[p] = info[p]
        todo += children.get(p, [])
    return out


def run(cmd: list[str], cwd: Path, timeout: float) -> dict[str, Any]:
    """Run ``cmd``; wall time, exit status and the peak resident memory of its tree: all of it, the
    Python driver alone, and the JVM."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "COLUMNS": "200"})
    peak = {"tree": 0, "python": 0, "java": 0}
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            tree = _tree(proc.pid)
            peak["tree"] = max(peak["tree"], sum(r for _, r in tree.values()))
            peak["python"] = max(peak["python"], tree.get(proc.pid, ("", 0))[1])
            peak["java"] = max(peak["java"], sum(r for c, r in tree.values() if c == "java"))
            stop.wait(0.2)

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    stop.set()
    watcher.join()
    mib = 2.0**20
    return {"wall_s": round(time.perf_counter() - t0, 1), "rc": proc.returncode,
            "peak_tree_mib": round(peak["tree"] / mib), "peak_python_mib": round(peak["python"] / mib),
            "peak_jvm_mib": round(peak["java"] / mib), "stdout_tail": out[-600:], "stderr_tail": err[-600:]}


def steps(mode: str, folder: Path, work: Path, budget: int, master: str | None) -> list[tuple[str, list[str]]]:
    engine = ["--engine", "local"] if mode == "inmem" else ["--engine", "spark", *SPARK_CONF]
    tuning: list[str] = []
    if mode == "inmem":  # its time is the work done, not the budget: the portfolio of xgboost configurations
        (work / "no-tuning.yaml").write_text("tune: false\n")  # (3), no Optuna until the budget ends
        tuning = ["--config", str(work / "no-tuning.yaml")]
    if master:
        engine += ["--spark-master", master]
    model = work / f"model-{mode}"
    out = work / f"scored-{mode}.parquet"
    return [
        ("audit", [str(EXE), "audit", str(folder), "--target", "y", *engine]),
        ("train", [str(EXE), "train", str(folder), "--target", "y", "--families", "xgboost", "--time-budget",
                   str(budget), "--out", str(model), "--no-track", *engine, *tuning]),
        ("score", [str(EXE), "predict", str(model), str(folder), "--out", str(out),
                   *(engine if mode != "inmem" else [])]),
    ]


def measure(rows: int, mode: str, data: Path, master: str | None, *, budget: int | None = None,
            only: set[str] | None = None, timeout: float = 4 * 3600) -> None:
    folder = table(rows, data)
    work = data / "work" / f"{rows}"
    work.mkdir(parents=True, exist_ok=True)
    for step, cmd in steps(mode, folder, work, budget or BUDGETS.get(rows, 600), master):
        if only and step not in only:
            continue
        result = run(cmd, work, timeout=timeout)
        record = {"date": time.strftime("%Y-%m-%d"), "rows": rows, "mode": mode, "step": step,
                  "load_avg_1m": round(os.getloadavg()[0], 1), **result}
        if step == "train" and result["rc"] == 0:
            record["train"] = _train_info(work / f"model-{mode}")
        with RESULTS.open("a") as f:
            f.write(json.dumps(record) + "\n")
        print(json.dumps({k: v for k, v in record.items() if not k.endswith("_tail")}), flush=True)
        if result["rc"] != 0:
            print(result["stderr_tail"], flush=True)
            break  # out of memory or failed: the later steps need this one


def _train_info(model_dir: Path) -> dict[str, Any]:
    meta = json.loads((model_dir / "artifacts" / "bundle" / "metadata.json").read_text())
    board = [r for r in meta["leaderboard"] if r["model"] != "ensemble"]
    return {"validation_score": meta["validation_score"], "split": meta["split"], "timings": meta.get("timings"),
            "models": [(r["model"], r["score"], r.get("best_iteration"), r["fit_s"]) for r in board]}


def accuracy(rows: int, data: Path) -> dict[str, Any]:
    """The Spark-trained bundle (local[2]) against xgboost trained in memory on the same rows, encoded by the
    bundle's own plan and encoder, with the same parameters, rounds cap and held-out rows (the bundle's
    split, recomputed by Spark from each row's hash), both scored by the same ROC AUC on those rows."""
    import xgboost as xgb

    import mlengineer
    from mlengineer.metrics import get_metric
    from mlengineer.spark.prepare import split_column
    from mlengineer.spark.read import read_table
    from mlengineer.spark.session import get_spark

    folder = table(rows, data)
    model = mlengineer.load(data / "work" / f"{rows}" / "model-local")
    cfg = mlengineer.TrainConfig(**model.metadata["config"])
    spark = get_spark("local[2]", {"spark.driver.memory": "3g"})
    frame = read_table(spark, str(folder)).frame
    valid, _ = split_column(frame, cfg, frame.count())
    flags = frame.select("row_id", valid.alias("valid")).toPandas().set_index("row_id")["valid"]
    spark.stop()
    df = pd.read_parquet(folder)
    df = df[df["y"].notna()]
    mark = flags.reindex(df["row_id"]).to_numpy(dtype=bool)
    X = model.encoder.transform(model.plan.apply(df, training=True).drop(columns=["y"]))
    y = model.task.encode(df["y"])
    member = model.predictor.members[0][1]
    params = {"objective": "binary:logistic", "eval_metric": "logloss", "tree_method": "hist", "max_bin": 255,
              "max_cat_to_onehot": 8, "nthread": 2, "seed": 0, "verbosity": 0,
              **{k: v for k, v in member.params.items() if k != "n_estimators"}}
    cat = set(model.encoder.categorical_features_)
    types = ["c" if j in cat else "q" for j in range(X.shape[1])]

    def dm(rows_: np.ndarray) -> Any:
        return xgb.DMatrix(X[rows_], label=y[rows_], feature_types=types, enable_categorical=True, nthread=2)

    t0 = time.perf_counter()
    booster = xgb.train(params, dm(~mark), num_boost_round=int(member.params["n_estimators"]),
                        evals=[(dm(mark), "valid")], early_stopping_rounds=int(max(20, min(200, 5 / params["eta"]))),
                        verbose_eval=False)
    seconds = time.perf_counter() - t0
    auc = get_metric("roc_auc", "binary")
    local_p = booster.predict(dm(mark), iteration_range=(0, booster.best_iteration + 1))
    spark_p = member.predict_raw(X[mark])
    return {"rows": rows, "valid_rows": int(mark.sum()), "spark_auc": auc(y[mark], spark_p),
            "spark_auc_on_cluster": model.metadata["validation_score"], "inmem_auc": auc(y[mark], local_p),
            "spark_rounds": member.best_iteration, "inmem_rounds": booster.best_iteration + 1,
            "inmem_fit_s": round(seconds, 1)}


def report() -> None:
    records = [json.loads(line) for line in RESULTS.read_text().splitlines() if line.strip()]
    print("| date | rows | engine | step | wall s | exit | peak tree MiB | Python driver MiB | JVM MiB | load |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in records:
        if "step" not in r:
            continue
        print(f"| {r['date']} | {r['rows']:,} | {r['mode']} | {r['step']} | {r['wall_s']} | {r['rc']} | "
              f"{r['peak_tree_mib']:,} | {r['peak_python_mib']:,} | {r['peak_jvm_mib']:,} | {r['load_avg_1m']} |")
    for r in records:
        if "spark_auc" in r:
            print(json.dumps(r))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", default="1000000,3000000,10000000")
    parser.add_argument("--modes", default="inmem,local,cluster")
    parser.add_argument("--data", default="/tmp/mlengineer-spark-bench")
    parser.add_argument("--accuracy", action="store_true", help="compare with in-memory xgboost on the same split")
    parser.add_argument("--report", action="store_true")
    parser.add_argument("--budget", type=int, help="training budget (s) for every size, instead of BUDGETS")
    parser.add_argument("--steps", default="audit,train,score", help="which of audit,train,score to run")
    parser.add_argument("--timeout", type=float, default=4 * 3600, help="seconds one step may take")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stopped by its pid: the cluster goes down too
    if args.report:
        report()
        return
    data = Path(args.data)
    sizes = [int(r) for r in args.rows.split(",")]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    if args.accuracy:
        for rows in sizes:
            record = {"date": time.strftime("%Y-%m-%d"), **accuracy(rows, data)}
            with RESULTS.open("a") as f:
                f.write(json.dumps(record) + "\n")
            print(json.dumps(record), flush=True)
        return
    modes = args.modes.split(",")
    cluster = None
    if "cluster" in modes:  # one cluster for every size: two one-core workers, as many cores as the machine
        from mlengineer.spark.cluster import LocalCluster

        cluster = LocalCluster(2, cores=1, memory="4g").start()
    try:
        for rows in sizes:  # every engine at one size before the next size: comparable conditions
            for mode in modes:
                measure(rows, mode, data, cluster.master_url if cluster and mode == "cluster" else None,
                        budget=args.budget, only=set(args.steps.split(",")), timeout=args.timeout)
    finally:
        if cluster is not None:
            cluster.stop()


if __name__ == "__main__":
    main()
