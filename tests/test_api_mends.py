"""Mends from a new user's hour with the Python API: the estimators' inputs as scikit-learn users pass them,
``mlengineer.train``'s data, and the tracking store a notebook points at."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlengineer


def _xy(n: int = 80) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 3))
    return X, np.where(X[:, 0] + 0.3 * X[:, 1] > 0, "up", "down")


def _small() -> mlengineer.AutoClassifier:
    return mlengineer.AutoClassifier(time_budget=1, families=["linear"])


def test_a_frame_with_numbered_columns_fits_and_predicts() -> None:
    """pd.DataFrame(array) names its columns 0, 1, 2: they were passed on as column roles keyed by numbers."""
    X, y = _xy()
    est = _small().fit(pd.DataFrame(X), y)
    assert not hasattr(est, "feature_names_in_")  # scikit-learn sets it only for text column names
    assert list(est.predict(pd.DataFrame(X[:3]))) == list(est.predict(X[:3]))


def test_fitted_on_an_array_predicts_a_frame_by_position_and_counts_columns() -> None:
    X, y = _xy()
    est = _small().fit(X, y)
    assert list(est.predict(pd.DataFrame(X[:4], columns=["p", "q", "r"]))) == list(est.predict(X[:4]))
    with pytest.raises(ValueError, match="X has 2 features, but AutoClassifier is expecting 3 features"):
        est.predict(X[:4, :2])
    restored = pickle.loads(pickle.dumps(est))
    assert np.array_equal(restored.predict_proba(X[:4]), est.predict_proba(X[:4]))


def test_sparse_input_from_a_one_hot_encoder() -> None:
    """ColumnTransformer hands a sparse matrix on when one-hot columns dominate."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    rng = np.random.default_rng(1)
    X = pd.DataFrame({"colour": rng.choice(["red", "green", "blue"], 90)})
    y = np.where(X["colour"] == "red", "hot", "cold")
    ct = ColumnTransformer([("oh", OneHotEncoder(), ["colour"])], sparse_threshold=1.0)
    pipe = make_pipeline(ct, _small()).fit(X, y)
    assert list(pipe.predict(pd.DataFrame({"colour": ["red", "blue"]}))) == ["hot", "cold"]


def test_a_feature_named_like_the_internal_target_column() -> None:
    X, y = _xy()
    frame = pd.DataFrame(X, columns=["__target__", "b", "c"])
    est = _small().fit(frame, y)
    assert list(est.feature_names_in_) == ["__target__", "b", "c"]
    assert est.predict(frame.head(3)).shape == (3,)


@pytest.mark.parametrize(("X", "y", "message"), [
    (pd.DataFrame([[1, 2], [3, 4]], columns=["a", "a"]), ["u", "v"], "distinct column names; 'a'"),
    (np.zeros((5, 2)), ["u", "v", "u", "v"], "X has 5, y has 4"),
    (np.zeros((4, 2)), np.zeros((4, 2)), r"y must hold one target per row .*shape \(4, 2\)"),
    (np.zeros((0, 2)), [], "X has no rows"),
    (np.zeros((4, 2, 2)), [0, 1, 0, 1], "X must be a table"),
])
def test_wrong_inputs_name_what_was_wrong(X: object, y: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _small().fit(X, y)


def test_a_classifier_refuses_continuous_targets_and_a_regressor_text() -> None:
    X = np.random.default_rng(2).normal(size=(40, 2))
    with pytest.raises(mlengineer.DataError, match="AutoClassifier needs class labels in y; got continuous"):
        _small().fit(X, X[:, 0])
    with pytest.raises(mlengineer.DataError, match="AutoRegressor needs numbers in y; got '(yes|no)'"):
        mlengineer.AutoRegressor(time_budget=1).fit(X, np.where(X[:, 0] > 0, "yes", "no"))


def test_whole_number_floats_are_classes() -> None:
    X, y = _xy()
    labels = (y == "up").astype(float)
    est = _small().fit(X, pd.Series(labels, name="label"))
    assert list(est.classes_) == [0.0, 1.0]
    assert est.score(X, labels) > 0.8


def test_estimator_docstrings_name_the_parameters() -> None:
    for cls in (mlengineer.AutoClassifier, mlengineer.AutoRegressor):
        doc = cls.__doc__ or ""
        for name in ("time_budget", "metric", "seed", "families", "model_", "sample_weight"):
            assert name in doc, (cls.__name__, name)
        assert cls.fit.__doc__ and cls.predict.__doc__
    assert mlengineer.AutoClassifier().__sklearn_tags__().input_tags.allow_nan


@pytest.mark.parametrize("data", [np.zeros((3, 2)), [{"a": 1, "y": 2}], pd.Series([1, 2], name="y")])
def test_train_refuses_what_is_not_a_table(data: object) -> None:
    with pytest.raises(mlengineer.DataError, match="data must be a pandas DataFrame or the path of a table file"):
        mlengineer.train(data, "y", time_budget=1, track=False)  # type: ignore[arg-type]


def test_train_refuses_numbered_column_names() -> None:
    frame = pd.DataFrame({0: [1.0, 2.0], "y": [1.0, 2.0]})
    with pytest.raises(mlengineer.DataError, match=r"column names must be text; 0 \(int\)"):
        mlengineer.train(frame, "y", time_budget=1, track=False)


def test_a_store_that_cannot_be_written_fails_before_training(tmp_path: Path) -> None:
    """Three rows are too few to train on: had training started first, that would be the error."""
    (tmp_path / "afile").write_text("")
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0], "y": [1.0, 2.0, 3.0]})
    uri = f"sqlite:///{tmp_path / 'afile' / 'runs.db'}"
    with pytest.raises(mlengineer.ConfigError, match="cannot be written: its folder .*afile"):
        mlengineer.train(frame, "y", time_budget=1, tracking_uri=uri)


def test_a_folder_store_says_to_use_sqlite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0], "y": [1.0, 2.0, 3.0]})  # too few rows: the store's error comes first
    with pytest.raises(mlengineer.ConfigError, match=r"is a folder .*sqlite:///PATH/mlruns.db.*MLFLOW_ALLOW_FILE_STORE"):
        mlengineer.train(frame, "y", time_budget=1, tracking_uri=str(tmp_path / "runs"))
    # a SQLite file's path without its scheme: the exact URI to pass, not "a folder"
    with pytest.raises(mlengineer.ConfigError, match=rf"without a scheme.*tracking_uri='sqlite:///{tmp_path}/mlruns.db'\.$"):
        mlengineer.train(frame, "y", time_budget=1, tracking_uri=str(tmp_path / "mlruns.db"))


def test_a_store_named_once_does_not_become_the_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """MLflow writes the store it is pointed at into MLFLOW_TRACKING_URI: a notebook's next train() without
    tracking_uri then recorded there instead of ./mlruns.db."""
    from mlengineer.tracking.store import default_tracking_uri, mlflow_module

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    mlflow_module(f"sqlite:///{tmp_path / 'other.db'}")
    assert "MLFLOW_TRACKING_URI" not in os.environ
    assert default_tracking_uri() == f"sqlite:///{tmp_path / 'mlruns.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'chosen.db'}")
    mlflow_module(f"sqlite:///{tmp_path / 'other.db'}")
    assert os.environ["MLFLOW_TRACKING_URI"] == f"sqlite:///{tmp_path / 'chosen.db'}"  # the user's own choice stays


def test_a_store_in_a_new_folder_is_opened_under_the_lock(tmp_path: Path) -> None:
    """Without its folder there was no lock, and two first opens at once migrated the store together."""
    from mlengineer.tracking.store import mlflow_module

    db = tmp_path / "new" / "deeper" / "runs.db"
    mlflow_module(f"sqlite:///{db}")
    assert db.is_file() and (db.parent / ".runs.db.lock").exists()


@pytest.mark.slow
def test_two_processes_open_a_new_store_in_a_new_folder_at_once(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'shared' / 'runs.db'}"
    code = "import sys; from mlengineer.tracking.store import mlflow_module; mlflow_module(sys.argv[1])"
    env = {**os.environ, "MLENGINEER_BLANK_STORE": "0"}  # both migrate: the race the lock prevents
    procs = [subprocess.Popen([sys.executable, "-c", code, uri], stderr=subprocess.PIPE, text=True, env=env)
             for _ in range(2)]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors


@pytest.mark.slow
def test_load_by_run_id_as_the_cli_does(tmp_path: Path) -> None:
    """A notebook has the run id (``model.metadata["run_id"]``), not a folder: load took only folders."""
    import mlflow

    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"a": rng.normal(size=80), "b": rng.choice(["u", "v"], 80)})
    frame["y"] = np.where(frame["a"] > 0, "yes", "no")
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    model = mlengineer.train(frame, "y", time_budget=1, families=["linear"], tracking_uri=uri, out=tmp_path / "m")
    run_id = model.metadata["run_id"]
    rows = frame.drop(columns="y").head(5)
    expected = model.predict_proba(rows)
    for spec in (run_id, f"runs:/{run_id}/model", tmp_path / "m"):
        pd.testing.assert_frame_equal(mlengineer.load(spec, tracking_uri=uri).predict_proba(rows), expected)
    served = mlflow.pyfunc.load_model(str(tmp_path / "m")).predict(rows)
    assert list(served["prediction"]) == list(model.predict(rows))
    with pytest.raises(mlengineer.ModelError, match="neither a model bundle folder nor an MLflow run id"):
        mlengineer.load(tmp_path / "missing")
