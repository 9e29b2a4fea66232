"""Batch scoring on a real local Spark session gives the same predictions as local scoring, in order."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from .conftest import run_cli

pytest.importorskip("pyspark")
pytestmark = [pytest.mark.slow, pytest.mark.spark]


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_predict_engine_spark_matches_local(tmp_path: Path, salary_model_dir: Path, salaries_csv: Path,
                                            suffix: str) -> None:
    out = tmp_path / f"spark{suffix}"
    r = run_cli("predict", str(salary_model_dir), str(salaries_csv), "--engine", "spark", "--out", str(out),
                timeout=600)
    assert r.returncode == 0, r.stderr
    got = pd.read_csv(out) if suffix == ".csv" else pd.read_parquet(out)
    import mlengineer

    expected = mlengineer.load(salary_model_dir).predict_frame(pd.read_csv(salaries_csv))
    assert len(got) == len(expected) == 1500
    pd.testing.assert_series_equal(got["prediction"], expected["prediction"], rtol=1e-6, check_names=False)


def test_spark_needs_an_out_file(salary_model_dir: Path, salaries_csv: Path) -> None:
    r = run_cli("predict", str(salary_model_dir), str(salaries_csv), "--engine", "spark")
    assert r.returncode == 2 and "--out" in r.stderr


def test_spark_scoring_gives_the_same_ranges(tmp_path: Path, salary_model_dir: Path, salaries_csv: Path) -> None:
    out = tmp_path / "spark.parquet"
    r = run_cli("predict", str(salary_model_dir), str(salaries_csv), "--engine", "spark", "--interval", "0.8",
                "--out", str(out), timeout=600)
    assert r.returncode == 0, r.stderr
    got = pd.read_parquet(out)
    import mlengineer

    expected = mlengineer.load(salary_model_dir).predict_frame(pd.read_csv(salaries_csv), interval=0.8)
    for col in ("prediction", "lower", "upper"):
        pd.testing.assert_series_equal(got[col], expected[col], rtol=1e-6, check_names=False)


def test_spark_refuses_a_bad_coverage_before_starting(salary_model_dir: Path, salaries_csv: Path, tmp_path: Path) -> None:
    r = run_cli("predict", str(salary_model_dir), str(salaries_csv), "--engine", "spark", "--interval", "1.5",
                "--out", str(tmp_path / "p.parquet"))
    assert r.returncode == 2 and "coverage" in r.stderr and not (tmp_path / "p.parquet").exists()
