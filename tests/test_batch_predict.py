"""Batch prediction streams files in chunks: the same answers as predicting the whole table at once, for every
input and output format, and nothing half-written when a chunk fails."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from .conftest import read_any, run_clis

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model(churn_model_dir: Path):  # type: ignore[no-untyped-def]
    import mlengineer

    return mlengineer.load(churn_model_dir)


@pytest.fixture(scope="module")
def table(churn_csv: Path) -> pd.DataFrame:
    return pd.read_csv(churn_csv).drop(columns=["churn"])


def _write(df: pd.DataFrame, path: Path) -> Path:
    name = path.name
    if name.endswith((".csv", ".csv.gz", ".csv.zst")):
        if name.endswith(".zst"):
            import zstandard

            path.write_bytes(zstandard.ZstdCompressor().compress(df.to_csv(index=False).encode()))
        else:
            df.to_csv(path, index=False)
    elif name.endswith(".parquet"):
        df.to_parquet(path, index=False, row_group_size=150)
    elif name.endswith(".jsonl"):
        df.to_json(path, orient="records", lines=True)
    elif name.endswith(".json"):
        df.to_json(path, orient="records")
    return path


def _read_out(path: Path) -> pd.DataFrame:
    if path.suffix == ".jsonl":
        return pd.read_json(path, lines=True, dtype=False)
    if path.suffix == ".json":
        return pd.read_json(path, orient="records", dtype=False)
    return read_any(path)


@pytest.mark.parametrize(("src", "dst"), [
    ("rows.csv", "pred.parquet"), ("rows.csv.gz", "pred.csv"), ("rows.csv.zst", "pred.jsonl"),
    ("rows.parquet", "pred.csv"), ("rows.jsonl", "pred.json"), ("rows.json", "pred.parquet"),
])
def test_chunked_answers_equal_whole_table_answers(model, table: pd.DataFrame, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                   src: str, dst: str) -> None:
    from mlengineer.serving.batch import predict_to_file

    path = _write(table, tmp_path / src)
    seen: list[tuple[int, int | None, str, int]] = []
    n = predict_to_file(model, path, tmp_path / dst, chunk_rows=150, progress=lambda *a: seen.append(a))
    assert n == len(table)
    got = _read_out(tmp_path / dst)
    want = model.predict_frame(table)
    assert list(got.columns) == list(want.columns)
    assert list(got["prediction"].astype(str)) == list(want["prediction"].astype(str))
    np.testing.assert_allclose(got["proba_yes"].astype(float), want["proba_yes"], atol=1e-6)
    assert len(seen) == -(-len(table) // 150)  # one report per chunk
    assert [s[3] for s in seen] == sorted(s[3] for s in seen) and seen[-1][3] == len(table)
    assert seen[-1][0] == seen[-1][1]  # the bar ends full
    assert not list(tmp_path.glob(f".{dst}*"))


def test_chunks_are_bounded(table: pd.DataFrame, tmp_path: Path) -> None:
    from mlengineer.data.chunks import open_chunks

    for name in ("rows.csv", "rows.parquet", "rows.jsonl"):
        path = _write(table, tmp_path / name)
        with ExitStack() as stack:
            sizes = [len(c) for c in open_chunks(path, chunk_rows=128, stack=stack).frames]
        assert max(sizes) <= 128 and sum(sizes) == len(table), name


def test_a_bad_value_in_a_later_chunk_names_the_rows_and_writes_nothing(model, table: pd.DataFrame,  # type: ignore[no-untyped-def]
                                                                         tmp_path: Path) -> None:
    from mlengineer.errors import SchemaError
    from mlengineer.serving.batch import predict_to_file

    bad = table.copy()
    bad["age"] = bad["age"].astype(object)
    bad.loc[650, "age"] = "forty"
    src = _write(bad, tmp_path / "rows.csv")
    out = tmp_path / "pred.parquet"
    with pytest.raises(SchemaError) as err:
        predict_to_file(model, src, out, chunk_rows=200)
    assert "rows.csv, row 651:" in str(err.value) and "'age'" in str(err.value) and "forty" in str(err.value)
    assert not out.exists() and not list(tmp_path.glob(".pred.parquet*"))


def test_predict_command_streams_into_a_file(churn_model_dir: Path, table: pd.DataFrame, tmp_path: Path) -> None:
    src = _write(table, tmp_path / "rows.parquet")
    out = tmp_path / "pred.csv"
    r, shown = run_clis(["predict", str(churn_model_dir), str(src), "--out", str(out)],  # side by side
                        ["predict", str(churn_model_dir), str(src)])
    assert r.returncode == 0, r.stderr
    assert f"Wrote {len(table):,} predictions" in r.stdout
    assert len(pd.read_csv(out)) == len(table)
    assert shown.returncode == 0 and "use --out FILE" in shown.stdout
    assert len([ln for ln in shown.stdout.splitlines() if ln.strip().startswith(("yes", "no"))]) == 50


def test_predict_refuses_damaged_files_and_its_own_input_in_one_line(churn_model_dir: Path, table: pd.DataFrame,
                                                                      tmp_path: Path) -> None:
    import gzip

    whole = gzip.compress(table.to_csv(index=False).encode())
    damaged = {"junk.parquet": b"PAR1garbage", "junk.csv.gz": b"not gzip at all",
               "cut.csv.gz": whole[: len(whole) // 2]}
    out = tmp_path / "pred.csv"
    for name, data in damaged.items():
        (tmp_path / name).write_bytes(data)
    rows = _write(table.head(20), tmp_path / "rows.csv")
    before = rows.read_bytes()
    # the commands side by side (each its own process): most of their seconds are their start
    *refused, same, bad, few = run_clis(
        *(["predict", str(churn_model_dir), str(tmp_path / name), "--out", str(out)] for name in damaged),
        ["predict", str(churn_model_dir), str(rows), "--out", str(rows)],
        ["predict", str(churn_model_dir), str(rows), "--interval", "1.5"],
        ["predict", str(churn_model_dir), str(rows)])
    for name, r in zip(damaged, refused, strict=True):
        assert r.returncode == 2, (name, r.stderr)
        assert "Traceback" not in r.stderr and f"Cannot read '{tmp_path / name}'" in r.stderr, r.stderr
        assert "damaged or cut short" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not out.exists() and not list(tmp_path.glob(".pred.csv*"))
    assert same.returncode == 2 and "is the data file itself" in same.stderr and rows.read_bytes() == before
    assert bad.returncode == 2 and "--interval" in bad.stderr and "rows.csv" not in bad.stderr, bad.stderr
    assert few.returncode == 0 and "use --out FILE" not in few.stdout  # all 20 rows shown: no hint to use --out
