"""Concept drift column by column, and the estimators' own calibration: an input's relation to the outcome
tested on synthetic data of known shape (kept, broken) and on a real bundle with outcomes joined (the alarm,
its words, and why it is not tested without outcomes or when inputs drifted); multiclass CBPE corrected for
probabilities that are too timid; the regression estimate's interval widened by the reference's size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlengineer.monitoring.columns import prepare
from mlengineer.monitoring.estimate import ConfidenceCalibrator, LossModel, decisions, estimate_classifier
from mlengineer.monitoring.relation import relation_changes


def _frame_cols(df: pd.DataFrame, roles: dict[str, str], ref: dict | None = None) -> dict:
    return {c: prepare(df[c], r, name=c, categories=None if ref is None else ref[c].categories)
            for c, r in roles.items()}


def _table(n: int, rng: np.random.Generator, *, task: str) -> tuple[pd.DataFrame, np.ndarray]:
    """x drives the outcome, plan (a category) a little, z not at all."""
    df = pd.DataFrame({"x": rng.normal(size=n), "z": rng.normal(size=n),
                       "plan": rng.choice(["basic", "plus", "pro"], size=n)})
    signal = df["x"].to_numpy() + 0.6 * (df["plan"] == "pro").to_numpy() + rng.normal(0, 0.8, n)
    if task == "regression":
        return df, signal
    if task == "binary":
        return df, (signal > 0.2).astype(float)
    return df, np.digitize(signal, [-0.6, 0.6]).astype(float)


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_a_kept_relation_passes_and_a_broken_one_is_named(task: str) -> None:
    rng = np.random.default_rng(3)
    roles = {"x": "numeric", "z": "numeric", "plan": "categorical"}
    ref_df, y_ref = _table(1500, rng, task=task)
    cur_df, y_cur = _table(1500, rng, task=task)
    ref = _frame_cols(ref_df, roles)
    same = relation_changes(ref, y_ref, _frame_cols(cur_df, roles, ref), y_cur, task=task)
    assert [t.column for t in same] == ["x", "z", "plan"] and not any(t.changed for t in same)
    assert min(t.p_value for t in same) > 0.001
    broken = cur_df.assign(x=cur_df["x"].to_numpy()[rng.permutation(len(cur_df))])  # same values, no bearing
    tests = {t.column: t for t in relation_changes(ref, y_ref, _frame_cols(broken, roles, ref), y_cur, task=task)}
    assert tests["x"].changed and not tests["z"].changed and not tests["plan"].changed
    # the words' numbers: x told a lot about the outcome in the reference, next to nothing now
    assert tests["x"].information_reference > 0.2 > 0.05 > tests["x"].information_current


def test_a_category_that_stopped_mattering_is_found() -> None:
    rng = np.random.default_rng(4)
    roles = {"x": "numeric", "z": "numeric", "plan": "categorical"}
    ref_df, y_ref = _table(3000, rng, task="binary")
    cur_df, y_cur = _table(3000, rng, task="binary")
    cur_df["plan"] = cur_df["plan"].to_numpy()[rng.permutation(len(cur_df))]
    ref = _frame_cols(ref_df, roles)
    tests = {t.column: t for t in relation_changes(ref, y_ref, _frame_cols(cur_df, roles, ref), y_cur, task="binary")}
    assert tests["plan"].changed and not tests["x"].changed


def test_false_alarms_stay_rare_over_many_unchanged_samples() -> None:
    """Twenty pairs of samples of one unchanged process, three columns each: the family-wise rate is 1%, so
    a test that alarmed on more than one pair would be miscalibrated (the chance of two or more is 2%)."""
    rng = np.random.default_rng(11)
    roles = {"x": "numeric", "z": "numeric", "plan": "categorical"}
    alarms = 0
    for _ in range(20):
        ref_df, y_ref = _table(600, rng, task="binary")
        cur_df, y_cur = _table(600, rng, task="binary")
        ref = _frame_cols(ref_df, roles)
        alarms += any(t.changed for t in relation_changes(ref, y_ref, _frame_cols(cur_df, roles, ref), y_cur,
                                                          task="binary"))
    assert alarms <= 1


def test_multiclass_cbpe_is_corrected_for_timid_probabilities() -> None:
    """Probabilities that understate how often the answer is right (the true ones flattened, as fold models'
    often are): the estimator's own calibration, fitted on a reference sample, brings the estimate of another
    sample's accuracy to what its outcomes show."""
    rng = np.random.default_rng(5)

    def sample(n: int) -> tuple[np.ndarray, np.ndarray]:
        logits = rng.normal(0, 2.0, size=(n, 4))
        true = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        y = np.array([rng.choice(4, p=p) for p in true])
        timid = true**0.5 / (true**0.5).sum(axis=1, keepdims=True)
        return timid, y

    ref_p, ref_y = sample(3000)
    live_p, live_y = sample(3000)
    d = decisions(live_p)
    realised = float(np.mean(d == live_y))
    plain = estimate_classifier("accuracy", live_p, d).value
    cal = ConfidenceCalibrator().fit(ref_p, decisions(ref_p), ref_y)
    corrected = cal.transform(live_p, d)
    assert abs(plain - realised) > 0.05  # the raw probabilities are well off
    assert abs(estimate_classifier("accuracy", corrected, d).value - realised) < 0.02
    assert np.allclose(corrected.sum(axis=1), 1.0) and (corrected >= 0).all()


def test_the_regression_interval_counts_the_reference_size() -> None:
    """The loss model's scale comes from a few hundred reference rows: the interval says so."""
    rng = np.random.default_rng(6)
    X = rng.normal(size=(400, 3))
    pred = X[:, 0]
    y = pred + rng.standard_t(3, size=400) * (1 + np.abs(X[:, 1]))  # heavy tails
    loss = LossModel(seed=0).fit(X, pred, y)
    assert 0.02 < loss.moment_se[1] < 0.5
    m = loss.expected_error(X, pred)
    wide = loss.estimate("rmse", m, pred, rows=100_000)
    loss.moment_se = (0.0, 0.0)
    narrow = loss.estimate("rmse", m, pred, rows=100_000)
    # with many live rows the reference's size is nearly all of the uncertainty left
    assert (wide.high - wide.low) > 3 * (narrow.high - narrow.low)


# -- on a real bundle --------------------------------------------------------------------------------------
@pytest.mark.slow
def test_monitor_raises_the_relation_alarm_only_when_outcomes_show_it(churn_model_dir: Path, churn_csv: Path) -> None:
    import mlengineer
    from mlengineer.monitoring.current import from_data
    from mlengineer.monitoring.monitor import monitor
    from mlengineer.monitoring.reference import reference_of

    model = mlengineer.load(churn_model_dir)
    ref = reference_of(model)
    df = pd.read_csv(churn_csv)
    imp = model.metadata["feature_importance"]
    top = max((c for c in model.feature_names if pd.api.types.is_numeric_dtype(df[c])), key=lambda c: imp.get(c, 0))
    same = monitor(model, from_data(model, df, "same rows"), reference=ref)
    assert same["relation"]["tested"] and not same["alarms"]["relation"] and same["relation"]["changed"] == []
    broken = df.assign(**{top: df[top].to_numpy()[np.random.default_rng(0).permutation(len(df))]})
    result = monitor(model, from_data(model, broken, "shuffled rows"), reference=ref)
    assert result["alarms"]["relation"] and top in result["relation"]["changed"]
    assert not result["drift"]["verdict"]["alarm"]  # every column kept its distribution
    assert any(s.startswith("Relation alarm") and top in s for s in result["summary"])
    blind = monitor(model, from_data(model, broken.drop(columns=["churn"]), "no outcomes"), reference=ref)
    assert not blind["relation"]["tested"] and "outcomes" in blind["relation"]["why"] and not blind["alarms"]["relation"]
    moved = df.assign(**{top: df[top] * 3 + 10})
    drifted = monitor(model, from_data(model, moved, "moved rows"), reference=ref)
    assert not drifted["relation"]["tested"] and "drifted" in drifted["relation"]["why"]


@pytest.mark.slow
def test_picture_columns_are_left_out_and_said_so(tmp_path: Path) -> None:
    """Each picture is its own value: compared as categories every new one would be 'new', so monitoring
    leaves picture columns out of its tests and names them in the summary."""
    import mlengineer
    from mlengineer.monitoring.columns import drift_kinds
    from mlengineer.monitoring.current import from_data
    from mlengineer.monitoring.monitor import monitor

    from .test_images import picture_table

    picture_table(tmp_path / "train", 60).to_csv(tmp_path / "train" / "table.csv", index=False)
    # one plain family: what is tested is monitoring's handling of the column, not the network
    model = mlengineer.train(str(tmp_path / "train" / "table.csv"), "direction", time_budget=4, track=False,
                             families=["linear"], tune=False)
    assert model.schema["photo"].role.value == "image" and "photo" in model.feature_names
    assert set(drift_kinds(model)) == {"size"}
    live = picture_table(tmp_path / "live", 40, seed=9)
    live["photo"] = [str(tmp_path / "live" / p) for p in live["photo"]]
    result = monitor(model, from_data(model, live, "new pictures"))
    assert result["unmonitored"] == ["photo"] and [c["column"] for c in result["drift"]["columns"]] == ["size"]
    assert any(s.startswith("Not compared: photo") for s in result["summary"])
