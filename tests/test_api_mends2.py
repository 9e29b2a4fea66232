"""Mends from a data scientist's notebook hour with the Python API: a model pickled after one record, a row of a
frame predicted as one record, whole-number classes answered as integers, the judging commands from Python,
and options that say what they take."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlengineer


@pytest.fixture(scope="module")
def churn(churn_csv: Path) -> pd.DataFrame:
    return pd.read_csv(churn_csv)


def test_a_model_pickles_after_answering_one_record(churn_model_dir: Path, churn: pd.DataFrame) -> None:
    """The compiled row path is a cache of local functions: it made pickle (joblib, multiprocessing) fail once the
    model had answered a record, and only then."""
    import joblib

    model = mlengineer.load(churn_model_dir)
    record = churn.drop(columns="churn").iloc[3].to_dict()
    first = model.predict_proba(record)
    assert model.row_path() is not None  # the cache that did not pickle is there
    copy = pickle.loads(pickle.dumps(model))
    assert np.allclose(copy.predict_proba(record), first) and copy.predict(record)[0] == model.predict(record)[0]
    assert np.allclose(copy.predict_proba(churn.head(5)), model.predict_proba(churn.head(5)))
    assert joblib.load(_dumped(model)).predict(record)[0] == model.predict(record)[0]


def _dumped(model: mlengineer.Model) -> object:
    import io

    import joblib

    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    buffer.seek(0)
    return buffer


def test_a_row_of_a_frame_is_one_record(churn_model_dir: Path, churn: pd.DataFrame) -> None:
    """``model.predict(df.iloc[0])`` was refused ("Cannot predict on Series"); its label is kept as the index."""
    model = mlengineer.load(churn_model_dir)
    row = churn.loc[7]
    assert list(model.predict(row)) == list(model.predict(churn.loc[[7]]))
    proba = model.predict_proba(row)
    assert list(proba.index) == [7] and np.allclose(proba.to_numpy(), model.predict_proba(churn.loc[[7]]).to_numpy())
    frame = model.predict_frame(row, interval=0.9)
    assert list(frame.index) == [7] and isinstance(frame["prediction_set"].iloc[0], list)
    assert np.allclose(model.predict_record(row), model.predict_record(row.to_dict()))
    assert mlengineer.explain_rows(model, row, top=2)[0]["output"] == pytest.approx(proba["yes"].iloc[0])
    twice = pd.Series([30, 40], index=["age", "age"])
    with pytest.raises(mlengineer.SchemaError, match="names the column 'age' twice"):
        model.predict(twice)


@pytest.mark.slow
def test_whole_number_classes_come_back_as_integers(churn: pd.DataFrame) -> None:
    """A 0/1 target's labels came back as an object array, which scikit-learn's metrics refuse ("a mix of
    multiclass and unknown targets")."""
    from sklearn.metrics import accuracy_score, f1_score

    df = churn.head(240).assign(churn=churn["churn"].head(240).eq("yes").astype(int))
    model = mlengineer.train(df, "churn", time_budget=2, families=["linear"], track=False)
    assert model.classes == [0, 1]
    labels = model.predict(df)
    assert labels.dtype == np.int64 and model.predict_frame(df.head(3))["prediction"].dtype == np.int64
    assert 0.5 < accuracy_score(df["churn"], labels) <= 1 and f1_score(df["churn"], labels) >= 0
    assert model.predict(df.iloc[0].to_dict()).dtype == np.int64  # one record, by the row path
    model.extras["threshold"] = {"value": 0.01, "class": 1}  # a decision threshold answers integers too
    assert model.predict(df.head(4)).dtype == np.int64 and set(model.predict(df.head(4))) == {1}


def test_the_judging_commands_take_what_the_cli_takes(churn_model_dir: Path, churn_csv: Path,
                                                       churn: pd.DataFrame, tracking_uri: str) -> None:
    """``mlengineer.evaluate`` and the others were not on the package; the functions under it took only a loaded
    model ('str' object has no attribute 'target') and no table file."""
    from mlengineer.evaluation import evaluate as evaluate_loaded

    assert {"evaluate", "compare_models", "recalibrate", "explain_rows", "train", "Model"} <= set(dir(mlengineer))
    assert "TYPE_CHECKING" not in dir(mlengineer)
    model = mlengineer.load(churn_model_dir)
    by_path = mlengineer.evaluate(str(churn_model_dir), churn_csv, n_boot=20, slices=False)
    assert by_path["metrics"] == evaluate_loaded(model, churn, n_boot=20, slices=False)["metrics"]
    run_id = model.metadata["run_id"]
    by_run = mlengineer.evaluate(run_id, churn.head(60).to_dict("records"), n_boot=20, slices=False,
                                 tracking_uri=tracking_uri)
    assert by_run["n_rows"] == 60
    compared = mlengineer.compare_models(churn_model_dir, "baseline", churn.head(200), n_boot=50)
    assert "constant baseline" in compared["verdict"]
    assert len(mlengineer.explain_rows(str(churn_model_dir), churn_csv, top=1)) == len(churn)
    with pytest.raises(mlengineer.ModelError, match=r"^model takes a Model .*; got None\.$"):
        mlengineer.evaluate(None, churn)
    with pytest.raises(mlengineer.ModelError, match=r"^b takes a Model .*; got int\.$"):
        mlengineer.compare_models(churn_model_dir, 3, churn)
    with pytest.raises(mlengineer.ModelError, match=r"recalibrate changes the model it is given.*mlengineer\.load"):
        mlengineer.recalibrate(str(churn_model_dir))
    with pytest.raises(mlengineer.ModelError, match=r"^load takes what names a model: .*; got None\.$"):
        mlengineer.load(None)  # type: ignore[arg-type]
    result = mlengineer.recalibrate(model, churn.tail(200), target_precision=0.6)
    assert result["rows"] == 200 and model.extras["threshold"]["rule"] == "precision >= 60%"


@pytest.mark.parametrize(("option", "message"), [
    ({"task": "classification"},
     r"^task= takes one of 'auto', 'binary', 'multiclass' or 'regression'; got 'classification'\.$"),
    ({"validation": "cv"}, r"^validation= takes one of 'auto', 'holdout' or 'kfold'; got 'cv'\.$"),
    ({"column_roles": {"age": "number"}},
     r"^column_roles= gives column 'age' the role 'number' \(did you mean 'numeric'\?\), which is not one of "
     r"numeric, "),
])
def test_a_choice_option_says_what_it_takes(option: dict[str, object], message: str) -> None:
    """pydantic's words leaked ("The 'task' option Input should be 'auto', ...")."""
    with pytest.raises(mlengineer.ConfigError, match=message) as e:
        mlengineer.TrainConfig.build(target="y", **option)
    assert "Input should" not in str(e.value)


def test_recalibrate_takes_the_positive_class_by_its_label_and_refuses_a_rule_for_a_regression(
        churn_model_dir: Path, salary_model_dir: Path) -> None:
    from mlengineer.errors import ConfigError, ModelError

    model = mlengineer.load(churn_model_dir)
    mlengineer.recalibrate(model, method="none", target_recall=0.9, positive_class="no")
    t = model.extras["threshold"]
    assert (t["positive"], t["positive_index"]) == ("no", 0) and t["recall"] >= 0.9
    with pytest.raises(ConfigError, match="positive_class 'maybe' is not a class of this model; its classes are no, yes"):
        mlengineer.recalibrate(model, target_recall=0.9, positive_class="maybe")
    regression = mlengineer.load(salary_model_dir)
    with pytest.raises(ModelError, match="this one predicts a number \\('salary_in_usd'\\)"):
        mlengineer.recalibrate(regression, target_precision=0.9)
    assert "threshold" not in regression.extras and "recalibrated" not in regression.metadata  # refused before any work


def test_a_mistyped_target_leaves_no_tracking_store_behind(tmp_path: Path, churn: pd.DataFrame,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from mlengineer.errors import DataError

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with pytest.raises(DataError, match="Target column 'churnx' is not in the data"):
        mlengineer.train(churn, "churnx", time_budget=2)
    with pytest.raises(DataError, match="time_column= names the column 'when'"):
        mlengineer.train(churn, "churn", time_budget=2, time_column="when")
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no ./mlruns.db, no lock
