"""How honest the profile's "alone predicts target" interval is (data/alone.py): on many tables drawn from
one known relation, is the 95% interval about as wide as the estimate's own spread from table to table, on
400 rows as on 20,000? Writes a Markdown table for bench/RESULTS.md.

For each size and seed, a table with a pure-noise number column, a pure-noise category of 10 values and a
signal column (logistic for the binary target, linear for the regression one) is profiled. Per column:
the mean estimate over seeds, the standard deviation of the estimates (the spread a real interval should
match: 95% is about 1.96 sd either side), the mean half-width of the reported interval, their ratio (1 is
exact, above 1 conservative), and how often the interval holds the mean estimate.

    .venv/bin/python bench/profile_alone.py            # about 5 minutes on 2 cores
    .venv/bin/python bench/profile_alone.py --seeds 10 --sizes 400
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import pandas as pd

from mlengineer.data.profile import profile_table


def table(n: int, seed: int, kind: str) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    s = rng.normal(size=n)
    df = pd.DataFrame({"noise": rng.normal(size=n), "noise_category": rng.choice(list("abcdefghij"), n), "signal": s})
    if kind == "binary":
        df["y"] = np.where(rng.random(n) < 1 / (1 + np.exp(-(1.5 * s - 1.3))), "yes", "no")
    else:
        df["y"] = 0.6 * s + rng.normal(size=n)  # R² of the signal alone: 0.36 / 1.36 = 0.26
    return df


def run(sizes: list[int], seeds: int) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for kind in ("binary", "regression"):
        for n in sizes:
            start = time.perf_counter()
            got = np.array([[(c.target_score, c.target_low, c.target_high) for c in
                             profile_table(table(n, seed, kind), target="y", task_kind=kind).columns]
                            for seed in range(seeds)], dtype=float)
            seconds = (time.perf_counter() - start) / seeds
            for j, name in enumerate(("noise", "noise_category", "signal")):
                est, low, high = got[:, j, 0], got[:, j, 1], got[:, j, 2]
                mean, sd, half = est.mean(), est.std(ddof=1), ((high - low) / 2).mean()
                rows.append({"task": kind, "rows": n, "column": name, "mean estimate": round(mean, 3),
                             "sd over tables": round(sd, 3), "mean half-width": round(half, 3),
                             "half-width / 1.96 sd": round(half / (1.96 * sd), 2) if sd > 0 else float("nan"),
                             "holds the mean": f"{((low <= mean) & (high >= mean)).mean():.0%}",
                             "s per profile": round(seconds, 2)})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[400, 3000, 20000])
    ap.add_argument("--seeds", type=int, default=30)
    args = ap.parse_args()
    rows = run(args.sizes, args.seeds)
    load = os.getloadavg()[0]
    print(f"{time.strftime('%Y-%m-%d')}, load average {load:.1f}, {args.seeds} tables per size")
    heads = list(rows[0])
    print("| " + " | ".join(heads) + " |\n|" + "---|" * len(heads))
    for r in rows:
        print("| " + " | ".join(str(r[h]) for h in heads) + " |")


if __name__ == "__main__":
    main()
