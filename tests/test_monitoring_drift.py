"""Drift tests, performance estimates and windows on synthetic data of known shape: the test each column gets,
its statistic against an independent implementation, shifts of known size found and equal samples left
alone, and estimates that land on what the outcomes later show. No model is trained here."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from mlengineer.errors import ConfigError
from mlengineer.monitoring.columns import prepare
from mlengineer.monitoring.drift import compare_column, dataset_verdict
from mlengineer.monitoring.estimate import LossModel, decisions, estimate_classifier, realised
from mlengineer.monitoring.windows import parse_window, split_windows

RNG = np.random.default_rng(7)


def _num(values: np.ndarray, name: str = "x") -> object:
    return prepare(pd.Series(values), "numeric", name=name)


def _cat(values: list[str] | np.ndarray, ref: object = None) -> object:
    return prepare(pd.Series(values, dtype=object), "categorical", name="c",
                   categories=None if ref is None else ref.categories)  # type: ignore[attr-defined]


@pytest.mark.parametrize(("n_ref", "kind", "values", "test"), [
    (800, "numeric", 50, "Kolmogorov-Smirnov"),
    (3000, "numeric", 50, "Wasserstein distance (normed)"),
    (800, "numeric", 2, "z-test of two proportions"),
    (800, "numeric", 4, "chi-square"),
    (3000, "numeric", 4, "Jensen-Shannon distance"),
    (800, "categorical", 2, "z-test of two proportions"),
    (800, "categorical", 6, "chi-square"),
    (3000, "categorical", 6, "Jensen-Shannon distance"),
])
def test_the_test_follows_the_column_kind_and_the_sample_sizes(n_ref: int, kind: str, values: int, test: str) -> None:
    def draw(n: int) -> np.ndarray:
        v = RNG.integers(0, values, n)
        return v.astype(float) if kind == "numeric" else np.array([f"v{i}" for i in v], dtype=object)

    ref = prepare(pd.Series(draw(n_ref)), kind, name="c")
    # both sides large (the smaller side decides: 500 live rows against a large reference get the p-value test,
    # tests/test_monitoring_mends.py)
    cur = prepare(pd.Series(draw(1500)), kind, name="c", categories=ref.categories)
    assert compare_column(ref, cur).test == test


def test_statistics_match_scipy() -> None:
    a, b = RNG.normal(size=3000), RNG.normal(0.2, 1.3, size=2000)
    d = compare_column(_num(a), _num(b))
    assert d.statistic == pytest.approx(stats.wasserstein_distance(a, b) / np.std(a), rel=1e-9)
    small = compare_column(_num(a[:500]), _num(b[:300]))
    assert small.p_value == pytest.approx(stats.ks_2samp(a[:500], b[:300]).pvalue, rel=1e-9)
    ra = RNG.choice(["x", "y", "z"], p=[0.5, 0.3, 0.2], size=4000)
    rb = RNG.choice(["x", "y", "z"], p=[0.3, 0.3, 0.4], size=4000)
    ref = _cat(ra)
    js = compare_column(ref, _cat(rb, ref))
    share = [[np.mean(v == k) for k in ("x", "y", "z")] for v in (ra, rb)]
    assert js.statistic == pytest.approx(jensenshannon(share[0], share[1]), rel=1e-9)
    chi = compare_column(_cat(ra[:600]), _cat(rb[:400], _cat(ra[:600])))
    counts = [np.array([np.sum(v == k) for k in ("x", "y", "z")], float) for v in (ra[:600], rb[:400])]
    assert chi.p_value == pytest.approx(stats.chi2_contingency(np.vstack(counts), correction=False).pvalue, rel=1e-9)


@pytest.mark.parametrize("n", [300, 5000])
def test_shifts_of_known_size_are_found_and_equal_samples_left_alone(n: int) -> None:
    base = RNG.normal(10, 2, size=n)
    ref = _num(base)
    assert not compare_column(ref, _num(RNG.normal(10, 2, size=n))).drifted
    assert compare_column(ref, _num(RNG.normal(11, 2, size=n))).value_drifted  # mean + 0.5 SD
    assert compare_column(ref, _num(RNG.normal(10, 3, size=n))).value_drifted  # scale x1.5
    holes = RNG.normal(10, 2, size=n)
    holes[RNG.random(n) < 0.2] = np.nan  # 20% more missing
    d = compare_column(ref, _num(holes))
    assert d.missing_drifted and d.drifted and not d.value_drifted
    cats = RNG.choice(["a", "b", "c", "d"], p=[0.55, 0.15, 0.15, 0.15], size=n)
    cref = _cat(cats)
    assert not compare_column(cref, _cat(RNG.choice(["a", "b", "c", "d"], p=[0.55, 0.15, 0.15, 0.15], size=n),
                                         cref)).drifted
    doubled = RNG.choice(["a", "b", "c", "d"], p=[0.40, 0.30, 0.15, 0.15], size=n)  # b's share doubled
    assert compare_column(cref, _cat(doubled, cref)).drifted


def test_a_category_never_seen_in_training_is_drift_even_in_a_small_sample() -> None:
    ref = _cat(["a", "b"] * 200)
    d = compare_column(ref, _cat(["a", "b", "new"] * 30, ref))
    assert d.drifted and d.p_value < 1e-6
    assert {c["value"] for c in d.summary["categories"]} >= {"new"}


def test_text_columns_are_compared_by_a_domain_classifier() -> None:
    words = ["price", "late", "refund", "broken", "great", "fast", "support", "again"]
    other = ["crypto", "moon", "wallet", "token", "chain", "mint", "airdrop", "pump"]

    def texts(vocab: list[str], n: int) -> list[str]:
        return [" ".join(RNG.choice(vocab, size=6)) for _ in range(n)]

    ref = prepare(pd.Series(texts(words, 1500)), "text", name="t")
    same = compare_column(ref, prepare(pd.Series(texts(words, 800)), "text", name="t"))
    moved = compare_column(ref, prepare(pd.Series(texts(words[:4] + other[:4], 800)), "text", name="t"))
    assert same.test == "domain classifier ROC AUC" and not same.drifted
    assert moved.drifted and moved.statistic > 0.9


def test_values_a_column_cannot_hold_are_counted_not_fatal() -> None:
    col = prepare(pd.Series(["1.5", "2", "NA", "abc", None, "abc"]), "numeric", name="fee")
    assert col.unreadable == 2 and col.unreadable_example == "abc"
    assert np.isnan(col.values).sum() == 4
    dates = prepare(pd.Series(["2024-01-01", "2024-01-03", "soon"]), "datetime", "%Y-%m-%d", name="d")
    assert dates.values[1] - dates.values[0] == 2 and dates.unreadable == 1


def test_the_dataset_alarm_needs_half_the_columns_or_half_the_attention_or_the_predictions() -> None:
    ref = _num(RNG.normal(size=2000))
    calm = compare_column(ref, _num(RNG.normal(size=2000)))
    moved = compare_column(ref, _num(RNG.normal(1, 1, size=2000)))
    moved.column = "key"
    assert not dataset_verdict([calm, calm, calm, moved])["alarm"]
    assert dataset_verdict([calm, moved])["alarm"]
    verdict = dataset_verdict([calm, calm, calm, moved], importance={"x": 0.3, "key": 0.7})
    assert verdict["alarm"] and "attention" in verdict["reasons"][0]
    assert dataset_verdict([calm, moved, calm], prediction=moved)["reasons"] == ["the predictions drifted"]
    # predictions that moved while no input did: chance, or out-of-fold against final-model predictions
    assert not dataset_verdict([calm], prediction=moved)["alarm"]
    # a p-value test that alone would raise the alarm needs p < 0.01, else 5% of unchanged data would alarm
    small = _num(RNG.normal(size=400))
    borderline = next(c for c in (compare_column(small, _num(RNG.normal(0.17, 1, size=400))) for _ in range(200))
                      if 0.01 < c.p_value < 0.05)  # type: ignore[operator]
    assert borderline.drifted and not dataset_verdict([calm, moved, calm], prediction=borderline)["alarm"]
    borderline.column = "key"
    assert not dataset_verdict([calm, calm, calm, borderline], importance={"x": 0.3, "key": 0.7})["alarm"]


def test_expected_classifier_metrics_land_on_the_realised_ones() -> None:
    """CBPE on calibrated probabilities: the outcomes drawn from them fall inside the estimate's interval."""
    n = 6000
    p1 = RNG.beta(2, 3, size=n)
    proba = np.c_[1 - p1, p1]
    y = (RNG.random(n) < p1).astype(int)
    d = decisions(proba)
    for name in ("accuracy", "roc_auc", "log_loss", "brier", "f1", "balanced_accuracy"):
        est, real = estimate_classifier(name, proba, d), realised(name, y, proba, d=d)
        assert est.low <= real.value <= est.high, (name, est, real)
        assert abs(est.value - real.value) < 0.02, name
    assert decisions(proba, threshold=0.2).mean() > d.mean()


def test_the_loss_model_estimates_regression_errors_under_covariate_shift() -> None:
    """DLE: errors grow with |x1|; live rows hold more large |x1| (within the range the reference covers: a
    tree model of the error cannot extrapolate beyond it), so the error must be estimated higher."""
    def rows(n: int, spread: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        X = np.c_[RNG.normal(size=n), RNG.normal(0, spread, size=n)]
        pred = 3 * X[:, 0]
        return X, pred, pred + RNG.normal(size=n) * (0.3 + np.abs(X[:, 1]))

    loss = LossModel().fit(*rows(5000, 1.0))
    X, pred, y = rows(4000, 1.5)
    m = loss.expected_error(X, pred)
    for name in ("rmse", "mae"):
        est, real = loss.estimate(name, m, pred), realised(name, y, pred)
        assert abs(est.value - real.value) < 0.1 * real.value, (name, est, real)
    X0, pred0, _ = rows(4000, 1.0)
    calm = loss.estimate("rmse", loss.expected_error(X0, pred0), pred0).value
    assert calm < 0.85 * realised("rmse", y, pred).value


def test_windows_by_time_and_by_version() -> None:
    t = pd.Series(pd.date_range("2025-03-01 22:00", periods=8, freq="h", tz="UTC"))
    v = pd.Series(["1"] * 3 + ["2"] * 5)
    days = split_windows(t, v, window=parse_window("1d"), by_version=False)
    assert [w.label for w in days] == ["2025-03-01", "2025-03-02"] and [len(w.rows) for w in days] == [2, 6]
    both = split_windows(t, v, window=parse_window("1d"), by_version=True)
    assert [(w.version, len(w.rows)) for w in both] == [("1", 2), ("1", 1), ("2", 5)]
    assert split_windows(t, v, window=None, by_version=False) == []
    assert parse_window("30m") == pd.Timedelta(minutes=30) and parse_window("2w") == pd.Timedelta(days=14)
    for bad in ("soon", "0d", "5y"):
        with pytest.raises(ConfigError, match="--window takes a length"):
            parse_window(bad)
