"""XGBoost members compiled to ONNX at save (issue 16): the compiled trees answer one row as XGBoost does
(within 1e-6; in practice to the float32 bit), a bundle without them or without onnxruntime predicts the
same through XGBoost, and a changed .onnx file is refused by the manifest like any other file."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import mlengineer
from mlengineer.bundle.compiled import attach_compiled, fitted_members, write_compiled
from mlengineer.errors import ModelError
from mlengineer.tasks import BinaryTask, MulticlassTask, RegressionTask
from mlengineer.training.ensemble import Bag, Ensemble
from mlengineer.training.models import FitContext, get_family
from mlengineer.training.models.xgboost_onnx import Forest, OnnxTrees, UnsupportedModel

FIXTURES = Path(__file__).parent / "fixtures"
#: task kind -> (table, target): real rows with categorical columns (plan, job titles, countries)
TABLES = {"binary": ("churn_800.csv", "churn"), "multiclass": ("salaries_1500.csv", "experience_level"),
          "regression": ("salaries_1500.csv", "salary_in_usd")}


def tolerance(kind: str, native: np.ndarray) -> float:
    """What the bundle's check allows: 1e-6 on probabilities, 1e-6 of the largest value for regression."""
    return 1e-6 * (1.0 if kind != "regression" else max(1.0, float(np.max(np.abs(native)))))


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One XGBoost bundle per task kind, trained once for this module."""
    root = tmp_path_factory.mktemp("compiled-xgb")
    out = {}
    for kind, (table, target) in TABLES.items():
        out[kind] = root / kind
        mlengineer.train(FIXTURES / table, target, time_budget=3, families=["xgboost"], tune=False, track=False,
                         seed=0, out=out[kind])
    return out


def real_rows(kind: str) -> pd.DataFrame:
    table, target = TABLES[kind]
    return pd.read_csv(FIXTURES / table).drop(columns=[target]).head(300)


def xgboost_members(model: Any) -> list[tuple[str, Any]]:
    return [(k, m) for k, m in fitted_members(model.predictor) if getattr(m, "family", "") == "xgboost"]


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression"])
def test_compiled_trees_answer_real_rows_as_xgboost(bundles: dict[str, Path], kind: str) -> None:
    model = mlengineer.load(bundles[kind])
    members = xgboost_members(model)
    assert members
    for key, _ in members:
        info = model.metadata["compiled"][key]
        assert info["compiled"] is True and info["engine"].startswith("onnxruntime")
        assert (bundles[kind] / "artifacts" / "bundle" / info["file"]).is_file()
        assert info["max_diff"] <= info["tolerance"] and info["rows_checked"] >= 300
    rows = real_rows(kind)
    X = model.encode(rows)
    for _, member in members:  # each member: its ONNX row function against XGBoost on the whole batch
        row = member.row_function()
        assert row is not None, "a compiled member answers single rows through ONNX Runtime"
        native = member.predict_raw(X)
        got = np.concatenate([row(X[i : i + 1]) for i in range(len(X))])
        assert got.shape == native.shape
        np.testing.assert_allclose(got, native, rtol=0, atol=tolerance(kind, native))
    # end to end: one record through the row path (cleaning, encoding, compiled trees, calibrator) against
    # the batch path, which predicts with XGBoost itself
    assert model.row_path() is not None
    records = rows.to_dict(orient="records")
    one = np.concatenate([model.predict_record(r) for r in records])
    batch = model.predict_raw(rows)
    np.testing.assert_allclose(one, batch, rtol=0, atol=tolerance(kind, batch))


@pytest.mark.slow
def test_without_onnxruntime_the_bundle_predicts_through_xgboost(bundles: dict[str, Path],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    compiled = mlengineer.load(bundles["binary"])
    rows = real_rows("binary")
    records = rows.to_dict(orient="records")
    fast = np.concatenate([compiled.predict_record(r) for r in records])
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime now raises ImportError
    model = mlengineer.load(bundles["binary"])
    assert all(m.row_function() is None for _, m in xgboost_members(model))
    one = np.concatenate([model.predict_record(r) for r in records])
    np.testing.assert_array_equal(one, model.predict_raw(rows))  # XGBoost itself, row by row and batched
    np.testing.assert_allclose(one, fast, rtol=0, atol=1e-6)


@pytest.mark.slow
def test_saved_without_the_compilers_the_bundle_says_why_and_predicts_the_same(
        bundles: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = mlengineer.load(bundles["regression"])
    rows = real_rows("regression")
    before = model.predict_raw(rows)
    for _, m in xgboost_members(model):
        m.attach_compiled(None)  # as a freshly trained model: nothing compiled yet
    monkeypatch.setitem(sys.modules, "onnx", None)
    model.save(tmp_path / "plain")
    monkeypatch.undo()  # onnxruntime is back: the saved bundle still has nothing to compile from
    again = mlengineer.load(tmp_path / "plain")
    assert not (tmp_path / "plain" / "artifacts" / "bundle" / "compiled").exists()
    for key, m in xgboost_members(again):
        assert again.metadata["compiled"][key] == {"compiled": False, "reason": "onnx is not installed"}
        assert m.row_function() is None
    np.testing.assert_array_equal(again.predict_raw(rows), before)
    records = rows.head(20).to_dict(orient="records")
    np.testing.assert_array_equal(np.concatenate([again.predict_record(r) for r in records]), before[:20])


@pytest.mark.slow
def test_a_changed_or_missing_onnx_file_is_refused(bundles: dict[str, Path], tmp_path: Path) -> None:
    src = bundles["multiclass"]
    # the first compiled member, whichever the search kept (its names depend on what it tried)
    name = next(v["file"] for v in mlengineer.load(src).metadata["compiled"].values() if v.get("compiled"))
    pattern = name.replace(".", r"\.")
    changed = tmp_path / "changed"
    shutil.copytree(src, changed)
    onnx_file = changed / "artifacts" / "bundle" / name
    data = bytearray(onnx_file.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit: a leaf value or a threshold
    onnx_file.write_bytes(bytes(data))
    with pytest.raises(ModelError, match=f"{pattern} does not match its manifest"):
        mlengineer.load(changed)
    missing = tmp_path / "missing"
    shutil.copytree(src, missing)
    (missing / "artifacts" / "bundle" / name).unlink()
    with pytest.raises(ModelError, match=f"{pattern} is missing"):
        mlengineer.load(missing)


# -- the converter and the check on boosters fitted here (fast: no bundle) ---------------------------------

def fit_xgboost(kind: str, seed: int = 1, n_estimators: int = 60) -> tuple[Any, np.ndarray]:
    """A booster with numeric splits, one-hot category splits (4 codes) and set splits (30 codes)."""
    rng = np.random.default_rng(seed)
    n = 800
    X = rng.normal(size=(n, 5)).astype(np.float32)
    X[:, 2] = rng.integers(0, 30, n)
    X[:, 3] = rng.integers(0, 4, n)
    X[rng.random(X.shape) < 0.08] = np.nan
    signal = np.nan_to_num(X[:, 0]) + np.isin(X[:, 2], [1, 4, 7, 9, 20]) + (X[:, 3] == 2) - 0.5 * np.isnan(X[:, 1])
    noisy = signal + rng.normal(0, 0.3, n)
    task: Any
    if kind == "binary":
        y, task = (noisy > 0.6).astype(np.int64), BinaryTask(["no", "yes"])
    elif kind == "multiclass":
        y, task = np.digitize(noisy, [0.0, 1.0]).astype(np.int64), MulticlassTask(["a", "b", "c"])
    else:
        y, task = 40_000 * noisy + 90_000, RegressionTask()
    ctx = FitContext(task=task, categorical=[2, 3], cardinalities=[30, 4], seed=0, n_jobs=1, time_limit=60)
    fam = get_family("xgboost")
    model = fam.fit(X, y, ctx, {**fam.default_configs(task, n, 5)[0], "n_estimators": n_estimators})
    return model, X


@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression"])
def test_onnx_margins_equal_xgboost_to_the_bit_on_and_beside_every_split(kind: str) -> None:
    model, X = fit_xgboost(kind)
    booster = model.estimator
    forest = Forest(booster)
    splits = forest.split_type[~forest.leaf]
    assert set(splits) == {0, 1}, "the booster should have numeric and categorical splits"
    assert max(len(c) for c in forest.cats.values()) > 1, "and category sets of more than one code"
    trees = OnnxTrees(forest.to_onnx(), kind)
    rows = np.vstack([X[:100], forest.boundary_rows(X, n=300, seed=3)])
    rows[:5, 2] = [31, 45, -1, 1e6, np.nan]  # codes never seen, a negative one, a missing one
    native = booster.inplace_predict(rows, predict_type="margin").reshape(len(rows), -1)
    np.testing.assert_array_equal(trees.margin(rows), native)
    np.testing.assert_array_equal(np.vstack([trees.margin(rows[i : i + 1]) for i in range(len(rows))]), native)
    np.testing.assert_allclose(trees.predict(rows), booster.inplace_predict(rows), rtol=0,
                               atol=1e-6 if kind != "regression" else 0)


def test_compile_keeps_only_what_agrees() -> None:
    model, X = fit_xgboost("binary")
    data, info = model.compile(X[:50])
    assert data is not None and info["compiled"] is True and info["rows_checked"] == 350
    other, _ = fit_xgboost("binary", seed=2)
    other.attach_compiled(data)  # another model's trees: the check must refuse them
    refused, why = other.compile(X[:50])
    assert refused is None and why["compiled"] is False and why["reason"].startswith("answers differ from XGBoost's")
    assert other.row_function() is None and other.compiled is None


@pytest.mark.parametrize("kind", ["binary", "multiclass"])
def test_a_few_rows_go_through_the_compiled_trees_and_many_through_xgboost(kind: str) -> None:
    """The server's small batches: up to ``SMALL_BATCH`` rows through ONNX Runtime, as XGBoost answers them."""
    from mlengineer.training.models import xgboost as xgb_module

    model, X = fit_xgboost(kind)
    native = model.predict_raw(X[:200])  # no compiled form yet: XGBoost's own
    data, info = model.compile(X[:50])
    assert data is not None and info["compiled"] is True
    booster = model.estimator

    class Refusing:
        def inplace_predict(self, *args: Any, **kwargs: Any) -> None:
            raise AssertionError("XGBoost was called for a small batch")

    model.estimator = Refusing()
    for n in (1, 8, xgb_module.SMALL_BATCH):
        np.testing.assert_allclose(model.predict_raw(X[:n]), native[:n], rtol=0, atol=1e-6)
    with pytest.raises(AssertionError, match="XGBoost was called"):
        model.predict_raw(X[: xgb_module.SMALL_BATCH + 1])
    model.estimator = booster
    np.testing.assert_array_equal(model.predict_raw(X[:200]), native)


def test_unsupported_boosters_are_left_to_xgboost() -> None:
    import xgboost as xgb

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(200, 3)).astype(np.float32), rng.normal(size=200)
    linear = xgb.train({"booster": "gblinear", "verbosity": 0, "nthread": 1}, xgb.DMatrix(X, label=y), 5)
    with pytest.raises(UnsupportedModel, match="gblinear"):
        Forest(linear)
    poisson = xgb.train({"objective": "count:poisson", "verbosity": 0, "nthread": 1}, xgb.DMatrix(X, label=np.abs(y)), 5)
    with pytest.raises(UnsupportedModel, match="count:poisson"):
        Forest(poisson)


def test_bundle_files_per_member_and_fold(tmp_path: Path) -> None:
    """An ensemble of a bag of two XGBoost folds and a LightGBM model: a file per fold, a reason for the
    other member, and each fold gets its own file back."""
    a, X = fit_xgboost("multiclass", seed=1, n_estimators=20)
    b, _ = fit_xgboost("multiclass", seed=2, n_estimators=20)
    fam = get_family("lightgbm")
    task = a.task
    ctx = FitContext(task=task, seed=0, n_jobs=1, time_limit=60)
    y = np.arange(len(X)) % 3
    lgb = fam.fit(np.nan_to_num(X), y, ctx, {**fam.default_configs(task, len(X), 5)[0], "n_estimators": 10})

    class Holder:
        extras = {"background": X[:40]}
        predictor = Ensemble([("xgboost_1", Bag([a, b]), 0.7), ("lightgbm_1", lgb, 0.3)])

    record = write_compiled(Holder(), tmp_path)
    assert set(record) == {"xgboost_1.fold0", "xgboost_1.fold1", "lightgbm_1"}
    assert record["lightgbm_1"] == {"compiled": False, "reason": "the lightgbm family has no compiled form"}
    assert sorted(p.name for p in (tmp_path / "compiled").iterdir()) == ["xgboost_1.fold0.onnx", "xgboost_1.fold1.onnx"]
    a2, _ = fit_xgboost("multiclass", seed=1, n_estimators=20)
    b2, _ = fit_xgboost("multiclass", seed=2, n_estimators=20)
    attach_compiled(Ensemble([("xgboost_1", Bag([a2, b2]), 0.7), ("lightgbm_1", lgb, 0.3)]), tmp_path, record)
    assert a2.compiled == a.compiled and b2.compiled == b.compiled and a.compiled != b.compiled
