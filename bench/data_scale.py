"""Load, profile and audit a million rows: time and peak memory of the data stage.

Generates a table of 1,000,000 rows x 20 mixed columns (an id, numbers with and without missing values,
whole-number codes, categories of 4 to 300 values, yes/no, two date columns written as text, and a binary
target) into a temporary CSV (or Parquet) file, then, in a fresh process, reads it with ``load_table``,
infers the schema, profiles it against the target and audits it. Peak memory is the process's peak
resident size minus its size after imports, compared with the table's own in-memory size.

Run: ``.venv/bin/python bench/data_scale.py [--rows N] [--format csv|parquet]``. Aim: under 15 s and under
3x the table's in-memory size on 2 cores. Prints a Markdown row for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def make_table(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cities = np.array([f"city_{i:03d}" for i in range(300)])
    score = rng.normal(0, 1, n)
    days = pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 1500, n), unit="D")
    seen = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 10**7, n), unit="s")
    df = pd.DataFrame({
        "row_id": np.arange(n),
        "age": rng.integers(18, 90, n),
        "income": np.round(rng.lognormal(10, 1, n), 2),
        "score": score,
        "balance": np.where(rng.random(n) < 0.1, np.nan, rng.normal(1000, 300, n)),
        "ratio": rng.random(n),
        "visits": rng.poisson(3, n),
        "rating": rng.integers(1, 6, n),
        "temperature": np.round(rng.normal(15, 8, n), 1),
        "distance_km": np.round(rng.exponential(5, n), 3),
        "plan": rng.choice(["basic", "plus", "premium", "family"], n),
        "city": rng.choice(cities, n),
        "segment": rng.choice(list("ABCDEFGH"), n),
        "device": np.where(rng.random(n) < 0.05, None, rng.choice(["ios", "android", "web"], n)),
        "is_member": rng.choice(["yes", "no"], n),
        "signup_date": days.strftime("%Y-%m-%d"),
        "last_seen": seen.strftime("%Y-%m-%d %H:%M:%S"),
        "email_domain": rng.choice(["gmail.com", "yahoo.com", "outlook.com", "corp.example"], n),
        "channel_code": rng.integers(0, 8, n),
    })
    df["churn"] = np.where(rng.random(n) < 1 / (1 + np.exp(-(score - 1))), "yes", "no")
    return df


def _rss() -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def measure(path: str) -> dict:
    """Runs in a fresh process: the stage's timings and peak memory on the file at ``path``."""
    from mlengineer.data.load import load_table
    from mlengineer.data.profile import profile_table
    from mlengineer.data.quality import audit
    from mlengineer.data.schema import infer_schema

    base = _rss()
    c0 = time.process_time()
    t0 = time.perf_counter()
    df = load_table(path)
    t1 = time.perf_counter()
    schema = infer_schema(df, "churn")
    t2 = time.perf_counter()
    profile = profile_table(df, target="churn", schema=schema, task_kind="binary")
    t3 = time.perf_counter()
    findings = audit(df, schema, task_kind="binary")
    t4 = time.perf_counter()
    cpu = time.process_time() - c0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    data_bytes = int(df.memory_usage(deep=True).sum())
    return {
        "rows": len(df), "columns": df.shape[1], "load_s": t1 - t0, "schema_s": t2 - t1, "profile_s": t3 - t2,
        "audit_s": t4 - t3, "total_s": t4 - t0, "cpu_s": cpu, "data_mb": data_bytes / 2**20,
        "peak_over_base_mb": (peak - base) / 2**20, "ratio": (peak - base) / data_bytes,
        "findings": [f.line() for f in findings], "profiled_columns": len(profile.columns),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--format", choices=("csv", "parquet"), default="csv")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # the child process's entry point
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure)))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"table.{args.format}"
        start = time.perf_counter()
        df = make_table(args.rows)
        if args.format == "csv":
            import pyarrow as pa
            import pyarrow.csv as pacsv

            pacsv.write_csv(pa.Table.from_pandas(df, preserve_index=False), path)
        else:
            df.to_parquet(path, index=False)
        del df
        print(f"generated {args.rows:,} rows in {time.perf_counter() - start:.1f} s "
              f"({path.stat().st_size / 2**20:.0f} MiB {args.format})", file=sys.stderr)
        out = subprocess.run([sys.executable, __file__, "--measure", str(path)], capture_output=True, text=True,
                             check=False, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    if out.returncode != 0:
        print(out.stderr, file=sys.stderr)
        return out.returncode
    r = json.loads(out.stdout.strip().splitlines()[-1])
    print(json.dumps({k: v for k, v in r.items() if k != "findings"}, indent=1))
    print("findings:", *r["findings"], sep="\n  ")
    print(f"\n| {time.strftime('%Y-%m-%d')} | {r['rows']:,} x {r['columns']} ({args.format}) | {r['load_s']:.1f} | "
          f"{r['schema_s']:.1f} | {r['profile_s']:.1f} | {r['audit_s']:.1f} | **{r['total_s']:.1f}** | "
          f"{r['cpu_s']:.1f} | {os.getloadavg()[0]:.1f} | "
          f"{r['data_mb']:.0f} | {r['peak_over_base_mb']:.0f} | **{r['ratio']:.2f}x** |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
