"""The Spark engine from the command line: audit and monitor on Spark, the engine chosen for the user when a
table is too large for memory, and bad input (no files, a master that does not answer, a column Spark cannot
read) ending in one line and exit 2. (train with engine: spark in a YAML config: test_spark_cluster.py.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from mlengineer.errors import ConfigError

from .conftest import run_cli
from .spark_support import customers, with_issues, write_parts

pyspark = pytest.importorskip("pyspark")


def _one_line_error(r: subprocess.CompletedProcess[str]) -> str:
    assert r.returncode == 2, (r.stdout[-1000:], r.stderr[-2000:])
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in r.stderr, r.stderr[-2000:]
    return lines[0]


# -- fast: refused before any Spark work -------------------------------------------------------------------
def test_engine_spark_in_the_python_api_points_to_the_spark_entry_point() -> None:
    import mlengineer

    with pytest.raises(ConfigError, match="train_spark"):
        mlengineer.train(customers(50), "churn", engine="spark", track=False)


def test_spark_refuses_options_it_cannot_honour_before_starting() -> None:
    from mlengineer.spark.train import train_spark

    with pytest.raises(ConfigError, match="families are linear, xgboost; catboost"):
        train_spark("x.parquet", "y", families=["catboost"])
    with pytest.raises(ConfigError, match="calibration_fraction"):
        train_spark("x.parquet", "y", calibration_fraction=0.1)


def test_choosing_the_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlengineer.spark.engine import choose_engine
    from mlengineer.spark.session import parse_spark_conf

    data = tmp_path / "t.csv"
    customers(200).to_csv(data, index=False)
    assert choose_engine("auto", str(data), command="train") == ("local", "")
    monkeypatch.setenv("MLENGINEER_MEMORY_SHARE", "1e-9")
    engine, why = choose_engine("auto", str(data), command="train")
    assert engine == "spark" and "t.csv takes about" in why and "running on Spark" in why
    assert choose_engine("local", str(data), command="train") == ("local", "")
    with pytest.raises(ConfigError, match="--engine must be"):
        choose_engine("gpu", str(data), command="train")
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_spark_conf(["spark.executor.memory"])
    assert parse_spark_conf(["spark.executor.memory = 4g", "a=b=c"]) == {"spark.executor.memory": "4g", "a": "b=c"}


def test_the_size_of_a_parquet_table_in_memory_is_estimated_from_its_footer(tmp_path: Path) -> None:
    """Dictionary-encoded text is tiny on disk: the estimate that decides the engine must still come near
    what pandas holds once the table is read (the footer's own byte count fell 3-4x short)."""
    from mlengineer.data.load import _in_memory_bytes

    df = customers(20_000)
    write_parts(df, tmp_path / "parts", parts=2)
    held = pd.read_parquet(tmp_path / "parts").memory_usage(deep=True).sum()
    assert 0.7 * held <= _in_memory_bytes(tmp_path / "parts") <= 1.5 * held


def test_bad_input_fails_fast_without_starting_spark(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "_SUCCESS").write_text("")
    line = _one_line_error(run_cli("train", str(tmp_path / "empty"), "--target", "y", "--engine", "spark"))
    assert "holds no data files" in line
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"a": [1, 2], "y": [0, 1], "t": pa.array([1, 2], type=pa.time64("us"))}),
                   tmp_path / "bad.parquet")
    line = _one_line_error(run_cli("audit", str(tmp_path / "bad.parquet"), "--engine", "spark"))
    assert "Column 't'" in line and "Spark cannot read" in line
    from .conftest import free_port

    customers(50).to_parquet(tmp_path / "good.parquet")
    line = _one_line_error(run_cli("audit", str(tmp_path / "good.parquet"), "--engine", "spark", "--spark-master",
                                   f"spark://127.0.0.1:{free_port()}", timeout=60))
    assert "does not answer" in line and "--spark-master" in line


def test_too_large_for_memory_without_spark_says_what_to_install(tmp_path: Path) -> None:
    """Where the spark extra is missing, a table too large for memory gets the command to run."""
    stub = tmp_path / "stub" / "pyspark"
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text("raise ImportError('pyspark is not installed')\n")
    data = tmp_path / "big.csv"
    customers(300).to_csv(data, index=False)
    r = run_cli("train", str(data), "--target", "churn", env={"MLENGINEER_MEMORY_SHARE": "1e-9",
                                                              "PYTHONPATH": str(stub.parent)})
    line = _one_line_error(r)
    assert "pip install 'mlengineer[spark]'" in line and "--engine spark" in line and "big.csv" in line


# -- slow: real Spark in a subprocess ----------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.spark
@pytest.mark.long  # a Spark session of its own through the CLI: 'make test-long'
def test_a_session_started_for_a_command_is_stopped_after_an_error() -> None:
    code = (
        "from pyspark.sql import SparkSession\n"
        "from mlengineer.errors import DataError\n"
        "from mlengineer.spark.session import spark_session\n"
        "try:\n"
        "    with spark_session('local[3]') as spark:\n"
        "        assert spark.conf.get('spark.sql.shuffle.partitions') == '9'  # three per core\n"
        "        spark.range(3).count()\n"
        "        raise DataError('bad rows')\n"
        "except DataError:\n"
        "    pass\n"
        "assert SparkSession.getActiveSession() is None\n"
        "from pyspark import SparkContext\n"
        "assert SparkContext._active_spark_context is None\n"
        "print('stopped')\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "stopped" in r.stdout, r.stderr[-2000:]


@pytest.mark.slow
@pytest.mark.spark
@pytest.mark.long  # a Spark session of its own through the CLI: 'make test-long'
def test_audit_on_spark_chosen_for_a_table_too_large_for_memory(tmp_path: Path) -> None:
    """audit left to --engine auto on a table 'too large for memory' (the share set tiny) runs on Spark and
    finds what the local audit finds (profile on Spark: test_spark_data.py, in process)."""
    data = write_parts(with_issues(), tmp_path / "issues")
    r = run_cli("audit", str(data), "--target", "y", "--json", env={"MLENGINEER_MEMORY_SHARE": "1e-9"}, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    # under --json the notes go to stderr, so that stdout holds the JSON lines alone
    assert "issues takes about" in r.stderr and "running on Spark" in r.stderr, r.stderr[-2000:]
    assert "Read 3,030 rows x 10 columns" in r.stderr and "on Spark (PARQUET, 3 parts)" in r.stderr
    assert all(ln.startswith("{") for ln in r.stdout.splitlines() if ln.strip())
    found = {(f["check"], f["column"]) for f in map(json.loads, (ln for ln in r.stdout.splitlines()
                                                                  if ln.startswith("{")))}
    assert {("leakage_predictor", "leak"), ("duplicate_columns", "fee_copy"), ("missing_target", "y")} <= found


@pytest.mark.slow
@pytest.mark.spark
def test_monitor_on_spark(tmp_path: Path, churn_model_dir: Path, churn_csv: Path) -> None:
    rows = pd.read_csv(churn_csv)
    data = write_parts(rows, tmp_path / "new_rows", parts=2)
    r = run_cli("monitor", str(churn_model_dir), "--data", str(data), "--engine", "spark", "--json", timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    result = json.loads(r.stdout)
    assert result["current"]["rows"] == len(rows) and "on Spark" in result["current"]["source"]
    assert not result["alarms"].get("drift")  # the training rows themselves: nothing drifted
