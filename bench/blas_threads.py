"""BLAS's own threads against one, for the matrix products a training makes (issue 16).

    .venv/bin/python bench/blas_threads.py              # a logistic regression, one fit and two side by side
    .venv/bin/python bench/blas_threads.py --search 30  # and the linear family's search, 30 s, both ways

A training holds BLAS at one thread (``mlengineer.training.models.threads``); ``--search`` trains with that hold
undone (``blas_threads`` back to two inside the search) to count the candidates each way.
"""

from __future__ import annotations

import argparse
import os
import threading
import time

import numpy as np
import pandas as pd
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits


def fits(X: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    def fit() -> None:
        LogisticRegression(C=1.0, max_iter=300).fit(X, y)

    t = time.perf_counter()
    fit()
    one = time.perf_counter() - t
    pair = [threading.Thread(target=fit) for _ in range(2)]  # two folds fitted side by side
    t = time.perf_counter()
    for th in pair:
        th.start()
    for th in pair:
        th.join()
    return one, time.perf_counter() - t


def search(budget: float, threads: int) -> int:
    import mlengineer
    from mlengineer.training.models import threads as hold

    os.environ["MLENGINEER_COST_CACHE"] = "0"  # each search measures its own costs: a first run both ways
    X, y = make_classification(20000, 40, n_informative=20, n_classes=5, random_state=0)
    df = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])]).assign(y=y)
    saved = hold.blas_threads
    if threads != 1:  # the hold undone: the search runs at BLAS's own threads
        hold.blas_threads = lambda n: saved(threads if n == 1 else n)  # type: ignore[assignment]
    try:
        model = mlengineer.train(df, "y", time_budget=budget, seed=0, track=False, families=["linear"])
    finally:
        hold.blas_threads = saved
    return len(model.metadata["leaderboard"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--search", type=float, default=0, help="also the linear family's search, this many seconds")
    args = ap.parse_args()
    X, y = make_classification(20000, 60, n_informative=20, n_classes=5, random_state=0)
    print("| BLAS threads | one fit s | two side by side s |\n|---|---|---|")
    for n in (2, 1, 2, 1):
        with threadpool_limits(n, user_api="blas"):
            one, two = fits(X, y)
        print(f"| {n} | {one:.2f} | {two:.2f} |", flush=True)
    if args.search:
        for n in (2, 1):
            print(f"search at BLAS {n}: {search(args.search, n)} candidates in {args.search:g} s", flush=True)


if __name__ == "__main__":
    main()
