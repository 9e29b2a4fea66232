"""Reading a CSV written with decimal commas against the same numbers written with decimal points.

Writes one-column tables of ``--rows`` rows in four spellings (``5395.73``, ``5395,73``, ``5.395,73``, and
``5395,73`` with a ``?`` every 50 rows), each between ``;`` fields, and times ``load_table`` on each, the best
of ``--repeat`` reads in this process. Run it under two checkouts to compare them:

    PYTHONPATH=<checkout>/src .venv/bin/python bench/decimal_comma.py --rows 1000000
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def tables(rows: int, folder: Path) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    values = rng.uniform(0, 10_000, rows).round(2)
    other = rng.integers(0, 100, rows)
    point = [f"{v:.2f}" for v in values]
    comma = [p.replace(".", ",") for p in point]
    grouped = [f"{v:,.2f}".replace(",", "_").replace(".", ",").replace("_", ".") for v in values]
    holed = [("?" if i % 50 == 0 else c) for i, c in enumerate(comma)]
    out = {}
    for name, cells in (("point 5395.73", point), ("comma 5395,73", comma), ("thousands dots 5.395,73", grouped),
                        ("comma with ? every 50 rows", holed)):
        path = folder / f"{name.split()[0]}-{len(out)}.csv"
        pd.DataFrame({"x": cells, "k": other}).to_csv(path, sep=";", index=False)
        out[name] = path
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    from mlengineer.data.load import load_table

    with tempfile.TemporaryDirectory() as tmp:
        for name, path in tables(args.rows, Path(tmp)).items():
            best, kind = float("inf"), ""
            for _ in range(args.repeat):
                start = time.perf_counter()
                df = load_table(path)
                best = min(best, time.perf_counter() - start)
                kind = str(df["x"].dtype)
            print(f"{name:<28} {args.rows:>9,} rows  {best:6.3f} s  (x read as {kind})")


if __name__ == "__main__":
    main()
