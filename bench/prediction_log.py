"""The prediction log's flush: how long it takes, and how long it keeps a request waiting on the server.

    .venv/bin/python bench/prediction_log.py                     # 1,250 one-row requests a flush, 7 rounds
    .venv/bin/python bench/prediction_log.py --requests 5000

A served request only hands its columns to ``PredictionLog.append``; the writer thread turns what gathered
into one Parquet file every few seconds. Where that thread holds the interpreter's lock, the event loop
that answers requests waits. This builds the entries one-row requests of tests/fixtures/churn_800.csv leave
(as the server validated them: numbers as float64 arrays, categories and dates as lists of text; the label
and two probabilities), then flushes them while a ticker thread sleeps 0.2 ms at a time and records how
late it wakes: its longest lateness during the flush is the longest a request would have waited for the
lock. Median of ``--rounds`` rounds (after one warm-up round) of the flush's time and of that longest wait.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent


def fill(log: object, frame: pd.DataFrame, n: int) -> None:
    rows = frame.sample(n=n, replace=True, random_state=0).to_dict(orient="records")
    for i, r in enumerate(rows):
        columns = {"age": np.array([float(r["age"])]), "plan": [r["plan"]], "monthly_fee": np.array([r["monthly_fee"]]),
                   "tenure_months": np.array([float(r["tenure_months"])]), "signup_date": [r["signup_date"]]}
        p = 0.1 + 0.8 * (i % 7) / 7
        outputs = {"prediction": np.array(["yes" if p > 0.5 else "no"], dtype=object),
                   "proba_no": np.array([1 - p]), "proba_yes": np.array([p])}
        log.append(columns=columns, outputs=outputs, n_rows=1, request_id=f"{i:032x}",  # type: ignore[attr-defined]
                   endpoint="invocations", model="churn", version="1")


def one_round(log: object, frame: pd.DataFrame, n: int) -> tuple[float, float]:
    fill(log, frame, n)
    late: list[float] = []
    stop = threading.Event()

    def tick() -> None:
        while not stop.is_set():
            t = time.perf_counter()
            time.sleep(0.0002)
            late.append(time.perf_counter() - t - 0.0002)

    ticker = threading.Thread(target=tick)
    ticker.start()
    time.sleep(0.05)
    before = len(late)
    t0 = time.perf_counter()
    log.flush()  # type: ignore[attr-defined]
    flush = time.perf_counter() - t0
    stop.set()
    ticker.join()
    return 1000 * flush, 1000 * max(late[before:] or [0.0])


def main() -> None:
    from mlengineer.monitoring.prediction_log import PredictionLog

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=1250)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    frame = pd.read_csv(ROOT / "tests" / "fixtures" / "churn_800.csv")
    with tempfile.TemporaryDirectory() as d:
        log = PredictionLog(d)
        one_round(log, frame, args.requests)  # warm-up: imports, Parquet's first file
        got = [one_round(log, frame, args.requests) for _ in range(args.rounds)]
    flush, wait = np.median([g[0] for g in got]), np.median([g[1] for g in got])
    print(f"{args.requests} one-row requests a flush, median of {args.rounds} rounds: flush {flush:.1f} ms, "
          f"longest wait of a ticking thread during it {wait:.1f} ms (rounds: "
          + ", ".join(f"{f:.1f}/{w:.1f}" for f, w in got) + ")")


if __name__ == "__main__":
    main()
