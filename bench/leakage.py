"""Target-leakage detection on the benchmark suite: no alarm on the 24 clean tasks, every injected leak found.

Reads each task's ``train.csv.gz`` from ../shared/bench (house_prices with empty fields as missing and the
literal NA kept, as its README says), infers the schema and runs the full audit with the task's kind. Then
injects one leaky column into six tasks, each a different way a leak looks in real data, and audits again:

- adult: a refund reason filled for 70% of the rows whose income is >50K, empty otherwise
- bank_marketing: the outcome spelled as text ("subscribed" / "declined")
- house_prices: an appraised value, the sale price times 1.02 plus 2% noise
- vehicle: a sensor reading that is the class's index plus a little noise
- wine_quality: a quality band (poor / average / good) cut from the quality score
- credit_g: the target unknown for 15% of rows, and a decision date filled exactly where it is known

Run: ``.venv/bin/python bench/leakage.py`` (about half a minute on 2 cores); ``--json PATH`` also writes the
results. Prints a Markdown table for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from mlengineer.data.leakage import LEAKAGE_CHECKS
from mlengineer.data.quality import audit
from mlengineer.data.schema import infer_schema

BENCH = Path(__file__).resolve().parent.parent.parent / "shared" / "bench"


def read_task(name: str) -> tuple[pd.DataFrame, dict]:
    task = json.loads((BENCH / name / "task.json").read_text())
    kw = {"keep_default_na": False, "na_values": [""]} if name == "house_prices" else {}
    return pd.read_csv(BENCH / name / "train.csv.gz", **kw), task


def _adult(df: pd.DataFrame, target: str, rng: np.random.Generator) -> pd.DataFrame:
    rich = df[target].astype(str).str.contains(">50K").to_numpy()
    df["refund_reason"] = np.where(rich & (rng.random(len(df)) < 0.7), "contract closed", None)
    return df


def _bank(df: pd.DataFrame, target: str, rng: np.random.Generator) -> pd.DataFrame:
    df["call_result"] = df[target].map({"yes": "subscribed", "no": "declined"})
    return df


def _house(df: pd.DataFrame, target: str, rng: np.random.Generator) -> pd.DataFrame:
    price = df[target].to_numpy(dtype=float)
    df["appraised_value"] = np.round(price * 1.02 + rng.normal(0, 0.02 * price), -2)
    return df


def _vehicle(df: pd.DataFrame, target: str, rng: np.random.Generator) -> pd.DataFrame:
    index = {c: i for i, c in enumerate(sorted(df[target].unique()))}
    df["sensor_reading"] = df[target].map(index).to_numpy(dtype=float) + rng.normal(0, 0.1, len(df))
    return df


def _wine(df: pd.DataFrame, target: str, rng: np.random.Generator) -> pd.DataFrame:
    q = df[target].to_numpy()
    df["quality_band"] = np.where(q <= 4, "poor", np.where(q <= 6, "average", "good"))
    return df


def _credit(df: pd.DataFrame, target: str, rng: np.random.Generator) -> pd.DataFrame:
    unknown = rng.random(len(df)) < 0.15
    df[target] = df[target].where(~unknown)
    days = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 365, len(df)), unit="D")
    df["decision_date"] = np.where(unknown, None, days.strftime("%Y-%m-%d"))
    return df


INJECTIONS: dict[str, tuple[str, str, Callable[[pd.DataFrame, str, np.random.Generator], pd.DataFrame]]] = {
    "adult": ("refund_reason", "filled for 70% of >50K rows only", _adult),
    "bank_marketing": ("call_result", "the target spelled as text", _bank),
    "house_prices": ("appraised_value", "target x 1.02 + 2% noise", _house),
    "vehicle": ("sensor_reading", "class index + small noise", _vehicle),
    "wine_quality": ("quality_band", "band cut from the target", _wine),
    "credit_g": ("decision_date", "filled only where the target is known", _credit),
}


def run_audit(df: pd.DataFrame, task: dict) -> tuple[list, float]:
    start = time.perf_counter()
    schema = infer_schema(df, task["target"])
    findings = audit(df, schema, task_kind=task["task"])
    return findings, time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    names = sorted(p.name for p in BENCH.iterdir() if (p / "task.json").exists())
    clean_rows, injected_rows = [], []
    false_alarms = 0
    for name in names:
        df, task = read_task(name)
        findings, seconds = run_audit(df, task)
        leaks = [f for f in findings if f.check in LEAKAGE_CHECKS]
        false_alarms += len(leaks)
        others = Counter(f.check for f in findings if f.check not in LEAKAGE_CHECKS)
        clean_rows.append({"task": name, "rows": len(df), "columns": df.shape[1], "seconds": round(seconds, 2),
                           "leakage": [f.line() for f in leaks],
                           "other": dict(sorted(others.items())),
                           "warnings": [f.line() for f in findings if f.severity != "info" and f not in leaks]})
        print(f"clean    {name:27s} {seconds:5.2f}s leakage alarms: {len(leaks)}", file=sys.stderr)
    detected = 0
    for name, (column, how, inject) in INJECTIONS.items():
        df, task = read_task(name)
        df = inject(df.copy(), task["target"], np.random.default_rng(0))
        findings, seconds = run_audit(df, task)
        leaks = [f for f in findings if f.check in LEAKAGE_CHECKS]
        hit = [f for f in leaks if f.column == column]
        wrong = [f for f in leaks if f.column != column]
        detected += bool(hit)
        false_alarms += len(wrong)
        injected_rows.append({"task": name, "column": column, "how": how, "detected": bool(hit),
                              "check": hit[0].check if hit else None, "message": hit[0].message if hit else None,
                              "other_alarms": [f.line() for f in wrong], "seconds": round(seconds, 2)})
        print(f"injected {name:27s} {seconds:5.2f}s {column}: {'found' if hit else 'MISSED'}", file=sys.stderr)

    print(f"\nMachine: {platform.machine()}, {platform.python_version()}; "
          f"date {time.strftime('%Y-%m-%d')}\n")
    print("| task | injected column | how | detected | check | what the audit says |")
    print("|---|---|---|---|---|---|")
    for r in injected_rows:
        print(f"| {r['task']} | {r['column']} | {r['how']} | {'yes' if r['detected'] else 'NO'} | {r['check']} | "
              f"{r['message']} |")
    print("\n| task | rows | leakage alarms | audit s | other findings (check: count) |")
    print("|---|---|---|---|---|")
    for r in clean_rows:
        other = ", ".join(f"{k}: {v}" for k, v in r["other"].items()) or "none"
        print(f"| {r['task']} | {r['rows']:,} | {len(r['leakage'])} | {r['seconds']} | {other} |")
    print(f"\nInjected leaks found: {detected} of {len(INJECTIONS)}; leakage alarms on clean columns: {false_alarms}.")
    print("\nWarnings on the clean tasks:")
    for r in clean_rows:
        for w in r["warnings"]:
            print(f"- {r['task']}: {w}")
    if args.json:
        Path(args.json).write_text(json.dumps({"clean": clean_rows, "injected": injected_rows}, indent=1))
    return 0 if detected == len(INJECTIONS) and false_alarms == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
