"""Honest training, the trainer report's mends: probability scorers get probabilities, text scores and splits
follow groups, time and exact copies, scorer names fit their task, and the options and summary say what was done."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

import mlengineer
from mlengineer.cli.train import FAMILY_NAMES, METRIC_NAMES, _done_words, _refit_words
from mlengineer.data.split import feature_fold_ids, group_start_order, make_folds, make_holdout
from mlengineer.errors import ConfigError, DataError
from mlengineer.metrics import METRICS, get_metric
from mlengineer.tasks import make_task
from mlengineer.training.config import TrainConfig
from mlengineer.training.models import load_all
from mlengineer.training.search import portfolio
from mlengineer.training.trainer import fit_pipeline
from mlengineer.training.validation import choose_validation, split_keys

Y2 = np.array([0, 1, 1, 0, 1])
P2 = np.array([[0.8, 0.2], [0.3, 0.7], [0.4, 0.6], [0.6, 0.4], [0.1, 0.9]])


# -- 2, 5, 7: scikit-learn scorers ------------------------------------------------------------------------------

def test_probability_scorers_are_given_probabilities_not_labels() -> None:
    assert get_metric("neg_brier_score", "binary")(Y2, P2) == pytest.approx(skm.brier_score_loss(Y2, P2[:, 1]))
    assert get_metric("d2_brier_score", "binary")(Y2, P2) == pytest.approx(skm.d2_brier_score(Y2, P2[:, 1]))
    y = np.array([0, 1, 1, 0, 1, 0])
    p = np.array([[0.6, 0.4], [0.3, 0.7], [0.55, 0.45], [0.4, 0.6], [0.1, 0.9], [0.8, 0.2]])
    assert get_metric("roc_auc_ovr", "binary")(y, p) == pytest.approx(skm.roc_auc_score(y, p[:, 1]))
    y3 = np.array([0, 1, 2, 0, 1, 2])
    p3 = np.array([[.5, .3, .2], [.2, .5, .3], [.3, .3, .4], [.4, .4, .2], [.1, .6, .3], [.3, .2, .5]])
    assert get_metric("roc_auc_ovr", "multiclass")(y3, p3) == pytest.approx(skm.roc_auc_score(y3, p3, multi_class="ovr"))
    assert get_metric("neg_brier_score", "multiclass")(y3, p3) == pytest.approx(skm.brier_score_loss(y3, p3))


def test_a_scorer_that_cannot_score_the_task_is_refused_in_one_line() -> None:
    with pytest.raises(ConfigError, match="cannot score a multiclass task") as e:
        get_metric("precision", "multiclass")
    assert "\n" not in str(e.value)
    with pytest.raises(ConfigError, match=r"not apply to a binary task \(it is for a regression task\): use one of [\w, ]+\.$"):
        get_metric("neg_mean_squared_error", "binary")
    with pytest.raises(ConfigError, match="--task regression"):  # an integer target read as classes
        get_metric("rmse", "multiclass")


def test_neg_scorers_show_the_error_under_a_name_without_neg() -> None:
    m = get_metric("neg_median_absolute_error", "regression")
    assert m.name == "median_absolute_error" and not m.greater_is_better
    assert m(np.array([1.0, 2.0, 3.0]), np.array([2.0, 2.0, 4.0])) == pytest.approx(1.0)
    assert get_metric(m.name, "regression").name == m.name  # a bundle's metric name reads back


def test_a_scorer_that_raises_on_the_target_ends_in_a_config_error() -> None:
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"x": rng.normal(size=80)})
    df["y"] = df["x"] - 5  # negative: Poisson deviance is undefined
    with pytest.raises(ConfigError, match="cannot score this target"):
        fit_pipeline(df, TrainConfig(target="y", metric="neg_mean_poisson_deviance", time_budget=3,
                                     families=["linear"]))


def test_binary_precision_does_not_balance_classes_but_macro_precision_does() -> None:
    assert not get_metric("precision", "binary").balanced
    assert get_metric("precision_macro", "multiclass").balanced
    assert get_metric("recall", "binary").balanced


def test_the_help_names_every_built_in_metric_and_every_family() -> None:
    assert all(name in METRIC_NAMES for name in METRICS)
    assert sorted(FAMILY_NAMES.split(", ")) == sorted(load_all())


# -- 1: text scores learned across the validation's boundaries ------------------------------------------------

def test_text_folds_follow_groups_and_time() -> None:
    y = np.arange(40) % 2
    groups = np.repeat(np.arange(8), 5)
    fold, forward = feature_fold_ids(y, 5, classification=True, seed=0, groups=groups)
    assert not forward and all(len(set(fold[groups == g])) == 1 for g in range(8))
    order = np.r_[np.arange(39, 0, -1), np.nan]
    fold, forward = feature_fold_ids(y, 4, classification=True, seed=0, order=order)
    assert forward and fold[-1] == 0  # a row without a time teaches, never learns from the future
    by_time = fold[:-1][np.argsort(order[:-1])]
    assert np.all(np.diff(by_time) >= 0) and by_time[0] == 0 and by_time[-1] == 3


def _group_text_table(n_groups: int = 60, seed: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    vocab = ["".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz"), 6)) for _ in range(2000)]
    rows = []
    for g in range(n_groups):
        effect, words = 3 * rng.normal(), " ".join(rng.choice(vocab, 8))
        for _ in range(10):
            x = rng.normal()
            rows.append({"customer": f"c{g}", "notes": "notes: " + words, "x": x, "y": x + effect + 0.3 * rng.normal()})
    return pd.DataFrame(rows)


def test_text_scores_do_not_carry_a_groups_target_into_its_validation() -> None:
    df = _group_text_table()
    config = TrainConfig(target="y", group_column="customer", column_roles={"notes": "text"}, time_budget=4,
                         families=["linear"], tune=False)
    result = fit_pipeline(df, config)
    # a new customer's effect is unknown: an honest score is near the effects' spread (about 3), not the noise's
    assert result.validation_score > 1.5, result.validation_score


# -- 4, 3: group and time together; exact copies --------------------------------------------------------------

def test_groups_under_a_time_order_stay_whole_and_follow_their_first_time() -> None:
    rng = np.random.default_rng(1)
    groups = np.repeat(np.arange(50), 6)
    when = rng.integers(0, 365, size=300).astype(float)
    start = group_start_order(when, groups)
    assert all(start[groups == g].min() == start[groups == g].max() == when[groups == g].min() for g in range(50))
    s = make_holdout(np.zeros(300), fraction=0.2, order=start)
    assert not set(groups[s.train]) & set(groups[s.valid])
    assert start[s.valid].min() >= start[s.train].max()


def test_train_keeps_groups_whole_under_a_time_column() -> None:
    rng = np.random.default_rng(2)
    rows = [{"customer": f"c{g}", "when": pd.Timestamp("2021-01-01") + pd.Timedelta(days=int(rng.integers(0, 365))),
             "x": rng.normal(), "y": rng.normal()} for g in range(40) for _ in range(8)]
    df = pd.DataFrame(rows)
    result = fit_pipeline(df, TrainConfig(target="y", group_column="customer", time_column="when", time_budget=3,
                                          families=["linear"], tune=False))
    assert "whole groups" in result.split_strategy
    valid = np.zeros(len(df), bool)
    valid[result.valid_rows] = True
    assert not set(df["customer"][valid]) & set(df["customer"][~valid])


def test_exact_copies_stay_on_one_side_of_every_fold() -> None:
    rng = np.random.default_rng(3)
    base = pd.DataFrame({"a": rng.normal(size=200), "y": rng.integers(0, 2, 200)})
    rows = pd.concat([base] * 3).sample(frac=1, random_state=0).reset_index(drop=True)
    groups, order, copies = split_keys(rows, None, None)
    assert copies == 400 and order is None and groups is not None
    for _, va in make_folds(rows["y"].to_numpy(), n_splits=5, stratify=True, groups=groups):
        held = set(map(tuple, rows.iloc[va].to_numpy()))
        rest = set(map(tuple, rows.drop(index=va).to_numpy()))
        assert not held & rest
    assert split_keys(base.drop_duplicates(), None, None)[2] == 0


def test_train_says_copies_were_kept_together() -> None:
    rng = np.random.default_rng(4)
    base = pd.DataFrame({"a": rng.normal(size=150), "b": rng.normal(size=150)})
    base["y"] = np.where(base["a"] + rng.normal(size=150) > 0, "yes", "no")
    df = pd.concat([base] * 2, ignore_index=True)
    result = fit_pipeline(df, TrainConfig(target="y", time_budget=3, families=["linear"], tune=False))
    assert "150 rows repeating another exactly kept on the side of their copies" in result.split_strategy
    assert "grouped" not in result.split_strategy
    valid = set(map(tuple, df.iloc[result.valid_rows].to_numpy()))
    other = set(map(tuple, df.drop(index=result.valid_rows).to_numpy()))
    assert not valid & other


# -- 6, 11, 12: options and the summary -----------------------------------------------------------------------

def test_drop_and_keep_of_one_column_are_refused_and_a_kept_column_is_said_kept() -> None:
    with pytest.raises(ConfigError, match="--drop and --keep both name the column 'status'"):
        TrainConfig.build(target="y", drop=["status"], keep=["status"])
    finding = {"severity": "error", "column": "status", "action": "drop_column"}
    assert _done_words(finding, {"config": {"keep": ["status"]}}) == "kept (--keep)"
    assert _done_words(finding, {"config": {"keep": []}}) == "column dropped"


def test_the_summary_names_kept_members_not_refit_on_every_row() -> None:
    meta: dict[str, Any] = {"split": "stratified holdout (20%)",
                            "ensemble": [{"model": "catboost_1", "weight": 0.6}, {"model": "linear_1", "weight": 0.4}],
                            "leaderboard": [{"model": "ensemble", "params": {"refit_on_all_rows": ["linear_1"]}}]}
    words = _refit_words(meta)
    assert "catboost_1" in words and "linear_1" not in words and "never saw the validation rows" in words
    meta["leaderboard"][0]["params"]["refit_on_all_rows"] = ["linear_1", "catboost_1"]
    assert _refit_words(meta) == ""


def test_an_empty_family_list_and_unsuited_families_are_refused() -> None:
    with pytest.raises(ConfigError, match="names no family"):
        TrainConfig.build(target="y", families=[])
    task = make_task(pd.Series(["a", "b"] * 50), "binary")
    with pytest.raises(ConfigError, match="suits this table"):
        portfolio(task, 100, 3, ["cnn"], feature_names=["x", "y", "z"])


def test_a_class_a_row_target_is_refused_before_training() -> None:
    rng = np.random.default_rng(6)
    df = pd.DataFrame({"x": rng.normal(size=200), "y": rng.normal(size=200)})
    with pytest.raises(DataError, match="--task regression"):
        fit_pipeline(df, TrainConfig(target="y", task="multiclass", time_budget=3, families=["linear"]))


# -- 9, 10: stratification with rare classes ------------------------------------------------------------------

def test_a_one_row_class_keeps_the_holdout_stratified() -> None:
    y = np.array(["a"] * 500 + ["b"] * 60 + ["c"])
    s = make_holdout(y, fraction=0.2, stratify=True, seed=0)
    assert s.strategy.startswith("stratified")
    assert "c" in set(y[s.train]) and np.sum(y[s.valid] == "b") == 12


def test_a_rare_minority_buys_k_folds_instead_of_a_tiny_holdout() -> None:
    y = np.r_[np.ones(30), np.zeros(2970)]
    assert choose_validation(y, budget=10, stratify=True).kind == "kfold"
    assert choose_validation(np.arange(3000) % 2, budget=10, stratify=True).kind == "holdout"


def test_small_data_is_said_to_score_optimistically(capsys: pytest.CaptureFixture[str]) -> None:
    from types import SimpleNamespace

    from mlengineer.cli.train import print_training_summary

    board = [{"model": "linear_1", "score": 0.9, "fit_s": 0.1, "predict_ms_per_row": 0.01, "status": "ok"}]
    meta = {"findings": [{"check": "few_rows", "severity": "warning", "message": "only 40 rows"}], "metric": "roc_auc",
            "split": "stratified 5-fold cross-validation", "leaderboard": board, "target": "y", "config": {}}
    print_training_summary(SimpleNamespace(metadata=meta, plan=None))
    assert "likely optimistic" in " ".join(capsys.readouterr().out.split())


def test_the_calibration_rows_keep_groups_whole_under_a_time_column() -> None:
    from mlengineer.training.trainer import calibration_slice

    rng = np.random.default_rng(7)
    groups = np.repeat(np.arange(60), 5)
    when = rng.integers(0, 1000, size=300).astype(float)
    y = rng.normal(size=300)
    frame = pd.DataFrame({"x": rng.normal(size=300), "y": y})
    g, order, _ = split_keys(frame, groups, when)
    config = TrainConfig(target="y", calibration_fraction=0.2)
    fit, cal = calibration_slice(y, config, make_task(pd.Series(y), "regression"), g, order)
    assert cal is not None and not set(groups[fit]) & set(groups[cal])


def test_copies_that_are_how_the_table_is_are_not_grouped() -> None:
    """Ninety rows of three colours each with its answer: every row repeats another, and grouping them left a
    fold of one class ('No model could be trained'). Copies are grouped only among many distinct rows."""
    from mlengineer.data.split import copy_groups

    few = pd.DataFrame({"colour": ["red", "green", "blue"] * 30, "y": [1, 0, 0] * 30})
    assert copy_groups(few) is None
    rng = np.random.default_rng(0)
    records = pd.DataFrame({"x": rng.normal(size=300), "y": rng.integers(0, 2, 300)})
    tripled = pd.concat([records] * 3, ignore_index=True)
    codes = copy_groups(tripled)
    assert codes is not None and len(np.unique(codes)) == 300
    model = mlengineer.train(few, "y", time_budget=2, families=["linear"], track=False)
    assert model.task.kind == "binary"
