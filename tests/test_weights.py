"""Row weights (``--weight-column``, ``weight_column=``, ``fit(..., sample_weight=)``): every family fits with them,
the search scores with them, the bundle never asks for the column, evaluate and compare count them, and bad
weights end in one line before any training."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn import metrics as skm

from mlengineer.errors import DataError
from mlengineer.metrics import METRICS, get_metric
from mlengineer.training.weights import class_weights, numbered, read_weights

from .conftest import run_cli
from .test_errors import assert_clean_failure

#: the two inputs a probe row is read at: the heavy rows' relation answers -x there, the light rows' +x
PROBE = pd.DataFrame({"x": [-0.8, 0.8], "z": [0.0, 0.0]})


def _conflict(n: int = 600, *, light: float = 0.0, seed: int = 0) -> pd.DataFrame:
    """Two halves of rows no feature tells apart: the heavy half (weight 1) has y = -x, the light half
    (weight ``light``) y = +x. Unweighted, a model can only answer about 0; weighted, it follows the heavy half."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, n)
    heavy = np.arange(n) % 2 == 0
    return pd.DataFrame({"x": x, "z": rng.normal(size=n), "y": np.where(heavy, -x, x) + 0.05 * rng.normal(size=n),
                         "w": np.where(heavy, 1.0, light)})


def _slope(model: object) -> float:
    """How far the model's answer falls from x = -0.8 to x = 0.8: about 1.6 following the heavy rows, 0 unweighted."""
    pred = np.asarray(model.predict(PROBE), dtype=float)  # type: ignore[attr-defined]
    return float(pred[0] - pred[1])


# -- metrics --------------------------------------------------------------------------------------------------------

def _sklearn_weighted(name: str, y: np.ndarray, raw: np.ndarray, w: np.ndarray) -> float:
    labels = raw.argmax(axis=1) if raw.ndim == 2 else raw
    return {
        "roc_auc": lambda: skm.roc_auc_score(y, raw[:, 1], sample_weight=w),
        "log_loss": lambda: skm.log_loss(y, raw, sample_weight=w),
        "accuracy": lambda: skm.accuracy_score(y, labels, sample_weight=w),
        "balanced_accuracy": lambda: skm.balanced_accuracy_score(y, labels, sample_weight=w),
        "f1": lambda: skm.f1_score(y, labels, sample_weight=w),
        "f1_macro": lambda: skm.f1_score(y, labels, average="macro", sample_weight=w),
        "brier": lambda: skm.brier_score_loss(y, raw[:, 1], sample_weight=w),
        "rmse": lambda: np.sqrt(skm.mean_squared_error(y, raw, sample_weight=w)),
        "mae": lambda: skm.mean_absolute_error(y, raw, sample_weight=w),
        "r2": lambda: skm.r2_score(y, raw, sample_weight=w),
        "mape": lambda: skm.mean_absolute_percentage_error(y, raw, sample_weight=w),
    }[name]()


@pytest.mark.parametrize("name", sorted(METRICS))
def test_a_weighted_metric_is_scikit_learns_weighted_metric(name: str) -> None:
    rng = np.random.default_rng(1)
    n = 400
    w = rng.exponential(size=n) * (rng.uniform(size=n) > 0.2)  # a fifth of the rows weigh nothing
    metric = METRICS[name]
    if "regression" in metric.tasks:
        y = rng.normal(3, 1, n)
        raw = y + rng.normal(0, 0.5, n)
    else:
        y = rng.integers(0, 2, n)
        p1 = np.clip(0.3 * y + rng.uniform(0, 0.7, n), 0.01, 0.99)
        p1[:40] = np.round(p1[:40], 1)  # ties, which ROC AUC counts half
        raw = np.column_stack([1 - p1, p1])
    assert metric(y, raw, w) == pytest.approx(_sklearn_weighted(name, y, raw, w), rel=1e-9, abs=1e-12)
    assert metric(y, raw, w) != pytest.approx(metric(y, raw), rel=1e-6)  # the weights do count
    kept = w > 0  # a row of weight 0 counts for nothing
    assert metric(y, raw, w) == pytest.approx(metric(y[kept], raw[kept], w[kept]), rel=1e-9)
    assert metric(y, raw) == metric(y, raw, None)  # the unweighted call as it always was


def test_weighted_multiclass_roc_auc_and_a_scorer_name() -> None:
    rng = np.random.default_rng(2)
    y = rng.integers(0, 3, 300)
    raw = rng.dirichlet(np.ones(3), 300)
    raw[np.arange(300), y] += 0.3
    raw /= raw.sum(axis=1, keepdims=True)
    w = rng.uniform(0, 2, 300)
    auc = get_metric("roc_auc", "multiclass")
    assert auc(y, raw, w) == pytest.approx(skm.roc_auc_score(y, raw, multi_class="ovr", sample_weight=w))
    scorer = get_metric("precision_macro", "multiclass")
    assert scorer(y, raw, w) == pytest.approx(skm.precision_score(y, raw.argmax(axis=1), average="macro",
                                                                  sample_weight=w))


def test_class_balance_multiplies_the_users_weights() -> None:
    y = np.array([0] * 8 + [1] * 2)
    w = np.array([1.0] * 4 + [3.0] * 4 + [2.0, 0.0])
    balanced = class_weights(y, 2, w)
    # each class weighs the same in all, and within a class rows keep their proportions
    assert balanced[y == 0].sum() == pytest.approx(balanced[y == 1].sum())
    assert balanced[4] / balanced[0] == pytest.approx(3.0) and balanced[9] == 0.0
    assert np.array_equal(class_weights(y, 2), class_weights(y, 2, None))


# -- the search ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("family", ["linear", "lightgbm", "xgboost", "catboost", "random_forest", "extra_trees",
                                    "knn", "mlp", "tabm"])
def test_every_family_fits_and_stops_early_by_the_weights(family: str) -> None:
    """Rows of weight 0 count for nothing in each family's fit and, where it stops early, in its validation
    rows' loss: the model learns the heavy rows' y = -x (unweighted, the halves cancel out near 0), and a
    booster or network runs many rounds (watching the unweighted loss, it stops after a round or two)."""
    from mlengineer.tasks import RegressionTask
    from mlengineer.training.models import FAMILIES, FitContext, load_all

    load_all()
    chosen = FAMILIES[family]
    if not chosen.available():
        pytest.skip(chosen.unavailable_reason())
    df = _conflict()
    X, y, w = df[["x", "z"]].to_numpy(), df["y"].to_numpy(), df["w"].to_numpy()
    tr, va = np.arange(480), np.arange(480, 600)
    task = RegressionTask()
    params = chosen.default_configs(task, len(tr), 2)[0]
    ctx = FitContext(task=task, seed=0, n_jobs=1, max_units=300 if chosen.rounds_predict else 40,
                     sample_weight=w[tr], valid_weight=w[va] if chosen.early_stopping else None)
    es = chosen.early_stopping
    model = chosen.fit(X[tr], y[tr], ctx, dict(params), X[va] if es else None, y[va] if es else None)
    pred = model.predict_raw(PROBE.to_numpy())
    assert pred[0] - pred[1] > 1.0, (family, pred)
    if es and chosen.rounds_predict:  # a booster (a network may well be best after a few epochs)
        assert (model.best_iteration or 0) >= 10, (family, model.best_iteration)


def test_a_networks_validation_loss_counts_the_weights() -> None:
    torch = pytest.importorskip("torch")
    from mlengineer.training.models._torch_net import validation_loss

    out, target = torch.tensor([[0.0], [1.0], [5.0]]), torch.tensor([0.0, 1.0, 1.0])
    loss = torch.nn.MSELoss(reduction="none")
    assert validation_loss(loss, out, target, True) == pytest.approx(16 / 3)
    assert validation_loss(loss, out, target, True, torch.tensor([1.0, 1.0, 0.0])) == pytest.approx(0.0)
    assert validation_loss(loss, out, target, True, torch.tensor([1.0, 0.0, 1.0])) == pytest.approx(8.0)


@pytest.mark.slow
def test_weights_move_the_model_and_are_said_everywhere(tmp_path: Path) -> None:
    """Weights of 9 and 1 (not 0): the ensemble follows the heavy rows where the unweighted one cannot; the
    split, the leaderboard's ensemble row, the bundle and the run's MLflow params say so."""
    import mlengineer
    from mlengineer.tracking.runs import list_runs

    df = _conflict(light=1 / 9)
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    weighted = mlengineer.train(df, "y", time_budget=4, families=["linear", "lightgbm"], tune=False,
                                weight_column="w", out=tmp_path / "weighted", tracking_uri=uri)
    plain = mlengineer.train(df.drop(columns=["w"]), "y", time_budget=4, families=["linear", "lightgbm"], tune=False,
                             track=False)
    assert _slope(weighted) > 0.8 and abs(_slope(plain)) < 0.4, (_slope(weighted), _slope(plain))
    meta = weighted.metadata
    assert meta["weight_column"] == "w" and "weighted by 'w'" in meta["split"]
    assert meta["leaderboard"][0]["params"]["weighted_by"] == "w"
    assert plain.metadata["weight_column"] is None and "weighted" not in plain.metadata["split"]
    # the validation rows' weights travel with the bundle: the calibrator and conformal scores were fitted with them
    assert len(weighted.validation["weight"]) == len(weighted.validation["y"])
    run = next(r for r in list_runs(tracking_uri=uri) if r["run_id"] == meta["run_id"])
    assert run["params"]["weight_column"] == "w" and "weighted by 'w'" in run["params"]["split"]


@pytest.mark.slow
def test_the_validation_score_is_the_weighted_metric_of_the_out_of_fold_predictions() -> None:
    from mlengineer.training.config import TrainConfig
    from mlengineer.training.trainer import fit_pipeline

    df = _conflict(light=0.25)
    df.index = np.arange(len(df)) // 2  # labels twice over (frames put together): rows keep their own weights
    result = fit_pipeline(df, TrainConfig(target="y", time_budget=3, families=["linear"], tune=False,
                                          weight_column="w"))
    assert result.valid_weight is not None and set(np.unique(result.valid_weight)) == {0.25, 1.0}
    assert result.valid_rows is not None
    assert np.array_equal(result.valid_weight, df["w"].to_numpy()[result.valid_rows])
    rmse = get_metric("rmse", "regression")
    assert result.validation_score == pytest.approx(rmse(result.valid_y, result.valid_pred, result.valid_weight))
    assert result.validation_score != pytest.approx(rmse(result.valid_y, result.valid_pred), rel=1e-3)


@pytest.mark.slow
def test_a_balanced_metric_weighs_the_users_weights_by_class() -> None:
    """balanced_accuracy with user weights: the rare class still counts as much as the common one in all."""
    import mlengineer

    rng = np.random.default_rng(3)
    n = 800
    x = rng.normal(size=n)
    y = np.where(x + 0.8 * rng.normal(size=n) > 1.3, "rare", "common")
    df = pd.DataFrame({"x": x, "z": rng.normal(size=n), "y": y, "w": rng.uniform(0.5, 2.0, n)})
    model = mlengineer.train(df, "y", time_budget=3, families=["linear"], tune=False, track=False,
                             metric="balanced_accuracy", weight_column="w")
    # balanced by class, a rare row's weight is far above a common one's: the rare class is predicted often
    assert (model.predict(df.drop(columns=["y", "w"])) == "rare").mean() > (y == "rare").mean()


# -- the Python API ------------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_estimators_take_sample_weight() -> None:
    from mlengineer import AutoClassifier, AutoRegressor

    df = _conflict()
    X, w = df[["x", "z"]], df["w"].to_numpy()
    reg = AutoRegressor(time_budget=3, families=["linear"]).fit(X, df["y"], sample_weight=w)
    assert _slope(reg) > 0.5
    assert reg.feature_names_in_.tolist() == ["x", "z"]  # the weights are no feature
    labels = np.where(df["y"] > 0, "up", "down")
    clf = AutoClassifier(time_budget=3, families=["linear"]).fit(X, labels, sample_weight=w)
    p_up = clf.predict_proba(PROBE)[:, list(clf.classes_).index("up")]
    assert p_up[0] > 0.7 and p_up[1] < 0.3, p_up  # the heavy rows: up where x < 0
    with pytest.raises(ValueError, match="sample_weight"):
        AutoRegressor(time_budget=3, families=["linear"]).fit(X, df["y"], sample_weight=-w)
    with pytest.raises(ValueError, match="one weight per row"):
        AutoRegressor(time_budget=3, families=["linear"]).fit(X, df["y"], sample_weight=w[:10])


@pytest.mark.parametrize(("weights", "words"), [
    (["a", 1.0, 2.0], ["'w'", "text", "row 1", "'a'"]),
    ([1.0, -2.0, 1.0], ["'w'", "negative", "1 of the", "row 2"]),
    ([1.0, np.nan, np.nan], ["'w'", "no value in 2", "row 2", "give every row a weight"]),
    ([1.0, np.inf, 1.0], ["'w'", "infinity", "row 2"]),
    ([0.0, 0.0, 0.0], ["'w'", "0 in every one"]),
    (pd.to_datetime(["2020-01-01"] * 3), ["'w'", "datetime64"]),
])
def test_bad_weights_are_one_clear_error(weights: list[object], words: list[str]) -> None:
    with pytest.raises(DataError) as e:
        read_weights(pd.Series(weights), "w")
    message = str(e.value)
    assert "\n" not in message and all(w in message for w in words), message


def test_bad_weights_are_refused_before_training() -> None:
    import mlengineer

    df = _conflict(n=60)
    df.loc[5, "w"] = np.nan
    with pytest.raises(ValueError, match=r"'w' has no value in 1 of the 60 rows that have a target \(the first: row 6"):
        mlengineer.train(df, "y", time_budget=3, families=["linear"], track=False, weight_column="w")
    # a row without a target is dropped whatever its weight: its missing weight is no problem
    df.loc[5, "y"] = np.nan
    model = mlengineer.train(df, "y", time_budget=2, families=["linear"], tune=False, track=False, weight_column="w")
    assert model.metadata["weight_column"] == "w"
    with pytest.raises(ValueError, match="'nope' .* not in the data"):
        mlengineer.train(df, "y", time_budget=3, track=False, weight_column="nope")
    with pytest.raises(ValueError, match="is the target"):
        mlengineer.train(df, "y", time_budget=3, track=False, weight_column="y")


# -- the CLI ---------------------------------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize(("change", "words"), [
    ({"column": "weights"}, ["'weights'", "not in the data"]),
    ({"value": "heavy"}, ["'w'", "text", "'heavy'"]),
    ({"value": -1}, ["'w'", "negative"]),
])
def test_train_refuses_bad_weights_with_exit_2(tmp_path: Path, change: dict[str, object], words: list[str]) -> None:
    df = _conflict(n=60).astype({"w": object})
    if "value" in change:
        df.loc[3, "w"] = change["value"]
    csv = tmp_path / "rows.csv"
    df.to_csv(csv, index=False)
    out = tmp_path / "m"
    r = run_cli("train", str(csv), "--target", "y", "--no-track", "--out", str(out), "--time-budget", "3",
                "--weight-column", str(change.get("column", "w")))
    assert_clean_failure(r, *words)
    assert not out.exists()


@pytest.fixture(scope="module")
def weighted_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A bundle trained with --weight-column, and a labelled table that holds the weights."""
    folder = tmp_path_factory.mktemp("weights")
    df = _conflict(light=0.1)
    csv = folder / "rows.csv"
    df.to_csv(csv, index=False)
    r = run_cli("train", str(csv), "--target", "y", "--weight-column", "w", "--no-track", "--out",
                str(folder / "heavy-model"), "--time-budget", "4", "--families", "linear")
    assert r.returncode == 0, r.stderr
    assert "weighted by 'w'" in " ".join(r.stdout.split())  # the leaderboard's title names the weights
    test = _conflict(n=300, light=0.1, seed=9)
    test.to_csv(folder / "test.csv", index=False)
    return folder / "heavy-model", folder / "test.csv"


@pytest.mark.slow
def test_the_weight_column_is_never_needed_to_predict(weighted_model: tuple[Path, Path]) -> None:
    import mlengineer
    from mlengineer.serving.validation import RequestValidator

    path, test = weighted_model
    model = mlengineer.load(path)
    rows = pd.read_csv(test)
    assert "w" not in model.feature_names and model.metadata["weight_column"] == "w"
    without, with_w = rows.drop(columns=["y", "w"]), rows.drop(columns=["y"])
    assert np.allclose(model.predict(without), model.predict(with_w))
    assert np.allclose(model.predict_record(without.iloc[0].to_dict()), model.predict_record(with_w.iloc[0].to_dict()))
    # MLflow's signature requires the features only; the weight and the target are optional inputs it ignores
    signature = yaml.safe_load((path / "MLmodel").read_text())["signature"]
    inputs = json.loads(signature["inputs"])
    assert [c["name"] for c in inputs if c.get("required", True)] == ["x", "z"]
    assert {c["name"] for c in inputs if not c.get("required", True)} == {"w", "y"}
    # the server's validation neither asks for the column nor refuses it
    validator = RequestValidator(model)
    for frame in (without.head(3), with_w.head(3)):
        checked = validator.validate({c: frame[c].tolist() for c in frame.columns}, 3)
        assert set(checked.columns) == {"x", "z"}


@pytest.mark.slow
def test_evaluate_and_compare_weight_by_default_and_not_with_no_weights(weighted_model: tuple[Path, Path]) -> None:
    import mlengineer
    from mlengineer.evaluation.compare import compare_models
    from mlengineer.evaluation.evaluate import evaluate

    path, test = weighted_model
    model, rows = mlengineer.load(path), pd.read_csv(test)
    raw = model.predict_raw(rows.drop(columns=["y", "w"]))
    rmse = get_metric("rmse", "regression")
    weighted, plain = evaluate(model, rows), evaluate(model, rows, weights=False)
    assert weighted["weighted_by"] == "w" and plain["weighted_by"] is None
    assert weighted["metrics"]["rmse"] == pytest.approx(rmse(rows["y"].to_numpy(), raw, rows["w"].to_numpy()))
    assert plain["metrics"]["rmse"] == pytest.approx(rmse(rows["y"].to_numpy(), raw))
    assert weighted["metrics"]["rmse"] < 0.5 * plain["metrics"]["rmse"]  # it learned the heavy rows' relation
    lo, hi = weighted["intervals"]["rmse"]
    assert lo <= weighted["metrics"]["rmse"] <= hi
    assert evaluate(model, rows.drop(columns=["w"]))["weighted_by"] is None  # no column, no weights
    compared = compare_models(model, "baseline", rows)
    assert compared["weighted_by"] == "w" and "weighted" in compared["test"]
    assert compared["scores"][0] == pytest.approx(weighted["metrics"]["rmse"])

    def said(*args: str) -> str:  # the output's words, whatever the table titles' line breaks
        r = run_cli(*args)
        assert r.returncode == 0, r.stderr
        return " ".join(r.stdout.split())

    shown = said("evaluate", str(path), str(test))
    assert "weighted by 'w'" in shown and "--no-weights" in shown
    assert "weighted" not in said("evaluate", str(path), str(test), "--no-weights")
    assert "weighted by 'w'" in said("compare", str(path), "baseline", "--data", str(test))


@pytest.mark.slow
def test_the_server_neither_needs_nor_refuses_the_weight_column(weighted_model: tuple[Path, Path],
                                                               tmp_path: Path) -> None:
    import httpx

    from .test_serve_basic import running_server

    path, test = weighted_model
    rows = pd.read_csv(test).head(3)
    with running_server(path, cwd=tmp_path) as server:
        meta = httpx.get(f"{server.url}/v2/models/{path.name}").json()
        assert [i["name"] for i in meta["inputs"]] == ["x", "z"]
        answers = [httpx.post(f"{server.url}/predict", json={"records": frame.to_dict(orient="records")})
                   for frame in (rows.drop(columns=["y", "w"]), rows.drop(columns=["y"]))]
    assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
    assert answers[0].json()["predictions"] == answers[1].json()["predictions"]


# -- calibration and conformal scores ----------------------------------------------------------------------------

def test_conformal_quantiles_are_weighted() -> None:
    from mlengineer.evaluation.intervals import ConformalClassifier, ConformalRegressor

    rng = np.random.default_rng(4)
    n = 400
    pred = rng.uniform(0, 10, n)
    wide = np.arange(n) % 2 == 0
    y = pred + rng.normal(0, 1, n) * np.where(wide, 5.0, 0.5)
    even = ConformalRegressor().fit(y, pred, np.full(n, 3.0))
    plain = ConformalRegressor().fit(y, pred)
    assert np.allclose(even.bounds(pred, 0.9), plain.bounds(pred, 0.9))  # equal weights: the plain quantiles
    narrow = ConformalRegressor().fit(y, pred, np.where(wide, 0.0, 1.0))  # the wide rows count for nothing
    alone = ConformalRegressor().fit(y[~wide], pred[~wide])
    assert np.allclose(narrow.bounds(pred, 0.9), alone.bounds(pred, 0.9))
    lo, hi = narrow.bounds(pred, 0.9)
    plo, phi = plain.bounds(pred, 0.9)
    assert np.median(hi - lo) < 0.5 * np.median(phi - plo)

    k = 3
    labels = rng.integers(0, k, n)
    proba = rng.dirichlet(np.ones(k), n)
    proba[np.arange(n), labels] += np.where(wide, 0.0, 2.0)
    proba /= proba.sum(axis=1, keepdims=True)
    sure = ConformalClassifier().fit(labels, proba, np.where(wide, 0.0, 1.0))
    assert sure.threshold(0.9) > ConformalClassifier().fit(labels, proba).threshold(0.9)


def test_the_calibrator_is_fitted_with_the_weights() -> None:
    from mlengineer.evaluation.calibration import PlattCalibrator

    rng = np.random.default_rng(5)
    n = 500
    p1 = rng.uniform(0.05, 0.95, n)
    y = (rng.uniform(size=n) < p1).astype(int)
    w = rng.integers(1, 4, n).astype(float)
    weighted = PlattCalibrator().fit(y, np.column_stack([1 - p1, p1]), w)
    repeat = np.repeat(np.arange(n), w.astype(int))  # a weight of 3: the row three times
    copies = PlattCalibrator().fit(y[repeat], np.column_stack([1 - p1, p1])[repeat])
    assert weighted.curve() == pytest.approx(copies.curve(), rel=1e-4)


@pytest.mark.slow
def test_retrain_keeps_the_weights_only_where_every_row_holds_one(weighted_model: tuple[Path, Path],
                                                                   tmp_path: Path) -> None:
    import mlengineer
    from mlengineer.monitoring.retrain import retrain

    bundle, test = weighted_model
    new = _conflict(n=300, light=0.1, seed=4)
    new.drop(columns=["w"]).to_csv(tmp_path / "unweighed.csv", index=False)
    result = retrain(str(bundle), data=str(tmp_path / "unweighed.csv"), time_budget=3, out=tmp_path / "a",
                     promote=False)
    assert any("counts every row once" in n and "'w'" in n for n in result.notes)
    plain = mlengineer.load(tmp_path / "a")
    assert plain.metadata.get("weight_column") is None and "w" not in plain.feature_names

    # the training table as base and new rows that carry their weights: the challenger counts rows by them
    new.to_csv(tmp_path / "weighed.csv", index=False)
    result = retrain(str(bundle), data=str(tmp_path / "weighed.csv"), base_data=str(test), time_budget=3,
                     out=tmp_path / "b", promote=False)
    assert not any("counts every row once" in n for n in result.notes)
    weighed = mlengineer.load(tmp_path / "b")
    assert weighed.metadata.get("weight_column") == "w" and "w" not in weighed.feature_names


@pytest.mark.slow
def test_the_report_says_its_metrics_count_rows_by_their_weights(weighted_model: tuple[Path, Path]) -> None:
    import mlengineer
    from mlengineer.report.html import build_context

    bundle, test = weighted_model
    model = mlengineer.load(bundle)
    rows = pd.read_csv(test)
    assert "each counted by its weight in 'w'" in build_context(model, rows)["rows_on"]
    assert "weight" not in build_context(model, rows.drop(columns=["w"]))["rows_on"]
    on_validation = build_context(model, None)  # the validation rows: their metrics weighted as training's score
    assert "each counted by its weight in 'w'" in on_validation["rows_on"]
    ev, v = on_validation["evaluation"], model.validation
    metric = get_metric(model.metadata["metric"], model.task.kind)
    assert ev["metrics"][metric.name] == pytest.approx(metric(v["y"], v["pred"], v["weight"]))
    assert ev["metrics"][metric.name] != pytest.approx(metric(v["y"], v["pred"]))


def test_rows_are_named_by_index_label_where_the_index_is_not_the_rows_positions() -> None:
    with pytest.raises(DataError, match=r"no value in 1 of the 3 .*\(the first: the row of index 20\)"):
        read_weights(pd.Series([1.0, np.nan, 2.0], index=[10, 20, 30]), "w", by_number=numbered(pd.Index([10, 20, 30])))
    with pytest.raises(DataError, match=r"holds text in 1 row \(the first: row 2, 'x'\)"):
        read_weights(pd.Series([1.0, "x", 2.0]), "w")


def test_a_metric_that_cannot_weigh_rows_is_refused_before_training() -> None:
    import mlengineer

    with pytest.raises(ValueError, match="metric='neg_max_error' cannot count rows by their weights"):
        mlengineer.train(_conflict(n=60), "y", time_budget=3, track=False, weight_column="w", metric="neg_max_error")


def test_validation_rows_that_all_weigh_0_are_refused() -> None:
    import mlengineer

    df = _conflict(n=200).assign(t=np.arange(200))
    df.loc[150:, "w"] = 0.0  # the newest rows, which --time-column makes the validation rows
    with pytest.raises(ValueError, match="Every one of the validation rows .* weighs 0"):
        mlengineer.train(df, "y", time_budget=3, track=False, weight_column="w", time_column="t",
                         families=["linear"])


@pytest.mark.slow
def test_evaluate_on_a_missing_weight_names_no_weights(weighted_model: tuple[Path, Path], tmp_path: Path) -> None:
    bundle, test = weighted_model
    rows = pd.read_csv(test)
    rows.loc[4, "w"] = np.nan
    rows.to_csv(tmp_path / "gap.csv", index=False)
    r = run_cli("evaluate", str(bundle), str(tmp_path / "gap.csv"))
    assert r.returncode == 2 and "--no-weights" in r.stderr and "row 5" in r.stderr, r.stderr
    assert run_cli("evaluate", str(bundle), str(tmp_path / "gap.csv"), "--no-weights").returncode == 0


def test_rows_to_train_on_that_all_weigh_0_are_refused() -> None:
    import mlengineer

    df = _conflict(n=200).assign(t=np.arange(200))
    df.loc[:169, "w"] = 0.0  # the older rows, which --time-column makes the rows to train on
    with pytest.raises(ValueError, match="Every one of the rows to train on .* weighs 0, so no model can learn"):
        mlengineer.train(df, "y", time_budget=3, track=False, weight_column="w", time_column="t",
                         families=["linear"])
