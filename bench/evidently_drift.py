"""Evidently's column drift verdicts on reference/current pairs, for bench/monitoring.py (side by side).

Runs inside Evidently's own virtual environment (bench/.venv-evidently, made by bench/monitoring.py), never
the project's: ``python bench/evidently_drift.py JOB.json OUT.json``. JOB lists pairs of Parquet files with the
column kinds; OUT gets, per pair, each column's method, value, threshold and verdict, the dataset-level share
and the seconds Evidently's Report.run took (imports and file reading excluded).
"""

from __future__ import annotations

import json
import sys
import time

import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset

P_VALUE_METHODS = ("K-S", "Kolmogorov", "chi-square", "Z-test", "proportion")


def drifted(method: str, value: float, threshold: float) -> bool:
    """p-value tests drift below their threshold; distances from it on (Evidently's convention)."""
    if any(m.lower() in method.lower() for m in P_VALUE_METHODS):
        return value < threshold
    return value >= threshold


def run_pair(pair: dict) -> dict:
    ref, cur = pd.read_parquet(pair["reference"]), pd.read_parquet(pair["current"])
    dd = DataDefinition(numerical_columns=pair["numerical"] or None, categorical_columns=pair["categorical"] or None,
                        text_columns=pair["text"] or None)
    start = time.perf_counter()
    snap = Report([DataDriftPreset()]).run(Dataset.from_pandas(cur, data_definition=dd),
                                           Dataset.from_pandas(ref, data_definition=dd))
    seconds = time.perf_counter() - start
    columns, share = {}, None
    for m in snap.dict()["metrics"]:
        cfg = m["config"]
        if cfg["type"].endswith("ValueDrift"):
            value = float(m["value"])
            columns[cfg["column"]] = {"method": cfg["method"], "value": value, "threshold": cfg["threshold"],
                                      "drifted": drifted(cfg["method"], value, cfg["threshold"])}
        elif cfg["type"].endswith("DriftedColumnsCount"):
            share = m["value"]["share"]
    return {"name": pair["name"], "columns": columns, "share": share, "dataset_drift": share is not None and share >= 0.5,
            "seconds": seconds}


def main() -> None:
    with open(sys.argv[1]) as f:
        job = json.load(f)
    out = []
    for pair in job["pairs"]:
        try:
            out.append(run_pair(pair))
        except Exception as e:  # one pair failing must not lose the others' results
            out.append({"name": pair["name"], "error": f"{type(e).__name__}: {str(e)[:300]}"})
    with open(sys.argv[2], "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main()
