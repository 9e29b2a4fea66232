"""The ensemble's lean step: a member that costs time for an out-of-fold gain within noise leaves
(``ensemble.lean_ensemble``), judged on the paired per-row losses (``metrics.row_losses``)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from sklearn import metrics as skm

from mlengineer.metrics import get_metric, row_losses
from mlengineer.training.config import TrainConfig
from mlengineer.training.ensemble import lean_ensemble
from mlengineer.training.selection import _blend, _held_key


def test_row_losses_average_to_the_metrics_own_loss() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 200)
    p = rng.dirichlet(np.ones(3), 200)
    assert np.mean(row_losses(get_metric("log_loss", "multiclass"), y, p)) == pytest.approx(
        skm.log_loss(y, p, labels=[0, 1, 2]))
    assert np.mean(row_losses(get_metric("accuracy", "multiclass"), y, p)) == pytest.approx(
        1 - skm.accuracy_score(y, p.argmax(axis=1)))
    v, t = rng.normal(size=200), rng.normal(size=200)
    assert np.sqrt(np.mean(row_losses(get_metric("rmse", "regression"), t, v))) == pytest.approx(
        np.sqrt(skm.mean_squared_error(t, v)))
    assert np.mean(row_losses(get_metric("mae", "regression"), t, v)) == pytest.approx(skm.mean_absolute_error(t, v))
    # not made of rows: no per-row loss, so the lean step keeps every member
    assert row_losses(get_metric("roc_auc", "binary"), y % 2, p[:, :2]) is None
    assert row_losses(get_metric("f1_macro", "multiclass"), y, p) is None


def _world(n: int, seed: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """A target, a good fast model, a second as good with its own errors (a real gain when averaged) and a slow
    model that is the first with a whisker of its own noise (a gain of nothing)."""
    rng = np.random.default_rng(seed)
    y = rng.normal(size=n)
    fast = y + rng.normal(0, 0.5, n)
    other = y + rng.normal(0, 0.5, n)
    slow = fast + rng.normal(0, 0.02, n)
    return y, {"fast": fast, "other": other, "slow": slow}


def test_a_slow_member_that_adds_nothing_leaves_and_one_that_adds_stays() -> None:
    y, preds = _world(2_000, 1)
    metric = get_metric("rmse", "regression")
    weights = {"fast": 0.4, "other": 0.4, "slow": 0.2}
    cost = {"fast": 0.02, "other": 0.03, "slow": 0.5}
    kept, left = lean_ensemble(weights, preds, y, metric, cost)
    assert set(kept) == {"fast", "other"} and sum(kept.values()) == pytest.approx(1.0)
    assert kept["fast"] == pytest.approx(0.5) and [d["model"] for d in left] == ["slow"]
    assert left[0]["loss_gain"] <= left[0]["loss_gain_se"]
    # the second model's gain is real (averaging two independent errors): it stays, however dear
    kept, left = lean_ensemble(weights, preds, y, metric, {**cost, "other": 5.0})
    assert "other" in kept and "slow" not in kept


def test_a_cheap_member_stays_and_metrics_not_made_of_rows_keep_all() -> None:
    y, preds = _world(2_000, 2)
    weights = {"fast": 0.4, "other": 0.4, "slow": 0.2}
    # now the near copy is the cheap one (under 5% of the members' time): it stays whatever it adds, and takes
    # the weight of the dear model it copies
    kept, left = lean_ensemble(weights, preds, y, get_metric("rmse", "regression"),
                               {"fast": 1.0, "other": 1.0, "slow": 0.01})
    assert kept == {"other": 0.4, "slow": pytest.approx(0.6)} and [d["model"] for d in left] == ["fast"]
    yb = (y > 0).astype(int)
    probs = {k: np.column_stack([1 - 1 / (1 + np.exp(-v)), 1 / (1 + np.exp(-v))]) for k, v in preds.items()}
    kept, left = lean_ensemble(weights, probs, yb, get_metric("f1", "binary"), {"fast": 0.02, "other": 0.03,
                                                                                "slow": 0.5})
    assert kept == weights and left == []


def test_near_copies_leave_one_by_one_and_the_rest_stays_near_the_first_choice() -> None:
    """Ten equally slow members that share most of their errors (each with a little noise of its own): the
    first few removals cost nothing measurable and go, the last ones would cost and stay; what is kept is
    within one standard error of the ensemble first chosen, paired by row."""
    rng = np.random.default_rng(3)
    n = 3_000
    y, shared = rng.normal(size=n), rng.normal(size=n)
    parts = {f"m{i}": y + shared + rng.normal(0, 0.3, n) for i in range(10)}
    metric = get_metric("rmse", "regression")
    weights = {k: 0.1 for k in parts}
    kept, left = lean_ensemble(weights, parts, y, metric, {k: 1.0 for k in parts})
    assert len(left) >= 3 and len(kept) >= 2 and sum(kept.values()) == pytest.approx(1.0)
    d = (y - sum(parts[k] * w for k, w in kept.items())) ** 2 - (y - sum(parts[k] * w for k, w in weights.items())) ** 2
    assert 0 < d.mean() <= d.std(ddof=1) / np.sqrt(n)


def test_row_weights_count_in_the_paired_test() -> None:
    """A slow member that helps only on rows of weight 0 adds nothing the user counts: it leaves."""
    rng = np.random.default_rng(4)
    n = 2_000
    y = rng.normal(size=n)
    fast = y + rng.normal(0, 0.5, n)
    helper = np.where(np.arange(n) < n // 2, y, fast)  # perfect on the first half, the fast model elsewhere
    metric = get_metric("rmse", "regression")
    weights = {"fast": 0.5, "helper": 0.5}
    cost = {"fast": 0.02, "helper": 1.0}
    assert "helper" in lean_ensemble(weights, {"fast": fast, "helper": helper}, y, metric, cost)[0]
    row_w = (np.arange(n) >= n // 2).astype(float)
    kept, left = lean_ensemble(weights, {"fast": fast, "helper": helper}, y, metric, cost, row_weights=row_w)
    assert kept == {"fast": 1.0} and left[0]["model"] == "helper"


def test_the_option_is_checked_and_its_default_keeps_the_runs_remembered_key() -> None:
    base = TrainConfig(target="y", time_budget=10)
    assert base.ensemble_lean_se == 1.0
    assert _held_key(base) == _held_key(TrainConfig(target="y", time_budget=10, ensemble_lean_se=1.0))
    assert _held_key(base) != _held_key(TrainConfig(target="y", time_budget=10, ensemble_lean_se=None))
    with pytest.raises(ValueError, match="ensemble_lean_se"):
        TrainConfig(target="y", ensemble_lean_se=-1)


def _searched(preds: dict[str, np.ndarray], y: np.ndarray, cost: dict[str, float]) -> SimpleNamespace:
    """What ``selection._blend`` reads of a search: its candidates best first, the scored rows, the aim."""
    metric = get_metric("rmse", "regression")
    ok = sorted((SimpleNamespace(name=k, valid_pred=p, latency_ms=cost[k], loss=metric.loss(y, p))
                 for k, p in preds.items()), key=lambda c: c.loss)
    return SimpleNamespace(ok=ok, ys=y, validation=SimpleNamespace(scored=np.arange(len(y))), max_models=None,
                           model_limit=None, overhead_ms=0.01, row_weights=None, rows=np.arange(len(y)))


def test_the_search_blend_drops_a_slow_member_unless_told_to_keep_every_one() -> None:
    y, preds = _world(2_000, 5)
    searched = _searched(preds, y, {"fast": 0.02, "other": 0.03, "slow": 0.8})
    metric = get_metric("rmse", "regression")
    full, none_left = _blend(searched, metric, None)
    lean, left = _blend(searched, metric, 1.0)
    assert none_left == [] and "slow" in full, full  # the greedy selection takes it: a whisker better out of fold
    # its weight goes to the member it copies, which keeps the balance with the other: not in proportion
    assert lean == {"other": 0.5, "fast": pytest.approx(0.5)} and [d["model"] for d in left] == ["slow"]


def test_the_training_summary_names_the_members_left_out_for_their_time(capsys: pytest.CaptureFixture[str]) -> None:
    from mlengineer.cli.train import print_training_summary

    left = [{"model": "xgboost_1", "weight": 0.04, "ms": 0.131, "loss_gain": 1e-5, "loss_gain_se": 4e-4}]
    board = [{"model": "ensemble", "score": 0.8162, "fit_s": 1.2, "predict_ms_per_row": 0.01, "predict_1row_ms": 0.07,
              "status": "ok", "params": {"weights_chosen_by": "log_loss", "left_for_time": left}},
             {"model": "linear_1", "score": 0.8150, "fit_s": 0.5, "predict_ms_per_row": 0.001,
              "predict_1row_ms": 0.03, "status": "ok"}]
    meta = {"metric": "roc_auc", "greater_is_better": True, "split": "stratified 5-fold cross-validation",
            "leaderboard": board, "findings": [], "cleaning": [], "timings": {"pipeline_1row_ms": 0.026},
            "ensemble": [{"model": "linear_1", "weight": 0.89}, {"model": "lightgbm_1", "weight": 0.11}]}
    print_training_summary(SimpleNamespace(metadata=meta, plan=None))
    printed = " ".join(capsys.readouterr().out.split())
    assert ("linear_1 (89%), lightgbm_1 (11%). Left out for their time, their gain out of fold within noise: "
            "xgboost_1 (0.13 ms a row).") in printed, printed
