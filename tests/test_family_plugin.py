"""A model family is one class and one registry call: a toy nearest-centroid learner, defined here, trains
through the public API, takes its place on the leaderboard, predicts, and is explained (by sampling, as it
has no exact way). The built-in families' own answers (portfolio order, tuning, packages, explanations)
are pinned too."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest

import mlengineer
from mlengineer.explain.contributions import column_contributions, is_sampled
from mlengineer.tasks import BinaryTask
from mlengineer.training.models import (
    FitContext,
    FittedModel,
    ModelFamily,
    get_family,
    load_all,
    register,
    requirements_of,
    unregister,
)
from mlengineer.training.search import LARGE_ROWS, portfolio


class ToyModel(FittedModel):
    """Class probabilities from the distances to each class's centroid."""

    def predict_raw(self, X: np.ndarray) -> np.ndarray:
        fill, centroids = self.estimator
        Z = np.where(np.isnan(X), fill, X)
        d = ((Z[:, None, :] - centroids[None, :, :]) ** 2).sum(axis=2)
        z = -self.params["sharpness"] * (d - d.min(axis=1, keepdims=True))
        p = np.exp(z)
        return self._proba(p / p.sum(axis=1, keepdims=True))


class ToyFamily(ModelFamily):
    name = "toy"
    packages = ("numpy",)

    def supports(self, task: Any, n_rows: int, n_features: int) -> bool:
        return bool(task.is_classification)

    def default_configs(self, task: Any, n_rows: int, n_features: int) -> list[dict[str, Any]]:
        return [{"sharpness": 1.0}]

    def search_space(self, trial: Any, task: Any, n_rows: int) -> dict[str, Any]:
        return {"sharpness": trial.suggest_float("sharpness", 0.1, 10.0, log=True)}

    def _fit(self, X: np.ndarray, y: np.ndarray, ctx: FitContext, params: dict[str, Any],
             X_val: np.ndarray | None, y_val: np.ndarray | None) -> FittedModel:
        fill = np.nan_to_num(np.nanmean(X, axis=0))
        Z = np.where(np.isnan(X), fill, X)
        centroids = np.stack([Z[y == c].mean(axis=0) if (y == c).any() else fill for c in range(ctx.n_classes)])
        return ToyModel((fill, centroids), params, ctx.task)


@pytest.fixture
def toy() -> Iterator[None]:
    register(ToyFamily)
    yield
    unregister("toy")


def _frame(n: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.choice(["x", "y", "z"], n)})
    df.loc[rng.random(n) < 0.05, "a"] = np.nan
    df["y"] = np.where(df["a"].fillna(0) + 0.5 * df["b"] + rng.normal(0, 0.5, n) > 0, "yes", "no")
    return df


@pytest.mark.slow
def test_a_toy_family_trains_predicts_and_is_explained_by_sampling(toy: None) -> None:
    df = _frame()
    model = mlengineer.train(df, "y", families=["toy"], time_budget=4, track=False)
    board = [row for row in model.metadata["leaderboard"] if row["family"] == "toy"]
    assert {"portfolio", "tuning"} <= {row["phase"] for row in board}  # its default config, then its space
    assert all(row["status"] == "ok" for row in board) and "toy_1" in {row["model"] for row in board}
    assert set(model.predict(df.head(20))) <= {"yes", "no"}
    assert (model.predict(df) == df["y"]).mean() > 0.7
    members = [m for _, m, _ in model.predictor.members]
    assert members and all(is_sampled(m) for m in members)
    c = column_contributions(model, df.head(3))
    np.testing.assert_allclose(c.base + c.values.sum(axis=1), model.predict_raw(df.head(3)), atol=1e-9)
    assert "sampled Shapley" in " ".join(c.methods) and c.columns == ["a", "b", "c"]


def test_a_registered_family_is_tried_only_when_named(toy: None) -> None:
    task = BinaryTask(["no", "yes"])
    assert "toy" not in {f for f, _ in portfolio(task, 500, 4)}  # no place in the default portfolio
    assert [f for f, _ in portfolio(task, 500, 4, ["toy", "linear"])] == ["linear", "toy"]
    assert requirements_of(["toy", "linear", "toy"]) == ["numpy", "scikit-learn"]


def test_unregister_leaves_the_builtin_families() -> None:
    register(ToyFamily)
    unregister("toy")
    assert "toy" not in load_all() and "lightgbm" in load_all()


@pytest.mark.parametrize(("n_rows", "order"), [
    (500, ["lightgbm", "linear", "knn", "catboost", "mlp", "xgboost", "extra_trees", "random_forest"]),  # no svm: two classes
    (LARGE_ROWS + 1, ["lightgbm", "linear", "knn", "mlp", "xgboost", "catboost", "extra_trees", "random_forest"]),
])
def test_the_families_place_themselves_in_the_portfolio(n_rows: int, order: list[str]) -> None:
    task = BinaryTask(["no", "yes"])
    available = [f for f in order if get_family(f).available()]
    firsts = list(dict.fromkeys(f for f, _ in portfolio(task, n_rows, 4)))
    assert firsts == available


def test_the_families_say_what_they_need_and_how_they_are_explained() -> None:
    families = load_all()
    assert [f for f, fam in families.items() if not fam.tuned] == ["knn"]
    assert requirements_of(families) == ["catboost", "lightgbm", "pillow", "scikit-learn", "torch", "xgboost-cpu"]
    assert requirements_of(["mlp"]) == ["torch"] and requirements_of(["unknown"]) == []
    task = BinaryTask(["no", "yes"])
    from mlengineer.training.models.target import TransformedTargetModel

    fitted = {cls.__name__: cls(None, {}, task).explained_exactly for cls in FittedModel.__subclasses__()
              if cls.__module__.startswith("mlengineer.training.models") and cls is not TransformedTargetModel}
    assert fitted == {"LinearModel": True, "ForestModel": True, "LightGBMModel": True, "XGBoostModel": True,
                      "CatBoostModel": True, "KNNModel": False, "SVMModel": False, "MLPModel": False, "TextModel": True,
                      "CNNModel": True}
    # a model of any family fitted on a transformed target: the inverse is not additive, so it is sampled
    assert TransformedTargetModel.contributions is FittedModel.contributions
