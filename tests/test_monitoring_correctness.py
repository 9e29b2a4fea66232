"""Multiclass accuracy estimated without outcomes under covariate shift: the correctness model (a small
boosted model of whether each answer is right, from the inputs and the confidence) sees what confidence alone
cannot, rows moved into a region the model handles worse at the same confidence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest


def _rows(n: int, seed: int, x2_scale: float) -> pd.DataFrame:
    """Three classes by ``x1``; where ``|x2| > 1.2`` most outcomes are random, which a linear model cannot
    see (its confidence is the same on both sides of that band), so its confidence is right only on average
    over the training mixture. ``x2_scale`` > 1 moves live rows into the noisy band."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(scale=x2_scale, size=n)
    y = np.digitize(x1 + rng.normal(scale=0.3, size=n), [-0.5, 0.5])
    noisy = (np.abs(x2) > 1.2) & (rng.random(n) < 0.7)
    y[noisy] = rng.integers(0, 3, size=int(noisy.sum()))
    return pd.DataFrame({"x1": x1, "x2": x2, "x3": rng.normal(size=n), "label": np.array(["a", "b", "c"])[y]})


@pytest.mark.slow
def test_the_correctness_model_sees_what_confidence_alone_misses(tmp_path: Path) -> None:
    import mlengineer
    from mlengineer.monitoring.columns import conformed
    from mlengineer.monitoring.current import from_data
    from mlengineer.monitoring.estimate import CorrectnessModel, estimate_classifier
    from mlengineer.monitoring.live import LiveMonitor
    from mlengineer.monitoring.monitor import monitor
    from mlengineer.monitoring.reference import Reference, reference_of

    # one plain family: the monitor is under test, not the search
    model = mlengineer.train(_rows(3000, 0, 1.0), "label", time_budget=4, track=False, families=["linear"],
                             tune=False, seed=0, out=tmp_path / "model")
    ref = reference_of(model)
    assert len(ref.scored) >= CorrectnessModel.MIN_ROWS and ref.correctness is not None
    live = from_data(model, _rows(3000, 1, 2.5), "shifted rows")
    result = monitor(model, live, reference=ref)
    acc = result["performance"]["metrics"]["accuracy"]
    real, new = acc["realised"]["value"], acc["estimated"]["value"]
    d = ref.decided(live.raw)
    old = estimate_classifier("accuracy", ref.for_estimate(live.raw, d), d, draws=2).value  # confidence alone
    assert old - real > 0.03  # the calibration on confidence alone promises too much here
    assert abs(new - real) < 0.5 * abs(old - real)
    assert acc["estimated_on_labelled"]["value"] == pytest.approx(new)
    # on the reference rows the estimator agrees with what happened, so no change is read into them
    ref_real = ref.performance["accuracy"].value
    assert abs(ref.estimated["accuracy"].value - ref_real) < 0.02
    # the probabilities it hands CBPE are still probabilities (in the noisy band the answered class may no
    # longer be the likeliest: CBPE scores the answers given, ``d``)
    X = model.encoder.transform(conformed(model, live.frame))
    p = ref.for_estimate(live.raw, d, X)
    assert np.allclose(p.sum(axis=1), 1.0) and (p >= 0).all()
    # the server's rolling gauge reads the same estimator (the requests' validated columns, in process)
    gauge = LiveMonitor(model, ref, window_rows=len(live))
    gauge.observe({c: live.frame[c].to_numpy(dtype=float) for c in model.feature_names}, live.raw, len(live))
    snapshot = gauge.refresh()
    batch = result["performance"]["metrics"][gauge.metric]["estimated"]["value"]  # the model's own metric
    assert snapshot is not None and snapshot["estimate"]["value"] == pytest.approx(batch, abs=1e-6)
    # with few scored reference rows the trees would fit noise: confidence alone
    small = Reference(model, ref.frame.loc[ref.scored.index[:150]])
    assert small.confidence is not None and small.correctness is None
    assert np.array_equal(small.for_estimate(live.raw, d, X), small.for_estimate(live.raw, d))
