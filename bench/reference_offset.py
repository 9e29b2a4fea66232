"""How often does the performance alarm's comparison with the reference fire on batches drawn like training,
model by model, and how often on batches that really got worse? The reference rows are the same for every
batch of a model, so how lucky they were is one offset all its batches share: a test that holds 2.5% only on
average over models may fire far more often on one of them.

For each task (a regression and a binary classification of five inputs, drawn afresh from a known rule, as
many rows as needed), several models are trained alike on 2,000 rows with different data seeds (a short
budget, 8 s: holdout validation, so 400 scored reference rows each; 30 s buys 3 folds and 2,000). Each
model's batches come from its own fresh pool of rows it never saw, drawn like its training rows:

- null batches: ``--batches`` batches of each size of ``--sizes``;
- worse batches: ``--worse`` batches of each size with the outcome's noise raised (regression: extra normal
  noise of SD ``0.5 x`` and ``1.0 x`` the rule's: RMSE about 11% and 39% higher) or labels flipped
  (classification: 10% and 20% of them: ROC AUC about 0.75 and 0.69 where the model has 0.82);

and each batch is compared with the model's reference rows by ``change.realised_change`` on the model's
headline metric, with the reference's reach counted in full (the rule now) and drawn jointly with the batch's
(the rule before), on the same draws (seed 0, as the monitor passes it). A batch alarms as the monitor's
comparison with the reference does: worse beyond chance (``bound`` above 0) and by more than the tolerance (5%
of an error, 1 point of a score); ``beyond chance`` alone is counted too. The model's own level is its metric
on 60,000 fresh rows; the reference's offset is how much better its rows scored than that.

    .venv/bin/python bench/reference_offset.py [--tasks regression,binary] [--models 6] [--batches 300]
        [--sizes 50,100,200] [--worse 100] [--time-budget 8] [--work /tmp/reference_offset]
        [--out bench/results/reference_offset.jsonl]

The JSONL holds one line per model, batch size, kind and strength: the counts of both rules.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

POOL = 60_000
WORSE = {"regression": (0.5, 1.0), "binary": (0.1, 0.2)}  # extra noise SD (x the rule's 5) / share flipped


def draw(n: int, seed: int, task: str) -> pd.DataFrame:
    """Rows of the known rule: four normal inputs and a category; a linear outcome with noise of SD 5, or a
    logistic class of the same."""
    r = np.random.default_rng(seed)
    X = r.normal(size=(n, 4))
    c = r.choice(list("abc"), n)
    lin = X[:, 0] + 0.5 * X[:, 1] - 0.5 * X[:, 2] + (c == "a") * 0.7
    frame = pd.DataFrame(X, columns=["x1", "x2", "x3", "x4"])
    frame["c"] = c
    frame["y"] = (lin + r.logistic(size=n) * 0.8 > 0).astype(int) if task == "binary" else 10 * lin + r.normal(0, 5, n)
    return frame


def train(task: str, seed: int, work: Path, budget: float,
          rows: Callable[[int, int, str], pd.DataFrame] | None = None) -> Any:
    """The model of ``task`` trained on 2,000 rows of data seed ``seed`` (reused when already in ``work``), drawn
    by ``rows`` (``draw`` unless given)."""
    import mlengineer

    out = work / f"{task}{seed}"
    if (out / "manifest.json").exists():  # written last: the bundle is whole
        return mlengineer.load(out)
    return mlengineer.train((rows or draw)(2000, seed, task), "y", time_budget=budget, max_models=3, out=out,
                            track=False, seed=seed)


def worsen(y: np.ndarray, task: str, level: float, seed: int) -> np.ndarray:
    """The outcomes ``y`` with noise of SD ``level`` x 5 added, or a share ``level`` of the labels flipped."""
    r = np.random.default_rng(seed)
    if task == "regression":
        return y + r.normal(0, 5 * level, len(y))
    flip = r.random(len(y)) < level
    return np.where(flip, 1 - y, y)


def judge(name: str, now: tuple, before: tuple, higher: bool, ref_value: float) -> dict[str, Any]:
    """Both rules' verdicts on one batch: beyond chance, and the monitor's alarm (beyond the tolerance too)."""
    from mlengineer.monitoring.change import realised_change

    tolerance = 0.01 if higher else 0.05 * abs(ref_value)
    out: dict[str, Any] = {}
    for rule, full in (("before", False), ("after", True)):
        test = realised_change(name, now, before, higher=higher, full=full, seed=0)
        if test is None:
            out[rule] = None
            continue
        worse = -test["value"] if higher else test["value"]
        out[rule] = {"beyond": bool(test["bound"] > 0), "alarm": bool(test["bound"] > 0 and worse > tolerance)}
    return out


def one_model(task: str, seed: int, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every batch of one model: null batches, then worse ones, each judged by both rules."""
    from mlengineer.metrics import get_metric
    from mlengineer.monitoring.estimate import estimable, realised
    from mlengineer.monitoring.reference import reference_of

    model = train(task, seed, args.work, args.time_budget)
    ref = reference_of(model)
    name = estimable(ref.task, model.metadata.get("metric"))[0]
    higher = get_metric(name, ref.task).greater_is_better
    ref_d = None if ref.task == "regression" else ref.decided(ref.raw)
    ref_y = ref.y.astype(np.float64) if ref.task == "regression" else ref.y.astype(np.int64)
    before = (ref_y, ref.raw, ref_d)
    pool = draw(POOL, 10_000 + seed, task)
    raw = model.predict_raw(pool.drop(columns="y"))
    d = None if ref.task == "regression" else ref.decided(raw)
    y = pool["y"].to_numpy(np.float64 if task == "regression" else np.int64)
    level = realised(name, y, raw, d=d).value
    ref_value = realised(name, ref_y, ref.raw, d=ref_d).value
    info = {"task": task, "model": seed, "metric": name, "reference_rows": len(ref_y), "level": level,
            "reference": ref_value, "reference_better_by": (level - ref_value) * (-1 if higher else 1) / abs(level)}
    rows = []
    for n in args.sizes:
        for k in range(args.batches + args.worse * len(WORSE[task])):
            worse = k >= args.batches
            kind, strength = ("worse", WORSE[task][(k - args.batches) // args.worse]) if worse else ("null", 0.0)
            at = (k * n) % (POOL - n)
            take = slice(at, at + n)
            yb = y[take] if kind == "null" else worsen(y[take], task, strength, 100_000 * seed + 1_000 * n + k)
            now = (yb, raw[take], None if d is None else d[take])
            rows.append({**info, "rows": n, "kind": kind, "strength": strength,
                         **judge(name, now, before, higher, ref_value)})
    return rows


def counts(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One model's batches counted by size, kind and strength: alarms and beyond-chance verdicts of each rule."""
    frame = pd.DataFrame(rows)
    for rule in ("before", "after"):
        for what in ("alarm", "beyond"):
            frame[f"{rule}_{what}"] = [bool(v and v[what]) for v in frame[rule]]
    keys = ["task", "model", "metric", "reference_rows", "level", "reference", "reference_better_by", "rows", "kind",
            "strength"]
    out = frame.groupby(keys, sort=False)[["before_alarm", "after_alarm", "before_beyond", "after_beyond"]].sum()
    out["batches"] = frame.groupby(keys, sort=False).size()
    records = out.reset_index().to_dict("records")
    return [{k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()} for r in records]


def table(summary: list[dict[str, Any]]) -> None:
    """Alarms per task and size: null batches overall and per model, worse batches by strength."""
    frame = pd.DataFrame(summary)
    for (task, n), part in frame.groupby(["task", "rows"]):
        null = part[part.kind == "null"].sort_values("model")
        print(f"{task} {n} rows, null: alarms before {null.before_alarm.sum()} / after {null.after_alarm.sum()} of "
              f"{null.batches.sum()} (beyond chance {null.before_beyond.sum()} / {null.after_beyond.sum()}); per "
              f"model before {list(null.before_alarm)} after {list(null.after_alarm)}; reference better by "
              f"{[round(100 * v, 1) for v in null.reference_better_by]}%")
        for strength, worse in part[part.kind == "worse"].groupby("strength"):
            print(f"    worse {strength}: alarms before {worse.before_alarm.sum()} / after "
                  f"{worse.after_alarm.sum()} of {worse.batches.sum()}")


def parser(description: str, *, tasks: str, models: int, first_model: int, work: str, out: str
           ) -> argparse.ArgumentParser:
    """The options this measurement and ``estimated_offset.py`` share, with their defaults."""
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", default=tasks)
    p.add_argument("--models", type=int, default=models)
    p.add_argument("--first-model", type=int, default=first_model)
    p.add_argument("--batches", type=int, default=300)
    p.add_argument("--sizes", default="50,100,200")
    p.add_argument("--time-budget", type=float, default=8)
    p.add_argument("--work", type=Path, default=Path(work))
    p.add_argument("--out", type=Path, default=Path(out))
    return p


def run(args: argparse.Namespace, one: Callable[[str, int, Any], Any], count: Callable[[Any], list[dict[str, Any]]],
        summed: Callable[[list[dict[str, Any]]], None], said: Callable[[dict[str, Any]], str]) -> None:
    """Each task's models in turn: ``one`` model's batches, ``count``ed, each model's lines appended to
    ``args.out`` as it ends and said in a line (``said``), then ``summed`` up."""
    args.sizes = [int(s) for s in args.sizes.split(",")]
    args.work.mkdir(parents=True, exist_ok=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    warnings.simplefilter("ignore")
    summary: list[dict[str, Any]] = []
    for task in args.tasks.split(","):
        for seed in range(args.first_model, args.first_model + args.models):
            start = time.time()
            got = count(one(task, seed, args))
            summary += got
            with args.out.open("a") as f:
                f.writelines(json.dumps(r) + "\n" for r in got)
            print(f"{task} model {seed}: {said(got[0])}, {time.time() - start:.0f} s", flush=True)
    summed(summary)


def main() -> None:
    p = parser(__doc__ or "", tasks="regression,binary", models=6, first_model=1, work="/tmp/reference_offset",
               out="bench/results/reference_offset.jsonl")
    p.add_argument("--worse", type=int, default=100)
    run(p.parse_args(), one_model, counts, table,
        lambda r: f"{r['metric']} reference better by {100 * r['reference_better_by']:.1f}% ({r['reference_rows']} rows)")


if __name__ == "__main__":
    main()
