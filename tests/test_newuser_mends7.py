"""What new users found in the seventh round: files streamed for prediction are read as training read them
(nested JSON Lines, lists, a trailing delimiter), and a list reaches a category the same way from every door."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlengineer
from mlengineer.serving.batch import predict_to_file
from mlengineer.serving.validation import RequestValidator

from .conftest import run_cli, run_clis


def _tag_rows(n: int = 300) -> list[dict]:
    rng = np.random.default_rng(6)
    rows = []
    for _ in range(n):
        tag, x = str(rng.choice(["a", "b", "c"])), float(rng.normal())
        rows.append({"tags": [tag], "user": {"age": int(rng.integers(18, 70)), "plan": tag}, "x": x,
                     "y": int((tag == "a") ^ (rng.random() < 0.2))})
    return rows


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_json_lines_streamed_for_prediction_are_read_as_training_read_them(tmp_path: Path) -> None:
    """predict streams JSON Lines in chunks: nested objects were left whole ("Column 'user.age' is missing") and
    lists read as Python's text of them (every row the same answer, silently)."""
    rows = _tag_rows()
    model = mlengineer.train(str(_jsonl(tmp_path / "rows.jsonl", rows)), "y", time_budget=2, families=["linear"],
                             track=False)
    assert {"tags", "user.age", "user.plan"} <= set(model.feature_names)
    new = [{k: v for k, v in r.items() if k != "y"} for r in rows[:6]]
    _jsonl(tmp_path / "new.jsonl", new)
    (tmp_path / "new.json").write_text(json.dumps(new))
    got = {}
    for name in ("new.jsonl", "new.json"):
        predict_to_file(model, tmp_path / name, tmp_path / f"{name}.csv")
        got[name] = pd.read_csv(tmp_path / f"{name}.csv")["proba_1"].to_numpy()
    np.testing.assert_allclose(got["new.jsonl"], got["new.json"])
    # the same rows handed over in Python, as records or a frame of lists, and one record alone
    np.testing.assert_allclose(np.asarray(model.predict_proba(new))[:, 1], got["new.json"])
    np.testing.assert_allclose(np.asarray(model.predict_proba(pd.DataFrame(new)))[:, 1], got["new.json"], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(model.predict_raw(new[0]))[0, 1], got["new.json"][0], rtol=1e-5)
    assert len(set(np.round(got["new.json"], 6))) > 1  # the tags matter: the answers differ


def test_a_list_in_a_request_is_read_as_its_json_text_where_training_read_lists() -> None:
    rows = _tag_rows()
    model = mlengineer.train(pd.DataFrame([{"tags": r["tags"], "x": r["x"], "y": r["y"]} for r in rows]), "y",
                             time_budget=2, families=["linear"], track=False)
    checked = RequestValidator(model).validate({"tags": [["a"], '["b"]'], "x": [0.0, 0.0]}, 2)
    assert checked.columns["tags"] == ['["a"]', '["b"]'] and not checked.unseen


def test_a_trailing_delimiter_is_no_unknown_column_at_prediction(tmp_path: Path) -> None:
    from mlengineer.serving.batch import extra_columns_note

    rng = np.random.default_rng(1)
    x = rng.normal(size=200)
    lines = ["x,y,"] + [f"{v:.4f},{v + rng.normal() * 0.1:.4f}," for v in x]
    (tmp_path / "rows.csv").write_text("\n".join(lines) + "\n")
    model = mlengineer.train(str(tmp_path / "rows.csv"), "y", time_budget=2, families=["linear"], track=False)
    (tmp_path / "new.csv").write_text("\n".join(["x,"] + [f"{v:.4f}," for v in x[:5]]) + "\n")
    from contextlib import ExitStack

    from mlengineer.data.chunks import open_chunks

    with ExitStack() as stack:
        first = next(open_chunks(tmp_path / "new.csv", chunk_rows=50, stack=stack).frames)
    assert list(first.columns) == ["x"] and extra_columns_note(model, list(first.columns)) is None


def test_mlflow_s_own_loader_takes_what_the_bundle_takes(tmp_path: Path) -> None:
    """The MLflow signature declared each column by its stored type, which MLflow enforces more strictly than
    the bundle reads: a NaN in a column of whole numbers, a date as datetime64 where the table held text, and
    "2021" for a category of numbers were refused by mlflow.pyfunc while mlengineer predicted them."""
    import mlflow.pyfunc

    rng = np.random.default_rng(0)
    df = pd.DataFrame({"k": rng.integers(0, 5, 300), "year": rng.choice([2020, 2021, 2022], 300),
                       "when": pd.date_range("2024-01-01", periods=300, freq="D").astype(str),
                       "x": rng.normal(size=300)})
    df["y"] = df["x"] + df["k"]
    model = mlengineer.train(df, "y", time_budget=2, families=["linear"], out=tmp_path / "m", track=False)
    new = df.drop(columns="y").head(3).assign(k=[1.0, np.nan, 3.0], year=["2020", "2021", "2022"])
    new["when"] = pd.to_datetime(new["when"])
    got = mlflow.pyfunc.load_model(str(tmp_path / "m")).predict(new)["prediction"].to_numpy()
    np.testing.assert_allclose(got, np.asarray(model.predict(new), dtype=float))


def test_a_number_where_a_date_belongs_is_read_as_the_server_reads_it_or_refused() -> None:
    """A model trained on real timestamps read 20230105 and 45000 as nanoseconds since 1970 in batch and from
    Python (exit 0, a 1970 date), where the server read 20230105 as 5 January 2023 and refused 45000."""
    from mlengineer.errors import SchemaError

    rng = np.random.default_rng(4)
    ts = pd.Timestamp("2022-01-01") + pd.to_timedelta(rng.integers(0, 700, 300), unit="D")
    x = rng.normal(size=300)
    df = pd.DataFrame({"ts": ts, "x": x, "y": (ts - ts.min()).days * 0.1 + 5 * x})
    model = mlengineer.train(df, "y", time_budget=2, families=["linear"], track=False)
    as_text = float(np.asarray(model.predict([{"ts": "2023-01-05", "x": 0.0}]))[0])
    for v in (20230105, 20230105.0, np.int64(20230105)):
        assert float(np.asarray(model.predict([{"ts": v, "x": 0.0}]))[0]) == pytest.approx(as_text)
    # the server reads 20230105.0 too (a CSV body's column of them with an empty cell is read as decimals)
    checked = RequestValidator(model).validate({"ts": [20230105.0, None], "x": [0.0, 0.0]}, 2)
    assert checked.columns["ts"][0] == "20230105"
    many = pd.DataFrame({"ts": pd.Series([20230105] * 70 + ["2023-01-05"], dtype=object), "x": 0.0})
    np.testing.assert_allclose(np.asarray(model.predict(many), dtype=float), as_text)
    for v in (45000, 19700.5):
        with pytest.raises(SchemaError, match="'ts' must hold dates"):
            model.predict([{"ts": v, "x": 0.0}])
        with pytest.raises(SchemaError, match="'ts' must hold dates"):
            model.predict(pd.DataFrame({"ts": pd.Series([v] * 70, dtype=object), "x": 0.0}))


def test_an_explained_row_says_the_model_s_average_answer_beside_its_base(churn_model_dir: Path,
                                                                         churn_csv: Path) -> None:
    """The "average row" of a binary explanation is the probability of the average log-odds, far below the
    model's average answer where it is sure of most rows (0.001 against 12%): the answer says both, and every
    contribution keeps the sign it has on the log-odds (a base of the mean probability flipped them)."""
    from mlengineer.explain.contributions import explain_rows

    model = mlengineer.load(churn_model_dir)
    rows = pd.read_csv(churn_csv).drop(columns=["churn"])
    explained = explain_rows(model, rows.head(3))
    for e in explained:
        assert e["mean_output"] == pytest.approx(float(np.asarray(model.validation["pred"])[:, -1].mean()))
        total = sum(c["contribution"] for c in e["contributions"]) + e["other_columns"]
        assert e["base_value"] + total == pytest.approx(e["output"], abs=1e-6)
    from .conftest import run_cli

    r = run_cli("explain", str(churn_model_dir), str(churn_csv), "--limit", "1")
    assert r.returncode == 0 and "for a row of average log-odds (the model answers" in " ".join(r.stdout.split())


def test_an_out_that_cannot_be_written_is_refused_before_any_work(tmp_path: Path, churn_csv: Path,
                                                                   churn_model_dir: Path) -> None:
    from .conftest import run_cli

    for args in (["profile", str(churn_csv)], ["report", str(churn_model_dir)]):
        r = run_cli(*args, "--out", str(tmp_path / "nowhere" / "page.html"))
        assert r.returncode == 2 and "does not exist" in r.stderr and not r.stdout.strip(), (args, r.stdout)


def test_a_code_sent_as_text_with_a_decimal_point_is_the_code() -> None:
    """A category of whole numbers (1-4) sent as the text "4.0" was an unseen category (a different answer and a
    warning) where 4, 4.0 and "4" were the code."""
    rng = np.random.default_rng(2)
    df = pd.DataFrame({"level": rng.integers(1, 5, 300), "x": rng.normal(size=300)})
    df["y"] = df["level"] * 2.0 + df["x"]
    model = mlengineer.train(df, "y", time_budget=2, families=["linear"], track=False)
    assert model.schema["level"].role.value == "categorical"
    want = float(np.asarray(model.predict([{"level": 4, "x": 0.0}]))[0])
    for v in ("4.0", "4.00", "04", 4.0):
        assert float(np.asarray(model.predict([{"level": v, "x": 0.0}]))[0]) == pytest.approx(want)
    frame = pd.DataFrame({"level": ["4.0"] * 70, "x": 0.0})
    np.testing.assert_allclose(np.asarray(model.predict(frame), dtype=float), want)
    checked = RequestValidator(model).validate({"level": ["4.0", 4], "x": [0.0, 0.0]}, 2)
    assert checked.columns["level"] == ["4", "4"] and not checked.unseen


def test_a_csv_body_is_read_as_predict_reads_a_csv_file() -> None:
    """A ';'-separated body with decimal commas (as a spreadsheet in much of Europe saves it) was one column
    named 'a;b;c' on /invocations, where `mlengineer predict` read the same file."""
    from mlengineer.errors import SchemaError
    from mlengineer.serving.csvbody import columns_from_csv

    body = b"amount;plan;visits\n1,5;basic;3\n2.000,25;pro;4\n?;basic;5\n"
    assert columns_from_csv(body) == ({"amount": [1.5, 2000.25, "?"], "plan": ["basic", "pro", "basic"],
                                       "visits": [3, 4, 5]}, 3)
    assert columns_from_csv(b"a\tb\n1,5\tx\n2,5\ty\n") == ({"a": [1.5, 2.5], "b": ["x", "y"]}, 2)
    assert columns_from_csv(b"a,b\n\"1,500\",x\n\"2,000\",y\n")[0]["a"] == ["1,500", "2,000"]  # read as numbers later
    with pytest.raises(SchemaError, match="row 2 .* 3 fields where the header names 2"):
        columns_from_csv(b"a;b\nq;x\nr;y;z\ns;w\nt;v\n")


def test_the_profile_counts_a_number_column_s_placeholders_as_missing_as_cleaning_reads_them(tmp_path: Path) -> None:
    """The audit said 20 'unknown' ages are read as missing; the profile showed the column with none missing."""
    from mlengineer.data.load import load_table
    from mlengineer.data.profile import profile_table

    rng = np.random.default_rng(0)
    age = rng.integers(18, 80, 400).astype(object)
    age[:20] = "unknown"
    pd.DataFrame({"age": age, "amount": rng.uniform(10, 5000, 400)}).to_csv(tmp_path / "rows.csv", index=False)
    column = profile_table(load_table(tmp_path / "rows.csv")).columns[0]
    assert (column.role, column.n_missing, column.missing_fraction) == ("numeric", 20, 0.05)


def test_a_picture_network_runs_no_more_epochs_than_the_plan_allows() -> None:
    """The network for pictures ignored the plan's cap on epochs: a cost probe (which has no clock) ran 30-60
    epochs at the widest width, several times, and a 20 s training took 8-10 minutes."""
    from mlengineer.tasks import make_task
    from mlengineer.training.models import FAMILIES, load_all
    from mlengineer.training.models.base import FitContext

    load_all()
    rng = np.random.default_rng(0)
    names = [f"photo__px0_{y}_{x}" for y in range(8) for x in range(8)] + ["size"]
    X = rng.random((64, len(names))).astype(np.float32)
    y = (X[:, :32].mean(axis=1) > X[:, 32:64].mean(axis=1)).astype(np.int64)
    ctx = FitContext(task=make_task(pd.Series(y), "binary"), feature_names=names, max_units=2, time_limit=None)
    model = FAMILIES["cnn"].fit(X, y, ctx, {}, X[:16], y[:16])
    assert model.rounds_run == 2


def test_a_frame_s_answers_keep_its_index_and_probabilities_are_named_by_class(churn_model_dir: Path,
                                                                                churn_csv: Path) -> None:
    """predict_proba and predict_frame answered with a fresh 0..n-1 index, so `test["p"] = model.predict_proba(test)
    ["yes"]` on rows 600-799 of a table was all NaN; and a 0/1 model's columns were '0' and '1', so
    proba[model.classes[1]] raised KeyError."""
    model = mlengineer.load(churn_model_dir)
    test = pd.read_csv(churn_csv).drop(columns=["churn"]).iloc[600:]
    test["p_yes"] = model.predict_proba(test)["yes"]
    assert test["p_yes"].notna().all()
    test = test.drop(columns="p_yes")  # a column the model does not know is warned of (InputWarning)
    framed = model.predict_frame(test.set_index(test.index.astype(str) + "r"), interval=0.9)
    assert framed.index[0] == "600r" and framed["prediction_set"].map(len).min() >= 1
    assert list(model.predict_proba(test).columns) == list(model.classes)
    rng = np.random.default_rng(3)
    df = pd.DataFrame({"x": rng.normal(size=200)})
    df["y"] = (df["x"] + rng.normal(size=200) * 0.3 > 0).astype(int)
    ints = mlengineer.train(df, "y", time_budget=2, families=["linear"], track=False)
    proba = ints.predict_proba(df.head(3))
    assert list(proba.columns) == [0, 1] and proba[ints.classes[1]].between(0, 1).all()


def test_a_column_named_twice_is_refused_in_training_and_prediction(churn_model_dir: Path, churn_csv: Path) -> None:
    from mlengineer.errors import DataError, SchemaError

    df = pd.read_csv(churn_csv)
    twice = pd.concat([df, df[["age"]]], axis=1)
    with pytest.raises(DataError, match="names the column 'age' twice"):
        mlengineer.train(twice, "churn", time_budget=2, track=False)
    model = mlengineer.load(churn_model_dir)
    for rows in (twice.head(1), twice.head(70)):  # the one-row path kept the first silently; the batch path broke
        with pytest.raises(SchemaError, match="column 'age' twice"):
            model.predict(rows.drop(columns=["churn"]))
    with pytest.raises(DataError, match="holds no rows"):
        mlengineer.train(df.iloc[:0], "churn", time_budget=2, track=False)


def test_evaluate_compare_and_calibrate_take_records_as_predict_does(churn_model_dir: Path, churn_csv: Path) -> None:
    from mlengineer.errors import DataError
    from mlengineer.evaluation.compare import compare_models
    from mlengineer.evaluation.evaluate import evaluate

    model = mlengineer.load(churn_model_dir)
    records = pd.read_csv(churn_csv).head(200).to_dict(orient="records")
    result = evaluate(model, records, n_boot=20, slices=False)
    assert result["n_rows"] == 200
    assert compare_models(model, "baseline", records, n_boot=20)["scores"]
    with pytest.raises(DataError, match="got ndarray"):
        evaluate(model, np.zeros((3, 3)))


def test_a_run_trained_without_out_keeps_its_bundle(churn_csv: Path, tmp_path: Path) -> None:
    """mlengineer.load(model.metadata["run_id"]) failed ("Failed to download artifacts from path 'model'") for a
    model trained from Python without out=: its run held no bundle."""
    from mlengineer.tracking.lookup import open_model

    uri = f"sqlite:///{tmp_path / 'runs.db'}"
    before = set(Path(tempfile_root()).glob("mlengineer-run-*"))
    model = mlengineer.train(str(churn_csv), "churn", time_budget=2, families=["linear"], tracking_uri=uri)
    assert model.path is None and set(Path(tempfile_root()).glob("mlengineer-run-*")) == before  # none left
    again = open_model(model.metadata["run_id"], tracking_uri=uri)
    rows = pd.read_csv(churn_csv).drop(columns=["churn"]).head(5)
    np.testing.assert_allclose(np.asarray(again.predict_proba(rows)), np.asarray(model.predict_proba(rows)))


def tempfile_root() -> str:
    import tempfile

    return tempfile.gettempdir()


def test_json_lines_whose_chunks_lack_a_nested_key_are_read_as_the_whole_file(tmp_path: Path) -> None:
    """Streamed in chunks, a chunk where an object is null in every row (or a key in none) lacked its columns
    ("Column 'user.age' is missing") where the file read whole has them as missing values."""
    rng = np.random.default_rng(1)
    rows = [{"id": i, "user": {"age": int(a), "phone": str(p)}, "y": int(a > 40)}
            for i, a, p in zip(range(300), rng.integers(18, 70, 300), rng.choice(["x", "y"], 300), strict=True)]
    model = mlengineer.train(str(_jsonl(tmp_path / "rows.jsonl", rows)), "y", time_budget=2, families=["linear"],
                             track=False)
    new = [{"id": 1, "user": None}, {"id": 2, "user": None}, {"id": 3, "user": None},
           {"id": 4, "user": {"age": 60, "phone": "x"}}, {"id": 5, "user": {"age": 20}}]
    _jsonl(tmp_path / "new.jsonl", new)
    (tmp_path / "new.json").write_text(json.dumps(new))
    got = {}
    for name in ("new.jsonl", "new.json"):
        assert predict_to_file(model, tmp_path / name, tmp_path / f"{name}.csv", chunk_rows=3) == 5
        got[name] = pd.read_csv(tmp_path / f"{name}.csv")["proba_1"].to_numpy()
    np.testing.assert_allclose(got["new.jsonl"], got["new.json"])


# -- later mends: rows met in training whatever a yes/no target is written as; a mistyped column, an option's
# -- value, numbers written with thousands dots, and the scikit-learn classes' warnings -----------------------

def _yes_no_table(n: int = 240) -> pd.DataFrame:
    rng = np.random.default_rng(21)
    x = rng.normal(size=n).round(3)
    return pd.DataFrame({"x": x, "z": rng.normal(size=n).round(3), "y": (x + rng.normal(0, 0.5, n) > 0).astype(int)})


def test_rows_met_in_training_are_found_whether_the_target_is_written_1_0_or_true_false(tmp_path: Path) -> None:
    """evaluate compared a target read as 1/0 in the training file and as true/false in the given one as text
    ('1.0' against 'True'): the model's own training rows were measured on as rows it had not seen."""
    from mlengineer.cli.evaluation import rows_met
    from mlengineer.data.load import load_table
    from mlengineer.evaluation.seen import row_keys

    frame = _yes_no_table()
    frame.to_csv(tmp_path / "train.csv", index=False)
    mlengineer.train(str(tmp_path / "train.csv"), "y", time_budget=2, families=["linear"], track=False,
                     out=tmp_path / "model")
    model = mlengineer.load(tmp_path / "model")
    for spelling in (("false", "true"), ("False", "True"), ("0", "1")):
        given = frame.assign(y=np.where(frame["y"] == 1, spelling[1], spelling[0]))
        given.to_csv(tmp_path / "given.csv", index=False)
        met = rows_met(model, load_table(tmp_path / "given.csv"))
        assert met["trained_rows"]["share"] == 1.0 and "the model trained on" in met["warnings"][0], spelling
    same = [pd.DataFrame({"y": v}) for v in ([True, False], [1, 0], [1.0, 0.0], np.array([True, False], dtype=object),
                                             pd.array([True, False], dtype="boolean"))]
    assert all((row_keys(f) == row_keys(same[0])).all() for f in same)


def test_calibration_rows_kept_before_true_false_were_numbers_are_still_found() -> None:
    """The keys a bundle kept of its calibration rows hashed true/false as text: they are looked up so still."""
    from mlengineer.evaluation.seen import calibration_rows, row_keys

    rows = pd.DataFrame({"x": [1.5, 2.5, 3.5], "y": [True, False, True]})

    class Kept:
        extras = {"calibration_rows": {"columns": ["x", "y"], "keys": row_keys(rows, booleans_as_text=True),
                                       "rows": 3}}

    assert calibration_rows(Kept(), rows) == {"rows": 3, "share": 1.0, "exact": True}


def test_a_mistyped_column_an_option_names_lists_the_table_s_columns_and_the_closest(tmp_path: Path) -> None:
    """--drop, --keep, --group-column, --time-column and --column-role named a missing column without saying
    which columns the table has, as a mistyped --target does; the Python face the same, in its arguments."""
    frame = _yes_no_table()
    frame.to_csv(tmp_path / "t.csv", index=False)
    tail = r"which the data does not have \(did you mean 'z'\?\); its columns are: x, z, y\.$"
    for option, said in ((dict(drop="zz"), "drop="), (dict(keep=["zz"]), "keep="),
                         (dict(group_column="zz"), "group_column="), (dict(time_column="zz"), "time_column="),
                         (dict(column_roles={"zz": "text"}), "column_roles=")):
        with pytest.raises(mlengineer.DataError, match=rf"^{said} names the column 'zz', {tail}"):
            mlengineer.train(frame, "y", time_budget=2, track=False, **option)  # type: ignore[arg-type]
    with pytest.raises(mlengineer.DataError, match=r"^drop= names the column 'Q', which the data does not have; "):
        mlengineer.train(frame, "y", time_budget=2, track=False, drop="Q")  # nothing near: the columns alone
    with pytest.raises(mlengineer.DataError, match=r"^Target column 'yy' is not in the data"):
        mlengineer.train(frame, "yy", time_budget=2, track=False, drop="Q")  # the target first, as before
    (tmp_path / "c.yaml").write_text("drop: [Z]\n")
    drop, group, in_file = run_clis(
        ["train", str(tmp_path / "t.csv"), "--target", "y", "--drop", "Z", "--no-track"],
        ["train", str(tmp_path / "t.csv"), "--target", "y", "--group-column", "zz", "--no-track"],
        ["train", str(tmp_path / "t.csv"), "--target", "y", "--config", str(tmp_path / "c.yaml"), "--no-track"],
        cwd=tmp_path)
    for r, flag, name in ((drop, "--drop", "Z"), (group, "--group-column", "zz"),
                          (in_file, f"'drop:' in {tmp_path / 'c.yaml'}", "Z")):  # a config file's key as written
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2 and len(lines) == 1, r.stderr
        assert lines[0] == (f"error: {flag} names the column {name!r}, which the data does not have (did you mean "
                            "'z'?); its columns are: x, z, y."), r.stderr


def test_an_option_s_bad_value_is_named_as_the_user_wrote_it(tmp_path: Path) -> None:
    """'The 'task' option ...' where the user typed --task: named --task on the command line, 'task:' in the
    config file, task= in Python."""
    frame = _yes_no_table()
    frame.to_csv(tmp_path / "t.csv", index=False)
    (tmp_path / "c.yaml").write_text("target: y\ntask: binnary\ntime_budget: -1\n")
    choices = "takes one of 'auto', 'binary', 'multiclass' or 'regression'; got 'binnary'."
    with pytest.raises(mlengineer.ConfigError) as e:
        mlengineer.train(frame, "y", task="binnary", track=False)
    assert str(e.value) == f"task= {choices}"
    flag, file, both, budget, missing = run_clis(
        ["train", "t.csv", "--target", "y", "--task", "binnary", "--no-track"],
        ["train", "t.csv", "--config", "c.yaml", "--no-track"],
        ["train", "t.csv", "--config", "c.yaml", "--task", "binary", "--no-track"],
        ["train", "t.csv", "--target", "y", "--time-budget", "-3", "--no-track"],
        ["train", "t.csv", "--no-track"], cwd=tmp_path)
    assert flag.returncode == 2 and flag.stderr.strip() == f"error: --task {choices}", flag.stderr
    assert file.returncode == 2 and file.stderr.strip() == f"error: 'task:' in c.yaml {choices}", file.stderr
    assert both.returncode == 2 and both.stderr.strip() == ("error: 'time_budget:' in c.yaml must be a positive "
                                                            "number of seconds. Got -1.0 instead."), both.stderr
    assert budget.stderr.strip() == "error: --time-budget must be a positive number of seconds. Got -3.0 instead."
    assert missing.returncode == 2 and missing.stderr.strip() == "error: --target is required.", missing.stderr


def test_numbers_written_with_thousands_dots_in_a_comma_file_are_read_as_numbers(tmp_path: Path) -> None:
    """1.234.567 in a comma-delimited file stayed text, silently (an identifier: the column left out): dots are
    thousands marks where every number of the column writes them so, one at least with two."""
    from contextlib import ExitStack

    from mlengineer.data.chunks import open_chunks
    from mlengineer.data.load import load_table
    from mlengineer.serving.csvbody import columns_from_csv

    text = "amount,rate,code\n1.234.567,1.5,a\n12.345,2.25,b\n,3,c\n999,4,d\n-2.000.000,5,e\n"
    (tmp_path / "d.csv").write_text(text)
    df = load_table(tmp_path / "d.csv")
    assert df["amount"].dtype == np.float64 and df["rate"].tolist() == [1.5, 2.25, 3.0, 4.0, 5.0]
    np.testing.assert_array_equal(df["amount"], [1234567.0, 12345.0, np.nan, 999.0, -2000000.0])
    assert df.attrs["source"]["thousands_dots"] == ["amount"]
    with ExitStack() as stack:  # predict's chunks: a chunk of '12.345' alone is 12345 too
        chunks = [c["amount"].tolist() for c in open_chunks(tmp_path / "d.csv", chunk_rows=2, stack=stack).frames]
    assert chunks[0] == [1234567.0, 12345.0] and chunks[2] == [-2000000.0]
    assert columns_from_csv(text.encode())[0]["amount"] == [1234567.0, 12345.0, None, 999.0, -2000000.0]
    (tmp_path / "one.csv").write_text("amount,rate\n12.345,1.5\n1.234,2\n")  # no two dots: left as it reads
    assert load_table(tmp_path / "one.csv")["amount"].tolist() == [12.345, 1.234]
    (tmp_path / "mixed.csv").write_text("amount,rate\n1.234.567,1.5\n7.5,2\n")  # a decimal point: not thousands
    assert load_table(tmp_path / "mixed.csv")["amount"].tolist() == ["1.234.567", "7.5"]
    r = run_cli("audit", "d.csv", cwd=tmp_path)
    read = r.stdout.splitlines()[0]  # the read line
    assert r.returncode == 0 and read.endswith("dots as thousands marks in 'amount')."), r.stdout


def test_the_scikit_learn_classes_warn_of_inputs_as_model_predict_does() -> None:
    """AutoClassifier and AutoRegressor answered unknown columns, unseen categories and far numbers silently."""
    import warnings

    rng = np.random.default_rng(5)
    X = pd.DataFrame({"a": rng.normal(size=200), "b": rng.choice(["u", "v"], 200)})
    clf = mlengineer.AutoClassifier(time_budget=2, families=["linear"]).fit(X, (X["a"] > 0).astype(int))
    odd = X.head(3).assign(extra=1)
    odd.loc[0, "a"], odd.loc[1, "b"] = 1e6, "w"
    for answer in (clf.predict, clf.predict_proba):
        with pytest.warns(mlengineer.InputWarning) as caught:
            answer(odd)
        said = str(caught[0].message)
        assert caught[0].filename == __file__ and "'extra'" in said and "'w'" in said and "1,000,000" in said
        assert said == " ".join(clf.model_.input_notes(odd))  # Model.predict's own words
    with warnings.catch_warnings():
        warnings.simplefilter("error", mlengineer.InputWarning)
        clf.predict(X.head(5))  # rows like the training rows: nothing to say
    reg = mlengineer.AutoRegressor(time_budget=2, families=["linear"]).fit(X[["a"]].to_numpy(), 2 * X["a"])
    with pytest.warns(mlengineer.InputWarning, match=r"Column 'x0': 1 row holds a number far outside"):
        reg.predict(np.array([[1e6], [0.1]]))
