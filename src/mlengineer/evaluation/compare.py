"""Is model A really better than model B, or did it get lucky on these rows? A paired significance test on
the same labelled rows, chosen to fit the metric, and a verdict in plain words.

- accuracy: McNemar's exact test on the rows exactly one of the two models gets right;
- mae: Wilcoxon's signed-rank test on the paired absolute errors;
- every other metric (rmse, r2, roc_auc, log_loss, ...): the paired bootstrap of the metric's difference.

Where A was trained with row weights and the rows hold its weight column, each row counts for its weight (the
scores, and the test: then always the weighted paired bootstrap, as McNemar's and Wilcoxon's tests count rows),
unless ``weights=False``.

    >>> result = compare_models(model_a, model_b, test_frame)     # doctest: +SKIP
    >>> result["verdict"]                                         # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError, ModelError
from ..metrics import get_metric
from .bootstrap import fast_metric, paired_bootstrap

__all__ = ["BASELINE", "ConstantPredictor", "compare_models", "compare_predictions", "constant_model",
           "constant_predictions"]

BASELINE = "baseline"


class ConstantPredictor:
    """Answers every row with the same raw output: class shares, or a value."""

    def __init__(self, output: np.ndarray) -> None:
        self.output = np.asarray(output, dtype=float)
        self.members = [("constant", self, 1.0)]

    def predict_raw(self, X: np.ndarray) -> np.ndarray:
        if self.output.ndim == 0:
            return np.full(len(X), float(self.output))
        return np.tile(self.output, (len(X), 1))


def constant_model(model: Any) -> Any:
    """A Model bundle that always answers what ``constant_predictions`` does, to save, serve or compare."""
    from copy import copy

    out = constant_predictions(model, 1)
    const = copy(model)
    const.predictor = ConstantPredictor(out[0] if out.ndim == 2 else out[0])
    const.extras = {}
    const.metadata = {**model.metadata, "name": f"{model.name}-constant-baseline", "ensemble": [
        {"model": "constant", "weight": 1.0}], "feature_importance": {}}
    const.path = None
    return const


def constant_predictions(model: Any, n: int) -> np.ndarray:
    """What a constant model would answer for every row: the class shares (or the mean) of the rows
    ``model`` was validated on, which it did not learn from and which are not the rows under test."""
    if "y" not in model.validation:
        raise ModelError(f"{model.name!r} kept no validation rows, so there is no baseline to compare it with.")
    y = np.asarray(model.validation["y"])
    w = model.validation.get("weight")  # a model trained with row weights: the constant answer weighs them too
    if model.task.is_classification:
        k = len(model.classes)
        if w is not None:
            counts = np.bincount(y.astype(np.int64), weights=w, minlength=k)
            return np.tile(counts / counts.sum(), (n, 1))
        prior = np.bincount(y.astype(np.int64), minlength=k) / len(y)
        return np.tile(prior, (n, 1))
    return np.full(n, float(np.mean(y) if w is None else np.average(y, weights=w)))


def compare_models(a: Any, b: Any, data: pd.DataFrame, *, metric: str | None = None, n_boot: int = 1000,
                   seed: int = 0, alpha: float = 0.05, weights: bool = True) -> dict[str, Any]:
    """Compare two models (or a model and ``"baseline"``, a constant answer) on labelled ``data``, its rows
    weighted by the weight column A (else B) was trained with where ``data`` holds it (``weights=False``: not)."""
    from .evaluate import labelled_frame, labelled_weights

    data = labelled_frame(data)
    if isinstance(a, str) and a == BASELINE:
        a, b = b, a
        swapped = True
    else:
        swapped = False
    if isinstance(a, str):
        raise ModelError("Compare a model with another model or with 'baseline', not two baselines.")
    target = a.target
    if target not in data.columns:
        raise DataError(f"The data has no column {target!r}: comparing models needs the true values of the target.")
    if not isinstance(b, str):
        if b.target != target or b.task.kind != a.task.kind:
            raise ModelError(f"The two models predict different things ({a.target!r} as {a.task.kind}, {b.target!r} "
                             f"as {b.task.kind}): compare models of one target.")
        if a.task.is_classification and list(map(str, a.classes)) != list(map(str, b.classes)):
            raise ModelError("The two models know different classes: compare models trained on the same labels.")
    mask = data[target].notna()
    labelled = data.loc[mask].reset_index(drop=True)
    if len(labelled) < 10:
        raise DataError(f"Only {len(labelled)} labelled rows: a comparison needs at least 10.")
    w, column = labelled_weights(a, data, mask, weights=weights)
    if column is None and not isinstance(b, str):
        w, column = labelled_weights(b, data, mask, weights=weights)
    y = a.task.encode(labelled[target])
    features = labelled.drop(columns=[target])
    raw_a = a.predict_raw(features)
    raw_b = constant_predictions(a, len(y)) if isinstance(b, str) else b.predict_raw(features)
    names = (a.name, "constant baseline") if isinstance(b, str) else (a.name, b.name)
    if names[0] == names[1]:
        names = (f"A ({names[0]})", f"B ({names[1]})")
    if swapped:
        raw_a, raw_b, names = raw_b, raw_a, (names[1], names[0])
    result = compare_predictions(a.task, y, raw_a, raw_b, names=names, metric=metric or a.metadata.get("metric"),
                                 n_boot=n_boot, seed=seed, alpha=alpha, weights=w)
    result["weighted_by"] = column
    return result


def compare_predictions(task: Any, y: np.ndarray, raw_a: np.ndarray, raw_b: np.ndarray, *,
                        names: tuple[str, str] = ("A", "B"), metric: str | None = None, n_boot: int = 1000,
                        seed: int = 0, alpha: float = 0.05, weights: np.ndarray | None = None) -> dict[str, Any]:
    """The paired test of two models' raw outputs on the same rows (each counting for its ``weights``, where
    given), and its verdict."""
    from scipy import stats

    m = get_metric(metric, task.kind)
    strata = y if task.is_classification else None
    try:
        score_a, score_b = m(y, raw_a, weights), m(y, raw_b, weights)
    except ValueError as e:  # roc_auc of rows of one class, and the like
        raise DataError(f"{m.name} cannot be computed on these rows ({str(e).splitlines()[0][:120].rstrip('.')}): "
                        "pass labelled rows of every class, or compare on another --metric (log_loss).") from None
    fast = fast_metric(m.name, m, y, raw_a)
    boot = paired_bootstrap(fast if weights is None and fast is fast_metric(m.name, m, y, raw_b) else m, y, raw_a,
                            raw_b, n_boot=n_boot, seed=seed, strata=strata, weights=weights)
    result: dict[str, Any] = {"metric": m.name, "greater_is_better": m.greater_is_better, "rows": int(len(y)),
                              "models": list(names), "scores": [score_a, score_b], "difference": boot}
    if weights is not None:  # McNemar's and Wilcoxon's tests count rows: weighted rows take the bootstrap
        result.update(test=f"paired bootstrap ({n_boot} resamples, rows weighted)", p_value=boot["p_value"],
                      detail=f"95% interval of the difference {boot['low']:.4g} to {boot['high']:.4g}")
    elif m.name == "accuracy" and task.is_classification:
        right_a = raw_a.argmax(axis=1) == y
        right_b = raw_b.argmax(axis=1) == y
        only_a, only_b = int((right_a & ~right_b).sum()), int((~right_a & right_b).sum())
        p = 1.0 if only_a + only_b == 0 else stats.binomtest(only_a, only_a + only_b, 0.5).pvalue
        result.update(test="McNemar's exact test", p_value=float(p),
                      detail=f"{only_a} rows only {names[0]} gets right, {only_b} only {names[1]}")
    elif m.name == "mae" and not task.is_classification:
        d = np.abs(y - raw_a) - np.abs(y - raw_b)
        p = 1.0 if np.all(d == 0) else stats.wilcoxon(d, zero_method="zsplit").pvalue
        result.update(test="Wilcoxon signed-rank test", p_value=float(p),
                      detail=f"median paired difference in absolute error {np.median(d):.4g}")
    else:
        result.update(test=f"paired bootstrap ({n_boot} resamples)", p_value=boot["p_value"],
                      detail=f"95% interval of the difference {boot['low']:.4g} to {boot['high']:.4g}")
    result["significant"] = bool(result["p_value"] < alpha)
    result["verdict"] = _verdict(result, names, alpha)
    return result


def _verdict(r: dict[str, Any], names: tuple[str, str], alpha: float) -> str:
    a, b = r["scores"]
    fa, fb = _fmt(a), _fmt(b)
    if a == b and r["p_value"] >= 1.0:
        return (f"No difference: {names[0]} and {names[1]} score the same {r['metric']} ({fa}) on these "
                f"{r['rows']:,} rows.")
    if not r["significant"]:
        return (f"No significant difference: {names[0]} scores {r['metric']} {fa}, {names[1]} {fb}, but a gap this "
                f"size is likely by chance on {r['rows']:,} rows (p = {r['p_value']:.2g}, {r['test']}). "
                "Prefer the simpler or faster one.")
    better_a = (a > b) == r["greater_is_better"]
    win, lose = (names[0], names[1]) if better_a else (names[1], names[0])
    sw, sl = (fa, fb) if better_a else (fb, fa)
    return (f"{win} is significantly better than {lose}: {r['metric']} {sw} against {sl} on {r['rows']:,} rows "
            f"(p = {r['p_value']:.2g}, {r['test']}; below {alpha:g} means chance alone would rarely do this).")


def _fmt(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.4g}"
