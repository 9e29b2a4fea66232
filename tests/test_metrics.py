"""Metrics by name: defaults per task, aliases, scikit-learn scorer names, and clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from mlengineer.errors import ConfigError
from mlengineer.metrics import get_metric


def test_defaults_per_task() -> None:
    assert get_metric(None, "binary").name == "roc_auc"
    assert get_metric(None, "multiclass").name == "log_loss"
    assert get_metric(None, "regression").name == "rmse"


def test_aliases_and_direction() -> None:
    assert get_metric("AUC", "binary").greater_is_better
    assert get_metric("neg_log_loss", "multiclass").name == "log_loss"
    assert not get_metric("neg_root_mean_squared_error", "regression").greater_is_better
    m = get_metric("rmse", "regression")
    assert m.loss(np.array([1.0, 2.0]), np.array([1.0, 4.0])) == pytest.approx(np.sqrt(2))


def test_any_scikit_learn_scorer_name_works_on_raw_outputs() -> None:
    y = np.array([0, 1, 1, 0, 1])
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.6, 0.4], [0.7, 0.3]])
    assert get_metric("precision", "binary")(y, proba) == pytest.approx(1.0)
    assert get_metric("average_precision", "binary")(y, proba) > 0.8
    mae = get_metric("neg_mean_absolute_error", "regression")
    assert not mae.greater_is_better
    assert mae.loss(np.array([1.0, 3.0]), np.array([2.0, 3.0])) == pytest.approx(0.5)


def test_label_metrics_that_weigh_classes_alike_ask_for_balanced_learners() -> None:
    assert get_metric("balanced_accuracy", "binary").balanced
    assert get_metric("f1_macro", "multiclass").balanced
    assert get_metric("recall_macro", "multiclass").balanced
    assert not get_metric("accuracy", "binary").balanced
    assert not get_metric("roc_auc", "binary").balanced


def test_unknown_or_misplaced_metric_names_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match="rmse"):
        get_metric("rmsle_plus", "regression")
    with pytest.raises(ConfigError, match="does not apply to a regression task"):
        get_metric("roc_auc", "regression")


def test_roc_auc_on_a_fold_missing_a_class() -> None:
    y = np.array([0, 1, 0, 1])
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.6, 0.3, 0.1], [0.3, 0.6, 0.1]])
    assert get_metric("roc_auc", "multiclass")(y, p) == pytest.approx(1.0)


def test_a_metric_that_only_ranks_gives_way_to_log_loss_for_the_ensemble_weights() -> None:
    from mlengineer.metrics import ensemble_metric

    auc = get_metric("roc_auc", "binary")
    assert auc.rank_only and get_metric("average_precision", "binary").rank_only
    assert not get_metric("accuracy", "binary").rank_only and not get_metric("log_loss", "binary").rank_only
    assert ensemble_metric(auc, None, "binary").name == "log_loss"
    assert ensemble_metric(auc, "roc_auc", "binary").name == "roc_auc"  # the user's choice stands
    assert ensemble_metric(get_metric("accuracy", "binary"), None, "binary").name == "accuracy"
    assert ensemble_metric(get_metric("rmse", "regression"), None, "regression").name == "rmse"
    with pytest.raises(ConfigError, match="ensemble_metric: Unknown metric 'nonsense'"):
        ensemble_metric(auc, "nonsense", "binary")
