"""Mends from a second new-user bug hunt with messy files: workbooks of several sheets, labels written several
ways, conformal sets as JSON arrays, a log loss of -0, and what broke on odd encodings, duplicated names, title
rows, typed and untyped dates, long text cells, one-class and identifier targets."""

from __future__ import annotations

import datetime as dt
import json
import math
import warnings
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlengineer.data.chunks import open_chunks
from mlengineer.data.load import load_table
from mlengineer.data.quality import Finding, audit
from mlengineer.data.schema import infer_schema
from mlengineer.errors import DataError

from .conftest import run_cli, run_clis

rng = np.random.default_rng(3)


def _audit(df: pd.DataFrame, target: str | None, kind: str | None) -> list[Finding]:
    return audit(df, infer_schema(df, target), task_kind=kind)


def _chunked(source: str | Path) -> pd.DataFrame:
    with ExitStack() as stack:
        return pd.concat(list(open_chunks(source, chunk_rows=1000, stack=stack).frames), ignore_index=True)


@pytest.fixture
def book(tmp_path: Path) -> Path:
    """A workbook whose first sheet is a note, its second the table, its third empty."""
    p = tmp_path / "book.xlsx"
    table = pd.DataFrame({"x": rng.normal(size=60), "c": rng.choice(["a", "b"], 60)})
    table["y"] = np.where(table["x"] > 0, "yes", "no")
    with pd.ExcelWriter(p) as w:
        pd.DataFrame({"note": ["read me first", "then the data"]}).to_excel(w, sheet_name="About", index=False)
        table.to_excel(w, sheet_name="Data", index=False)
        pd.DataFrame().to_excel(w, sheet_name="Empty", index=False)
    return p


# -- 1. workbooks of several sheets ------------------------------------------------------------------------
def test_a_sheet_is_named_after_a_hash_and_read_alike_whole_or_in_chunks(book: Path) -> None:
    first = load_table(book)
    assert list(first.columns) == ["note"]
    assert first.attrs["source"]["sheet"] == "About" and first.attrs["source"]["other_sheets"] == ["Data"]
    for name in ("Data", "data", "2"):  # by name, alike but for case, or by position from 1
        df = load_table(f"{book}#{name}")
        assert df.shape == (60, 3) and df.attrs["source"]["sheet"] == "Data"
        assert "other_sheets" not in df.attrs["source"]  # named: nothing to say of the others
    pd.testing.assert_frame_equal(_chunked(f"{book}#Data"), load_table(f"{book}#Data"))
    assert load_table(book, sheet_name="Data").shape == (60, 3)  # pandas' keyword, from Python


def test_bad_sheet_names_are_one_line_naming_the_sheets(book: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"no sheet 'Nope'; its sheets are 'About', 'Data', 'Empty'"):
        load_table(f"{book}#Nope")
    with pytest.raises(DataError, match=r"sheet 'Empty' holds no rows: the sheets 'About', 'Data' hold rows"):
        load_table(f"{book}#Empty")
    with pytest.raises(DataError, match=r"Data file '.*missing\.xlsx' does not exist"):
        load_table(f"{tmp_path / 'missing.xlsx'}#Data")
    pd.DataFrame({"a": [1]}).to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(DataError, match=r"only Excel workbooks have sheets: drop '#Data'"):
        load_table(f"{tmp_path / 't.csv'}#Data")
    r = run_cli("audit", f"{book}#Nope")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "'About', 'Data', 'Empty'" in r.stderr, r.stderr


def test_the_first_sheet_of_several_is_said_in_one_line(book: Path) -> None:
    r = run_cli("audit", str(book))
    assert r.returncode == 0, r.stderr
    said = [line for line in r.stdout.splitlines() if "first sheet" in line]
    assert said == ["book.xlsx: read its first sheet, 'About'; the sheet 'Data' holds rows too (name one as "
                    "book.xlsx#Data to read it)."], r.stdout
    r = run_cli("audit", f"{book}#Data", "--target", "y")
    assert r.returncode == 0 and "first sheet" not in r.stdout and "sheet 'Data'" in r.stdout, r.stdout


def test_a_sheet_under_a_title_with_a_repeated_name_and_dates_typed_two_ways(tmp_path: Path) -> None:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["Quarterly report"])
    ws.append([])
    ws.append(["date", "amount", "amount", "label"])
    for i in range(40):
        day = dt.datetime(2023, 1, 1) + dt.timedelta(days=i)
        ws.append([day if i % 3 else day.strftime("%d/%m/%Y"), float(i), float(-i), "yes" if i % 2 else "no"])
    wb.save(tmp_path / "report.xlsx")
    df = load_table(tmp_path / "report.xlsx")
    assert list(df.columns) == ["date", "amount", "amount.1", "label"] and len(df) == 40
    assert df.attrs["source"]["header_row"] == 3
    assert str(df["date"].dtype).startswith("datetime64") and df["date"].iloc[3] == pd.Timestamp("2023-01-04")
    findings = _audit(df, "label", "binary")
    assert any(f.check == "duplicate_column_names" and f.column == "amount.1" for f in findings)
    assert infer_schema(df, "label")["date"].role.value == "datetime"


# -- 2. labels written several ways -------------------------------------------------------------------------
def _labels_table(n: int = 300) -> pd.DataFrame:
    x = rng.normal(size=n)
    y = np.where(x > 0, "Yes", "No").astype(object)
    y[:10], y[10:20], y[20:25] = "Yes ", "yes", " no"
    return pd.DataFrame({"x": x, "color": rng.choice(["Red", "red ", "Blue"], n), "answer": y})


def test_the_audit_names_labels_and_categories_that_differ_only_in_case_or_spaces() -> None:
    findings = _audit(_labels_table(), "answer", "multiclass")
    labels = [f for f in findings if f.check == "label_variants"]
    assert len(labels) == 1 and labels[0].column == "answer" and labels[0].severity == "warning"
    assert "'Yes' (" in labels[0].message and "'Yes ' (10)" in labels[0].message and "'yes' (10)" in labels[0].message
    assert "' no' (5)" in labels[0].message and "'No' (" in labels[0].message
    cases = [f for f in findings if f.check == "case_variants"]
    assert len(cases) == 1 and cases[0].column == "color" and "'Red', 'red'" in cases[0].message
    tidy = _labels_table().assign(answer=lambda d: d["answer"].str.strip().str.lower(), color="Blue")
    assert not {"label_variants", "case_variants"} & {f.check for f in _audit(tidy, "answer", "binary")}


@pytest.mark.slow
def test_train_warns_of_label_variants_and_keeps_labels_as_written(tmp_path: Path) -> None:
    _labels_table().to_csv(tmp_path / "t.csv", index=False)
    r = run_cli("train", str(tmp_path / "t.csv"), "--target", "answer", "--time-budget", "5", "--families",
                "lightgbm", "--no-track", "--out", str(tmp_path / "m"))
    assert r.returncode == 0, r.stderr
    assert "labels that differ only in case or surrounding spaces are separate classes" in r.stdout, r.stdout
    import mlengineer

    model = mlengineer.load(tmp_path / "m")
    assert sorted(model.classes) == [" no", "No", "Yes", "Yes ", "yes"]  # the same plan at training and after
    assert any(f["check"] == "label_variants" for f in model.metadata["findings"])


# -- 3 and 4. conformal sets in JSON, and no log loss of -0 --------------------------------------------------
def test_a_perfect_log_loss_and_a_one_class_baseline_are_zero_not_minus_zero() -> None:
    from mlengineer.evaluation.bootstrap import fast_metric
    from mlengineer.evaluation.evaluate import evaluate_predictions
    from mlengineer.metrics import get_metric
    from mlengineer.tasks import BinaryTask

    y = np.repeat([0, 1], 15)
    sure = np.eye(2)[y]  # every answer certain and right
    metric = get_metric("log_loss", "binary")
    assert math.copysign(1.0, metric(y, sure)) == 1.0
    assert math.copysign(1.0, fast_metric("log_loss", metric, y, sure)(y, sure)) == 1.0
    result = evaluate_predictions(BinaryTask(["no", "yes"]), y, sure, n_boot=20)
    assert all(math.copysign(1.0, v) == 1.0 for v in (result["metrics"]["log_loss"], *result["intervals"]["log_loss"]))
    with warnings.catch_warnings():  # scikit-learn's words on metrics of one class, which a user never sees
        warnings.simplefilter("ignore")
        one_class = evaluate_predictions(BinaryTask(["no", "yes"]), y[:15], sure[:15] * 0.9 + 0.05, n_boot=20)
    assert math.copysign(1.0, one_class["baseline"]["log_loss"]) == 1.0, one_class["baseline"]


@pytest.mark.slow
def test_predict_writes_prediction_sets_as_arrays_in_json_and_evaluate_prints_no_minus_zero(
        churn_model_dir: Path, churn_csv: Path, tmp_path: Path) -> None:
    rows = pd.read_csv(churn_csv).head(40)
    rows.drop(columns=["churn"]).to_csv(tmp_path / "rows.csv", index=False)
    got = {suffix: tmp_path / f"p{suffix}" for suffix in (".json", ".jsonl", ".csv", ".parquet")}
    one_class = rows[rows["churn"] == "no"]
    one_class.to_csv(tmp_path / "no.csv", index=False)
    # the commands side by side (each its own process): most of their seconds are their start
    *predicted, r = run_clis(
        *(["predict", str(churn_model_dir), str(tmp_path / "rows.csv"), "--interval", "0.9", "--out", str(out)]
          for out in got.values()),
        ["evaluate", str(churn_model_dir), str(tmp_path / "no.csv")])
    for done in predicted:
        assert done.returncode == 0, done.stderr
    records = json.loads(got[".json"].read_text())
    lines = [json.loads(line) for line in got[".jsonl"].read_text().splitlines()]
    assert all(isinstance(rec["prediction_set"], list) and rec["prediction"] in rec["prediction_set"]
               for rec in records + lines)
    as_text = pd.read_csv(got[".csv"])["prediction_set"].map(json.loads).tolist()
    assert as_text == [rec["prediction_set"] for rec in records] == [rec["prediction_set"] for rec in lines]
    assert pd.read_parquet(got[".parquet"])["prediction_set"].map(json.loads).tolist() == as_text
    assert abs(records[0]["proba_yes"] - pd.read_csv(got[".csv"])["proba_yes"][0]) < 1e-14  # not 10 digits
    assert r.returncode == 0 and "log_loss" in r.stdout, r.stderr
    assert not any(cell.strip() == "-0" for line in r.stdout.splitlines() for cell in line.split("│")), r.stdout


# -- 5. what else broke ---------------------------------------------------------------------------------------
def test_a_byte_past_the_sample_outside_utf8_is_read_alike_whole_and_in_chunks(tmp_path: Path) -> None:
    body = "".join(f"{i},plain\n" for i in range(20000))
    data = ("id,word\n" + body).encode() + "20000,café\n".encode("cp1252") + "20001,naïve\n".encode()
    (tmp_path / "late.csv").write_bytes(data)
    whole = load_table(tmp_path / "late.csv")
    assert whole["word"].tolist()[-2:] == ["café", "naïve"]
    pd.testing.assert_frame_equal(_chunked(tmp_path / "late.csv"), whole, check_dtype=False)


def test_names_given_twice_in_parquet_or_json_are_refused_not_guessed(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table([pa.array([1, 2]), pa.array([3, 4])], names=["x", "x"]), tmp_path / "d.parquet")
    with pytest.raises(DataError, match="two columns named 'x': give each column its own name"):
        load_table(tmp_path / "d.parquet")
    with pytest.raises(DataError, match="two columns named 'x'"):  # predict's reader: not one 'x' at random
        _chunked(tmp_path / "d.parquet")
    (tmp_path / "d.json").write_text('[{"a": 1, "a": 2, "y": 3}, {"a": 5, "y": 4}]')
    with pytest.raises(DataError, match="names the key 'a' twice"):
        load_table(tmp_path / "d.json")


def test_a_target_of_one_class_or_of_identifiers_is_an_error_in_the_audit() -> None:
    x = rng.normal(size=100)
    one = _audit(pd.DataFrame({"x": x, "y": ["yes"] * 100}), "y", "multiclass")
    assert [f.check for f in one if f.severity == "error"] == ["single_class"]
    ids = pd.DataFrame({"x": x, "y": [f"ID{i:04d}" for i in range(100)]})
    found = {f.check: f for f in _audit(ids, "y", "multiclass")}
    assert found["target_identifier"].severity == "error" and "100 distinct values" in found["target_identifier"].message
    assert "sorted_by_target" not in found  # a class a row is no block of rows


def test_audit_json_prints_json_lines_only(tmp_path: Path) -> None:
    _labels_table().to_csv(tmp_path / "t.csv", index=False)
    r = run_cli("audit", str(tmp_path / "t.csv"), "--target", "answer", "--json")
    assert r.returncode == 0 and r.stdout.strip(), r.stderr
    assert all(json.loads(line)["check"] for line in r.stdout.splitlines())
    assert "Read 300 rows" in r.stderr


@pytest.mark.slow
def test_explain_prints_the_start_of_a_long_text_cell(churn_model_dir: Path, churn_csv: Path, tmp_path: Path) -> None:
    rows = pd.read_csv(churn_csv).head(2).drop(columns=["churn"]).assign(plan="x" * 50_000)
    rows.to_csv(tmp_path / "rows.csv", index=False)
    r = run_cli("explain", str(churn_model_dir), str(tmp_path / "rows.csv"), "--limit", "1",
                "--out", str(tmp_path / "e.json"))
    assert r.returncode == 0, r.stderr
    assert "(50,000" in r.stdout and "x" * 200 not in r.stdout and len(r.stdout) < 10_000, r.stdout
    assert json.loads((tmp_path / "e.json").read_text())[0]["contributions"]  # --out keeps every value


@pytest.mark.long
@pytest.mark.slow
def test_monitor_and_report_say_the_first_sheet_of_several_was_read(churn_model_dir: Path, churn_csv: Path,
                                                                     tmp_path: Path) -> None:
    book = tmp_path / "live.xlsx"
    rows = pd.read_csv(churn_csv).head(200)
    with pd.ExcelWriter(book) as w:
        rows.to_excel(w, sheet_name="March", index=False)
        rows.head(50).to_excel(w, sheet_name="April", index=False)
    said = "live.xlsx: read its first sheet, 'March'; the sheet 'April' holds rows too"
    r = run_cli("monitor", str(churn_model_dir), "--data", str(book), "--out", str(tmp_path / "m.html"))
    assert r.returncode in (0, 1) and said in r.stdout, r.stdout + r.stderr
    r = run_cli("report", str(churn_model_dir), "--data", str(book), "--out", str(tmp_path / "r.html"))
    assert r.returncode == 0 and said in r.stdout, r.stdout + r.stderr
    r = run_cli("monitor", str(churn_model_dir), "--data", f"{book}#April", "--out", str(tmp_path / "m2.html"))
    assert r.returncode in (0, 1) and "first sheet" not in r.stdout, r.stdout + r.stderr


def test_parquet_parts_of_several_schemas_are_read_as_one_table(tmp_path: Path) -> None:
    """pyarrow's dataset took the first part's schema: a column added later was dropped, a part's all-null
    column failed the folder."""
    folder = tmp_path / "parts"
    (folder / "year=2023").mkdir(parents=True)
    (folder / "year=2024").mkdir()
    pd.DataFrame({"a": [1, 2], "b": [None, None], "c": ["x", "y"]}).to_parquet(folder / "year=2023" / "p0.parquet")
    pd.DataFrame({"a": [1.5, 2.5], "b": [3.0, 4.0], "c": ["z", "w"], "extra": [7, 8]}).to_parquet(
        folder / "year=2024" / "p1.parquet")
    df = load_table(folder).sort_values("a").reset_index(drop=True)
    assert list(df.columns) == ["a", "b", "c", "year", "extra"]
    assert df["a"].tolist() == [1.0, 1.5, 2.0, 2.5] and df["b"].isna().sum() == 2
    assert df["extra"].isna().sum() == 2 and sorted(df["year"].astype(str)) == ["2023", "2023", "2024", "2024"]
    assert df.attrs["source"]["partial_columns"] == ["extra"]
    chunked = _chunked(folder).sort_values("a").reset_index(drop=True)  # predict reads a folder whole too
    pd.testing.assert_frame_equal(chunked, df)
    clash = tmp_path / "clash"
    clash.mkdir()
    pd.DataFrame({"a": [1, 2]}).to_parquet(clash / "p0.parquet")
    pd.DataFrame({"a": ["x", "y"]}).to_parquet(clash / "p1.parquet")
    with pytest.raises(DataError, match=r"^Column 'a' of the Parquet parts in .* is numbers in p0.parquet and text "
                                        r"in p1.parquet: write it as one type in every part\.$"):
        load_table(clash)


def test_an_output_place_that_cannot_take_a_file_is_one_line(churn_model_dir: Path, churn_csv: Path,
                                                              tmp_path: Path) -> None:
    (tmp_path / "plain").write_text("x")
    (tmp_path / "folder.csv").mkdir()
    places = ((tmp_path / "plain" / "p.csv", "is a file, not a folder"), (tmp_path / "folder.csv", "it is a folder"),
              (Path("/proc/p.csv"), "takes no new files"))
    done = run_clis(*(["predict", str(churn_model_dir), str(churn_csv), "--out", str(out)] for out, _ in places))
    for (out, said), r in zip(places, done, strict=True):  # the commands ran side by side, each its own process
        assert r.returncode == 2 and said in r.stderr and "Traceback" not in r.stderr, (out, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_a_pattern_names_the_files_it_matches_as_parts(tmp_path: Path) -> None:
    (tmp_path / "rows" / "2024").mkdir(parents=True)
    pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}).to_csv(tmp_path / "rows" / "p0.csv", index=False)
    pd.DataFrame({"a": [3], "b": ["z"]}).to_csv(tmp_path / "rows" / "2024" / "p1.csv", index=False)
    (tmp_path / "rows" / "notes.txt").write_text("not a part")
    df = load_table(str(tmp_path / "rows" / "**" / "*.csv"))
    assert df["a"].tolist() == [3, 1, 2] and df.attrs["source"]["parts"] == 2  # sorted by path: 2024/ first
    assert load_table(str(tmp_path / "rows" / "p?.csv"))["a"].tolist() == [1, 2]
    pd.testing.assert_frame_equal(_chunked(str(tmp_path / "rows" / "**" / "*.csv")), df)
    pd.DataFrame({"a": [1]}).to_parquet(tmp_path / "rows" / "q0.parquet")
    pd.DataFrame({"a": [2.5], "c": ["u"]}).to_parquet(tmp_path / "rows" / "q1.parquet")
    df = load_table(str(tmp_path / "rows" / "q*.parquet"))
    assert df["a"].tolist() == [1.0, 2.5] and df.attrs["source"]["partial_columns"] == ["c"]
    with pytest.raises(DataError, match=r"^No file matches '.*nothing\*\.csv': check the pattern"):
        load_table(str(tmp_path / "rows" / "nothing*.csv"))


@pytest.mark.slow
def test_compare_on_rows_of_one_class(churn_model_dir: Path, churn_csv: Path, tmp_path: Path) -> None:
    """AUC is not defined on one class: one line naming the metric (it was a traceback); log loss is, and its
    --json holds no NaN (strict readers refuse it)."""
    rows = pd.read_csv(churn_csv)
    rows[rows["churn"] == "no"].head(80).to_csv(tmp_path / "no.csv", index=False)
    args = ("compare", str(churn_model_dir), "baseline", "--data", str(tmp_path / "no.csv"), "--json")
    auc, loss = run_clis([*args, "--metric", "roc_auc"], [*args, "--metric", "log_loss"])  # side by side
    r = auc
    assert r.returncode == 2 and r.stderr.startswith("error: roc_auc cannot be computed on these rows"), r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    r = loss
    assert r.returncode == 0, r.stderr
    json.loads(r.stdout, parse_constant=lambda c: pytest.fail(f"{c} in --json output: {r.stdout[:300]}"))
