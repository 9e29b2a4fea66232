"""Spark reads a table as training in memory reads it: numbers written with thousands dots in a comma-separated
CSV (1.234.567) are numbers, and the read line says so; the bundle records them, so that ``mlengineer predict``
and Spark scoring read a later file (whose 512.345 alone could be a decimal point) as training did; a column
given a categorical role keeps its text as written; a misspelt --drop names the table's columns and the
closest name, before Spark starts where the file's header tells. JSON's columns come in the order the local
reader gives them (the file's, objects flattened as it flattens them), not in Spark's alphabetical order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlengineer.errors import DataError

from .conftest import run_cli

pytest.importorskip("pyspark")

from .spark_support import spark_fixture  # noqa: E402, F401

pytestmark = [pytest.mark.spark]

#: parcel codes written with dots, which a categorical role keeps as text
PARCELS = ["118.951.736", "12.345", "7.000.001", "45.600"]


def _dots(v: int) -> str:
    return f"{v:,}".replace(",", ".")


def _houses(n: int, low: int, high: int, seed: int) -> pd.DataFrame:
    """Houses whose price (written with thousands dots) sets the target; a parcel code of dotted digits."""
    rng = np.random.default_rng(seed)
    price = rng.integers(low, high, n)
    rooms = rng.integers(1, 6, n)
    return pd.DataFrame({"price": [_dots(v) for v in price], "rooms": rooms, "parcel": rng.choice(PARCELS, n),
                         "y": price / 1000 + 1000 * rooms + rng.normal(0, 100, n)})


def test_a_categorical_role_keeps_dotted_codes_as_text_and_thousands_dots_are_numbers(spark, tmp_path: Path
                                                                                     ) -> None:
    from mlengineer.data.formats import written_marks
    from mlengineer.data.load import load_table
    from mlengineer.spark.read import check_source, read_table

    path = tmp_path / "houses.csv"
    df = _houses(40, 100_000, 9_000_000, seed=0)
    df["parcel"] = np.where(np.arange(40) % 2, "12.345", "45.600")  # each alone could be a decimal number
    df.to_csv(path, index=False)
    marks = written_marks(None, {"parcel": "categorical"})
    table = read_table(spark, str(path), found=check_source(str(path), marks))
    got, local = table.frame.toPandas(), load_table(path, marks=marks)
    assert table.marks == {"thousands_dots": ["price"]} and "dots as thousands marks in 'price'" in table.how
    assert got["price"].tolist() == local["price"].tolist() == [float(p.replace(".", "")) for p in df["price"]]
    assert got["parcel"].tolist() == local["parcel"].tolist() == df["parcel"].tolist()  # '45.600', not 45.6
    plain = read_table(spark, str(path)).frame.toPandas()  # no role: Spark reads the codes as numbers
    assert plain["parcel"].dtype == np.float64


@pytest.mark.slow  # trains on Spark and predicts through the command
def test_spark_trains_on_thousands_dots_and_both_ways_of_scoring_read_them_as_training_did(
        spark, tmp_path: Path) -> None:
    from mlengineer.spark.score import score_file
    from mlengineer.spark.train import train_spark

    _houses(300, 100_000, 9_000_000, seed=0).to_csv(tmp_path / "houses.csv", index=False)
    model = train_spark(str(tmp_path / "houses.csv"), "y", time_budget=8, families=["linear"], track=False,
                        out=tmp_path / "model", column_roles={"parcel": "categorical"})
    assert model.metadata["read_marks"] == {"thousands_dots": ["price"]}
    assert "dots as thousands marks in 'price'" in model.metadata["spark"]["read"]
    assert model.schema["price"].role.value == "numeric" and "price" in model.plan.feature_columns
    assert model.schema["parcel"].role.value == "categorical"
    assert sorted(model.schema["parcel"].categories or []) == sorted(PARCELS)  # as written: 45.600 is no 45.6
    # a later file whose prices have one dot each (512.345): read with training's thousands dots
    new = _houses(60, 100_000, 999_999, seed=1)
    new.drop(columns=["y"]).to_csv(tmp_path / "new.csv", index=False)
    r = run_cli("predict", str(tmp_path / "model"), str(tmp_path / "new.csv"), "--out", str(tmp_path / "local.csv"))
    assert r.returncode == 0, r.stderr[-2000:]
    assert score_file(tmp_path / "model", str(tmp_path / "new.csv"), tmp_path / "spark.csv", say=None,
                      notes=None) == 60
    local, on_spark = pd.read_csv(tmp_path / "local.csv"), pd.read_csv(tmp_path / "spark.csv")
    np.testing.assert_allclose(on_spark["prediction"], local["prediction"], rtol=1e-9)
    # each 1,000 of price adds 1 to the target: a 512.345 read as 512.345 would add nothing
    price = new["price"].str.replace(".", "").astype(float)
    slope = np.polyfit(price / 1000, local["prediction"] - 1000 * new["rooms"], 1)[0]
    assert 0.8 < slope < 1.2, slope
    # monitoring on Spark reads the file as training did too: 512.345 is 512,345, within training's range
    from mlengineer.spark.monitor import monitor_spark

    _, result = monitor_spark(str(tmp_path / "model"), str(tmp_path / "new.csv"))
    seen = next(c for c in result["drift"]["columns"] if c["column"] == "price")["summary"]["current"]
    assert seen["min"] == price.min() and seen["max"] == price.max(), seen


def test_a_misspelt_drop_on_spark_names_the_columns_and_the_closest(spark, tmp_path: Path) -> None:
    from mlengineer.spark.train import train_spark

    _houses(30, 100_000, 9_000_000, seed=0).to_csv(tmp_path / "houses.csv", index=False)
    r = run_cli("train", str(tmp_path / "houses.csv"), "--target", "y", "--engine", "spark", "--drop", "prise",
                cwd=tmp_path)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 2 and len(lines) == 1, r.stderr[-2000:]
    assert "--drop names the column 'prise'" in lines[0] and "did you mean 'price'?" in lines[0]
    assert "its columns are: price, rooms, parcel, y" in lines[0]
    assert not (tmp_path / "mlruns.db").exists()  # found from the header: no store, no Spark
    # JSON tells its columns only once read: the same words, from Spark's columns, and still no store
    _houses(30, 100_000, 9_000_000, seed=0).to_json(tmp_path / "houses.jsonl", orient="records", lines=True)
    store = tmp_path / "runs.db"
    with pytest.raises(DataError, match=r"--keep names the column 'Rooms', which the data does not have \(did "
                                        r"you mean 'rooms'\?\); its columns are: ") as e:
        train_spark(str(tmp_path / "houses.jsonl"), "y", keep=["Rooms"], time_budget=8,
                    tracking_uri=f"sqlite:///{store}")
    assert sorted(str(e.value).split(": ")[-1].rstrip(".").split(", ")) == ["parcel", "price", "rooms", "y"]
    assert not store.exists()


def _late_keys(n: int) -> list[dict]:
    """Records whose keys are not in alphabetical order, an object's among them; some keys are first seen only
    after the first record (two far into the file), one is an object in some rows and a number in another (kept
    whole, as text)."""
    rows: list[dict] = []
    for i in range(n):
        row: dict = {"zone": f"z{i % 3}", "user": {"name": f"u{i}", "home": {"zip": str(i), "city": "c"}, "age": i},
                     "amount": i * 1.5, "tags": [i, i + 1]}
        if i >= 1:
            row["mid"] = i
            row["user"]["extra"] = i % 2
        if i >= n - 5:
            row["beta_late"] = "b"
            row["alpha_later"] = i
        row["shape"] = 7 if i == 2 else {"w": i, "h": 1}
        rows.append(row)
    return rows


def test_spark_reads_json_with_its_columns_in_the_files_order_as_the_local_reader_does(spark, tmp_path: Path
                                                                                       ) -> None:
    import json

    from mlengineer.data.load import load_table
    from mlengineer.spark.read import check_source, read_table

    rows = _late_keys(1200)  # about 150 KiB: the late keys lie beyond the first look at the file
    lines, document = tmp_path / "rows.jsonl", tmp_path / "rows.json"
    lines.write_text("".join(json.dumps(r) + "\n" for r in rows))
    document.write_text(json.dumps(rows))
    expected = {  # JSON Lines: objects flattened in place; a document: each record's plain keys before its objects
        lines: ["zone", "user.name", "user.age", "user.home.zip", "user.home.city", "user.extra", "amount", "tags",
                "shape", "mid", "beta_late", "alpha_later"],
        document: ["zone", "amount", "tags", "shape", "user.name", "user.home.zip", "user.home.city", "user.age",
                   "mid", "user.extra", "beta_late", "alpha_later"]}
    for path, columns in expected.items():
        local = load_table(path)
        table = read_table(spark, str(path), found=check_source(str(path)))
        assert list(local.columns) == columns and table.frame.columns == columns, (path, table.frame.columns)
    got = table.frame.toPandas()  # the values under each name are the local reader's
    assert got["user.extra"].iloc[:3].fillna(-1).tolist() == [-1, 1, 0] and got["alpha_later"].notna().sum() == 5
    assert got["shape"].tolist()[1:3] == ['{"h": 1, "w": 1}', "7"]
    # the query's view 'data' holds them in that order too
    assert read_table(spark, str(lines), sql="SELECT * FROM data").frame.columns == expected[lines]


def test_spark_reads_a_folder_of_json_parts_in_the_first_parts_order(spark, tmp_path: Path) -> None:
    import gzip
    import json

    from mlengineer.data.load import load_table
    from mlengineer.spark.read import check_source, read_table

    folder = tmp_path / "parts"
    folder.mkdir()
    for j in range(2):  # compressed parts: the order is read from their text
        with gzip.open(folder / f"part-{j:05d}.jsonl.gz", "wt") as f:
            f.writelines(json.dumps({"z": i, "c": {"y": 1, "b": 2}, "a": "t"}) + "\n" for i in range(5))
    (folder / "_SUCCESS").write_text("")
    table = read_table(spark, str(folder), found=check_source(str(folder)))
    assert table.frame.columns == list(load_table(folder).columns) == ["z", "c.y", "c.b", "a"]
