"""Batch scoring on the run's shared local Spark session gives the same predictions and ranges as local
scoring, in the input's order; a bad coverage is refused before any Spark job. (The CLI's ``predict
--engine spark`` runs on the standalone cluster in test_spark_cluster.py.)"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from mlengineer.errors import MLEngineerError

from .conftest import run_cli

pytest.importorskip("pyspark")

from .spark_support import spark_fixture  # noqa: E402, F401

pytestmark = [pytest.mark.slow, pytest.mark.spark]


def test_spark_scoring_matches_local_prediction_and_ranges(spark, tmp_path: Path, salary_model_dir: Path,
                                                           salaries_csv: Path) -> None:
    import mlengineer
    from mlengineer.spark.score import score_file

    model = mlengineer.load(salary_model_dir)
    rows = pd.read_csv(salaries_csv)
    assert score_file(salary_model_dir, str(salaries_csv), tmp_path / "spark.csv", interval=0.8) == len(rows)
    got = pd.read_csv(tmp_path / "spark.csv")
    expected = model.predict_frame(rows, interval=0.8)
    assert len(got) == len(expected) == 1500
    for col in ("prediction", "lower", "upper"):
        pd.testing.assert_series_equal(got[col], expected[col], rtol=1e-6, check_names=False)
    # one Parquet file, no ranges asked for: the same predictions, no range columns
    assert score_file(salary_model_dir, str(salaries_csv), tmp_path / "spark.parquet") == len(rows)
    got = pd.read_parquet(tmp_path / "spark.parquet")
    assert "lower" not in got
    pd.testing.assert_series_equal(got["prediction"], expected["prediction"], rtol=1e-6, check_names=False)


def test_spark_refuses_a_bad_coverage_before_scoring(spark, salary_model_dir: Path, salaries_csv: Path,
                                                    tmp_path: Path) -> None:
    from mlengineer.spark.score import score_file

    with pytest.raises(MLEngineerError, match="coverage"):
        score_file(salary_model_dir, str(salaries_csv), tmp_path / "p.parquet", interval=1.5)
    assert not (tmp_path / "p.parquet").exists()


def test_spark_needs_an_out_file(salary_model_dir: Path, salaries_csv: Path) -> None:
    r = run_cli("predict", str(salary_model_dir), str(salaries_csv), "--engine", "spark")
    assert r.returncode == 2 and "--out" in r.stderr
