"""The comparison with the reference holds its level model by model: every batch of a model is compared with the
same reference rows, so a reference that scored better than the model's own level by chance must not make
this model's batches drawn like it alarm more than about one time in forty (``change.realised_change``)."""

from __future__ import annotations

import numpy as np

from mlengineer.monitoring.change import realised_change


def _errors(n: int, seed: int, sd: float, *, rmse: float | None = None) -> tuple[np.ndarray, np.ndarray, None]:
    """Outcomes with normal errors of SD ``sd`` around predictions of 0; ``rmse``: rescaled to exactly that."""
    e = np.random.default_rng(seed).normal(0, sd, n)
    if rmse is not None:
        e *= rmse / np.sqrt(np.mean(e**2))
    return e, np.zeros(n), None


def _answers(n: int, seed: int, right: float, *, exactly: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two classes answered right a share ``right`` of the time (``exactly`` that share of the rows)."""
    r = np.random.default_rng(seed)
    y = r.integers(0, 2, n)
    hit = (np.arange(n) < round(right * n))[r.permutation(n)] if exactly else r.random(n) < right
    d = np.where(hit, y, 1 - y)
    p1 = np.clip(np.where(d == 1, 0.8, 0.2) + r.normal(0, 0.05, n), 0.01, 0.99)
    return y, np.column_stack([1 - p1, p1]), d


def test_a_lucky_reference_does_not_make_its_models_batches_alarm_more_often() -> None:
    """400 reference rows whose RMSE came out 5% below the model's level (1.4 standard errors, as a lucky draw
    does for one model in twelve), 300 batches of 100 rows drawn at that level: counted in full, the
    reference's reach keeps the alarms within 2.5% (5 of 300); drawn jointly with the batch's (the spread of
    the difference), 18 of 300 alarmed."""
    ref = _errors(400, 0, 1.0, rmse=0.95)
    full = joint = 0
    for seed in range(1, 301):
        now = _errors(100, seed, 1.0)
        a = realised_change("rmse", now, ref, higher=False, seed=0)
        b = realised_change("rmse", now, ref, higher=False, full=False, seed=0)
        assert a is not None and b is not None and a["value"] == b["value"]
        assert (a["bound"] > 0) == (a["p_value"] < 0.025) and a["bound"] <= b["bound"]
        full += a["bound"] > 0
        joint += b["bound"] > 0
    assert full <= 7 and joint >= 12, (full, joint)  # 2.5% of 300 is 7.5


def test_a_classifiers_lucky_reference_likewise() -> None:
    """Accuracy (higher is better) 0.83 on 400 reference rows of a model right 80% of the time (1.5 standard
    errors lucky); 200 batches of 100 rows at 80%: 2 alarms in full, 14 drawn jointly."""
    ref = _answers(400, 0, 0.83, exactly=True)
    full = joint = 0
    for seed in range(1, 201):
        now = _answers(100, seed, 0.80)
        a = realised_change("accuracy", now, ref, higher=True, seed=0)
        b = realised_change("accuracy", now, ref, higher=True, full=False, seed=0)
        assert a is not None and b is not None
        assert (a["bound"] > 0) == (a["p_value"] < 0.025)
        full += a["bound"] > 0
        joint += b["bound"] > 0
    assert full <= 5 and joint >= 10, (full, joint)  # 2.5% of 200 is 5


def test_batches_that_got_worse_still_alarm() -> None:
    """Errors 35% larger, or a model right 65% of the time instead of 80%, on 100 rows against a reference of
    400 rows at the model's level: most batches alarm, each with a p-value below 0.025."""
    ref = _errors(400, 0, 1.0, rmse=1.0)
    cls = _answers(400, 0, 0.80, exactly=True)
    found = flagged = 0
    for seed in range(1, 41):
        worse = realised_change("rmse", _errors(100, seed, 1.35), ref, higher=False, seed=0)
        fewer = realised_change("accuracy", _answers(100, seed, 0.65), cls, higher=True, seed=0)
        assert worse is not None and fewer is not None and worse["value"] > 0 > fewer["value"]
        found += worse["bound"] > 0 and worse["p_value"] < 0.025
        flagged += fewer["bound"] > 0 and fewer["p_value"] < 0.025
    assert found >= 30 and flagged >= 30, (found, flagged)


def test_a_large_reference_costs_little() -> None:
    """Against 10,000 reference rows, the reference's reach is small beside a batch of 100 rows': the bound in
    full is within a fifth of the batch's reach of the joint one."""
    ref = _errors(10_000, 0, 1.0)
    now = _errors(100, 1, 1.0)
    a = realised_change("rmse", now, ref, higher=False, seed=0, draws=400)
    b = realised_change("rmse", now, ref, higher=False, full=False, seed=0, draws=400)
    assert a is not None and b is not None
    reach = a["value"] - a["bound"]
    assert 0 <= b["bound"] - a["bound"] < 0.2 * reach, (a, b)
