"""The Spark audit says rows come sorted by the target as the in-memory audit does: in the files' order by name,
each file's rows in order, whatever order Spark packs the files into partitions (largest first)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from mlengineer.data.load import load_table
from mlengineer.data.quality import audit
from mlengineer.data.schema import infer_schema

pytest.importorskip("pyspark")

from .spark_support import customers, spark_fixture  # noqa: E402, F401

pytestmark = [pytest.mark.spark, pytest.mark.slow]


def _parts(df: pd.DataFrame, folder: Path, sizes: list[int]) -> Path:
    """``df`` in Parquet parts of these many rows, named in row order (the later parts the larger)."""
    folder.mkdir(parents=True)
    start = 0
    for i, n in enumerate(sizes):
        df.iloc[start:start + n].to_parquet(folder / f"part-{i:05d}.parquet", index=False)
        start += n
    return folder


def _sorted_said(path: Path, target: str) -> tuple[str | None, str | None]:
    """The sorted_by_target message of the Spark audit and of the in-memory audit of the same files."""
    from mlengineer.spark.profile import examine

    found = examine(str(path), target=target, findings=True).findings
    assert found is not None
    df = load_table(str(path))
    local = audit(df, infer_schema(df, target), task_kind="binary")
    said = [next((f.message for f in fs if f.check == "sorted_by_target"), None) for fs in (found, local)]
    return said[0], said[1]


@pytest.mark.long
def test_rows_sorted_by_the_target_across_parts_packed_largest_first(spark, tmp_path: Path) -> None:
    df = customers(600).sort_values("churn", kind="stable").reset_index(drop=True)
    df.loc[[5, 300, 590], "churn"] = None  # missing labels are passed over, as in memory
    # 100 rows of one class, then 200 holding the change of class, then 300: Spark reads part 2 first
    on_spark, in_memory = _sorted_said(_parts(df, tmp_path / "sorted", [100, 200, 300]), "churn")
    assert in_memory is not None
    assert on_spark == in_memory


def test_parts_sorted_each_but_not_as_a_table_are_not_called_sorted(spark, tmp_path: Path) -> None:
    df = customers(600)
    first = df.iloc[:100].sort_values("churn", kind="stable")  # no ... yes
    rest = df.iloc[100:].assign(churn="no")  # all no: in size order (rest first) the table would look sorted
    table = pd.concat([first, rest], ignore_index=True)
    assert table["churn"].iloc[:100].nunique() == 2
    on_spark, in_memory = _sorted_said(_parts(table, tmp_path / "unsorted", [100, 500]), "churn")
    assert in_memory is None
    assert on_spark is None


def test_label_runs_counts_each_file_in_order(spark, tmp_path: Path) -> None:
    from mlengineer.spark.audit import label_runs

    labels = ["a", "a", "b", "b", "a", "c", "c"]
    pd.DataFrame({"y": labels[:3]}).to_csv(tmp_path / "p0.csv", index=False)
    pd.DataFrame({"y": labels[3:]}).to_csv(tmp_path / "p1.csv", index=False)
    frame = spark.read.option("header", True).csv(str(tmp_path / "p*.csv"))
    assert label_runs(frame, "y") == 4  # a a b | b a c c


def test_a_csv_with_decimal_commas_is_read_as_in_memory_and_scored(spark, tmp_path: Path, churn_model_dir: Path,
                                                                  churn_csv: Path) -> None:
    from mlengineer.spark.read import check_source, read_table
    from mlengineer.spark.score import score_file

    df = pd.read_csv(churn_csv)
    numbers = [c for c in df.columns if c != "churn" and df[c].dtype.kind == "f"]
    assert numbers
    df.loc[3, numbers[0]] = None  # written as NA, pandas' missing-value word, among the numbers
    df["note"] = [f"{i},5 kg" for i in range(len(df))]  # text that holds a comma stays text
    euro = tmp_path / "euro.csv"
    df.to_csv(euro, sep=";", decimal=",", index=False, na_rep="NA")
    assert ",5 kg" in euro.read_text() and ";NA;" in euro.read_text()
    local = load_table(str(euro))
    table = read_table(spark, str(euro), found=check_source(str(euro)))
    assert "decimal comma" in table.how
    got = table.frame.toPandas()
    for c in [*numbers, "note"]:
        pd.testing.assert_series_equal(got[c], local[c], check_dtype=False, check_names=False)
    assert pd.isna(got.loc[3, numbers[0]]) and got[numbers[0]].dtype.kind == "f"
    # scored on Spark as the same rows written with decimal points
    assert score_file(churn_model_dir, str(euro), tmp_path / "euro-p.csv") == len(df)
    df.to_csv(tmp_path / "plain.csv", index=False)
    assert score_file(churn_model_dir, str(tmp_path / "plain.csv"), tmp_path / "plain-p.csv") == len(df)
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "euro-p.csv"), pd.read_csv(tmp_path / "plain-p.csv"))


def test_spark_scoring_reads_relative_picture_paths_from_the_table_s_folder(spark, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import mlengineer
    from mlengineer.spark.score import score_file

    from .test_images import picture_table

    train = tmp_path / "train"
    picture_table(train, 60).to_csv(train / "table.csv", index=False)
    bundle = tmp_path / "model"
    mlengineer.train(str(train / "table.csv"), "direction", time_budget=6, track=False, out=bundle)
    rows = tmp_path / "new"
    picture_table(rows, 20, seed=1).drop(columns=["direction"]).to_csv(rows / "rows.csv", index=False)
    monkeypatch.chdir(tmp_path)  # the pictures lie beside the table, not in the working folder
    assert score_file(bundle, str(rows / "rows.csv"), tmp_path / "p.csv") == 20
    want = mlengineer.load(bundle).predict_frame(load_table(str(rows / "rows.csv")))
    assert pd.read_csv(tmp_path / "p.csv")["prediction"].tolist() == want["prediction"].tolist()
