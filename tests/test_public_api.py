"""The public API: what ``mlengineer`` exports, and the estimators' scikit-learn contract."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mlengineer


def test_exported_members() -> None:
    assert sorted(mlengineer.__all__) == sorted([
        "AutoClassifier", "AutoRegressor", "ConfigError", "DataError", "InputWarning", "MLEngineerError", "Model", "ModelError",
        "SchemaError", "ServingError", "TrainConfig", "__version__", "load", "train",
    ])
    for name in mlengineer.__all__:
        assert hasattr(mlengineer, name)


def test_errors_inherit_the_builtins_users_catch() -> None:
    assert issubclass(mlengineer.DataError, ValueError)
    assert issubclass(mlengineer.SchemaError, mlengineer.DataError)
    assert issubclass(mlengineer.ConfigError, ValueError)
    assert issubclass(mlengineer.ServingError, RuntimeError)
    assert str(mlengineer.DataError("two\n  lines")) == "two lines"


@pytest.mark.slow
def test_auto_classifier_is_a_scikit_learn_estimator() -> None:
    from sklearn.base import clone
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4))
    y = np.where(X[:, 0] + 0.5 * X[:, 1] > 0, "pos", "neg")
    est = mlengineer.AutoClassifier(time_budget=3, families=["linear", "lightgbm"])
    assert clone(est).get_params() == est.get_params()
    pipe = make_pipeline(StandardScaler(), est)
    scores = cross_val_score(pipe, X, y, cv=2)
    assert scores.mean() > 0.85
    est.fit(X, y)
    assert list(est.classes_) == ["neg", "pos"]
    proba = est.predict_proba(X[:5])
    assert proba.shape == (5, 2) and np.allclose(proba.sum(axis=1), 1)
    assert est.score(X, y) > 0.85


@pytest.mark.slow
def test_auto_regressor_on_a_dataframe() -> None:
    rng = np.random.default_rng(1)
    X = pd.DataFrame({"a": rng.normal(size=300), "b": rng.choice(["u", "v"], 300)})
    y = 3 * X["a"] + (X["b"] == "u") * 2 + rng.normal(0, 0.1, 300)
    est = mlengineer.AutoRegressor(time_budget=10).fit(X, y)
    assert est.score(X, y) > 0.9
    assert est.predict(X.head(2)).shape == (2,)


def test_train_config_rejects_bad_options() -> None:
    with pytest.raises(mlengineer.ConfigError, match="time_budget"):
        mlengineer.TrainConfig.build(target="y", time_budget=0)
    with pytest.raises(mlengineer.ConfigError, match="Unknown option 'budget'"):
        mlengineer.TrainConfig.build(target="y", budget=3)


@pytest.mark.long
@pytest.mark.slow
@pytest.mark.parametrize(("families", "needs_torch"), [(["mlp"], True), (["linear"], False)])
def test_bundle_requirements_name_torch_only_when_a_network_predicts(tmp_path, families: list[str],  # type: ignore[no-untyped-def]
                                                                     needs_torch: bool) -> None:
    """A bundle served elsewhere (``mlflow models serve``) installs what its requirements list: torch must be
    there when a neural network is one of its models, and not pulled in otherwise."""
    if needs_torch:
        pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300)})
    df["y"] = df["a"] * 2 + rng.normal(size=300)
    model = mlengineer.train(df, "y", time_budget=4, families=families, out=tmp_path / "m", track=False)
    assert {row["family"] for row in model.metadata["leaderboard"] if row["status"] == "ok"} <= {*families, "ensemble"}
    reqs = (tmp_path / "m" / "requirements.txt").read_text().split()
    assert any(r.startswith("torch==") for r in reqs) is needs_torch, reqs
