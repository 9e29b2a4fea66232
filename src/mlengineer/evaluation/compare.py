"""Is model A really better than model B, or did it get lucky on these rows? A paired significance test on
the same labelled rows, chosen to fit the metric, and a verdict in plain words.

- accuracy: McNemar's exact test on the rows exactly one of the two models gets right;
- mae: the paired t-test on each row's difference in absolute error, whose mean is the difference in MAE (a
  test of the median, such as Wilcoxon's, can favour the model with the higher MAE where a few rows have large
  errors);
- every other metric (rmse, r2, roc_auc, log_loss, ...): the paired bootstrap of the metric's difference.

A winner is named only where the test's own direction agrees with the scores'. Labels are the ones each model
answers: a binary model with a decision threshold (``mlengineer calibrate``) is judged on its labels at that
threshold, for accuracy, F1 and McNemar's test alike.

Where A was trained with row weights and the rows hold its weight column, each row counts for its weight (the
scores, and the test: then always the weighted paired bootstrap, as McNemar's test and the t-test count rows),
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
from .baseline import constant_answer, training_prior
from .bootstrap import fast_metric, paired_bootstrap
from .decision import as_decided, decided_labels, decision_threshold

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


def constant_predictions(model: Any, n: int, metric: str | None = None) -> np.ndarray:
    """What a constant model would answer for every row: the class shares (or the mean; for MAE, the median)
    of the rows ``model`` was validated on, which it did not learn from and which are not the rows under test;
    the answer ``evaluate``'s constant baseline gives too."""
    prior = training_prior(model)
    if prior is None:
        raise ModelError(f"{model.name!r} kept no validation rows, so there is no baseline to compare it with.")
    k = len(model.classes) if model.task.is_classification else 0
    answer = constant_answer(model.task.kind, k, prior, metric)
    if model.task.is_classification:
        return np.tile(answer, (n, 1))
    return np.full(n, float(answer))


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
    metric = metric or a.metadata.get("metric")
    raw_a = a.predict_raw(features)
    raw_b = (constant_predictions(a, len(y), get_metric(metric, a.task.kind).name) if isinstance(b, str)
             else b.predict_raw(features))
    thresholds = (decision_threshold(a), None if isinstance(b, str) else decision_threshold(b))
    names = (a.name, "constant baseline") if isinstance(b, str) else (a.name, b.name)
    if names[0] == names[1]:
        names = (f"A ({names[0]})", f"B ({names[1]})")
    if swapped:
        raw_a, raw_b, names, thresholds = raw_b, raw_a, (names[1], names[0]), (thresholds[1], thresholds[0])
    result = compare_predictions(a.task, y, raw_a, raw_b, names=names, metric=metric, n_boot=n_boot, seed=seed,
                                 alpha=alpha, weights=w, thresholds=thresholds)
    result["weighted_by"] = column
    return result


def compare_predictions(task: Any, y: np.ndarray, raw_a: np.ndarray, raw_b: np.ndarray, *,
                        names: tuple[str, str] = ("A", "B"), metric: str | None = None, n_boot: int = 1000,
                        seed: int = 0, alpha: float = 0.05, weights: np.ndarray | None = None,
                        thresholds: tuple[float | None, float | None] = (None, None)) -> dict[str, Any]:
    """The paired test of two models' raw outputs on the same rows (each counting for its ``weights``, where
    given), and its verdict. ``thresholds``: each binary model's decision threshold (None: it answers the class
    of the highest probability); metrics of labels and McNemar's test count the labels answered at it."""
    from scipy import stats

    m = get_metric(metric, task.kind)
    strata = y if task.is_classification else None
    kind = task.kind
    direction = 1 if m.greater_is_better else -1
    thresholds = thresholds if kind == "binary" else (None, None)
    scored_a, scored_b = (as_decided(kind, m.name, raw, t) for raw, t in zip((raw_a, raw_b), thresholds, strict=True))
    try:
        score_a, score_b = m(y, scored_a, weights), m(y, scored_b, weights)
    except ValueError as e:  # roc_auc of rows of one class, and the like
        raise DataError(f"{m.name} cannot be computed on these rows ({str(e).splitlines()[0][:120].rstrip('.')}): "
                        "pass labelled rows of every class, or compare on another --metric (log_loss).") from None
    fast = fast_metric(m.name, m, y, scored_a)
    boot = paired_bootstrap(fast if weights is None and fast is fast_metric(m.name, m, y, scored_b) else m, y,
                            scored_a, scored_b, n_boot=n_boot, seed=seed, strata=strata, weights=weights)
    result: dict[str, Any] = {"metric": m.name, "greater_is_better": m.greater_is_better, "rows": int(len(y)),
                              "models": list(names), "scores": [score_a, score_b], "difference": boot,
                              "thresholds": list(thresholds)}
    if weights is not None:  # McNemar's test and the t-test count rows: weighted rows take the bootstrap
        result.update(test=f"paired bootstrap ({n_boot} resamples, rows weighted)", p_value=boot["p_value"],
                      detail=f"95% interval of the difference {boot['low']:.4g} to {boot['high']:.4g}",
                      favours=_sign(boot["difference"]) * direction)
    elif m.name == "accuracy" and task.is_classification:
        right_a = decided_labels(raw_a, thresholds[0]) == y
        right_b = decided_labels(raw_b, thresholds[1]) == y
        only_a, only_b = int((right_a & ~right_b).sum()), int((~right_a & right_b).sum())
        p = 1.0 if only_a + only_b == 0 else stats.binomtest(only_a, only_a + only_b, 0.5).pvalue
        result.update(test="McNemar's exact test", p_value=float(p), favours=_sign(only_a - only_b),
                      detail=f"{only_a} rows only {names[0]} gets right, {only_b} only {names[1]}")
    elif m.name == "mae" and not task.is_classification:
        d = np.abs(y - raw_a) - np.abs(y - raw_b)  # its mean is MAE(A) - MAE(B)
        # every row the same difference: none at all (p = 1), or one that chance does not make (p = 0)
        p = float(d[0] == 0) if np.all(d == d[0]) else stats.ttest_1samp(d, 0.0).pvalue
        result.update(test="paired t-test", p_value=float(p), favours=_sign(-float(np.mean(d))),
                      detail=f"mean paired difference in absolute error {np.mean(d):.4g}")
    else:
        result.update(test=f"paired bootstrap ({n_boot} resamples)", p_value=boot["p_value"],
                      detail=f"95% interval of the difference {boot['low']:.4g} to {boot['high']:.4g}",
                      favours=_sign(boot["difference"]) * direction)
    result["significant"] = bool(result["p_value"] < alpha)
    result["verdict"] = _verdict(result, names, alpha)
    return result


def _sign(v: float) -> int:
    """+1 where a difference A - B favours A, -1 where it favours B, 0 where there is none."""
    return int(np.sign(v)) if np.isfinite(v) else 0


def _verdict(r: dict[str, Any], names: tuple[str, str], alpha: float) -> str:
    a, b = r["scores"]
    fa, fb = _fmt(a), _fmt(b)
    if a == b and r["p_value"] >= 1.0:
        return (f"No difference: {names[0]} and {names[1]} score the same {r['metric']} ({fa}) on these "
                f"{r['rows']:,} rows.")
    better_a = (a > b) == r["greater_is_better"]
    if r["significant"] and (a == b or r.get("favours", 0) != (1 if better_a else -1)):
        # the test found a difference, but not in the metric's own direction: it cannot name the better model
        return (f"No significant difference in {r['metric']}: {names[0]} scores {fa}, {names[1]} {fb}; the "
                f"{r['test']} finds a difference (p = {r['p_value']:.2g}) but not in the direction of the "
                f"{r['metric']}, so it does not say which is better by {r['metric']}.")
    if not r["significant"]:
        return (f"No significant difference: {names[0]} scores {r['metric']} {fa}, {names[1]} {fb}, but a gap this "
                f"size is likely by chance on {r['rows']:,} rows (p = {r['p_value']:.2g}, {r['test']}). "
                "Prefer the simpler or faster one.")
    win, lose = (names[0], names[1]) if better_a else (names[1], names[0])
    sw, sl = (fa, fb) if better_a else (fb, fa)
    return (f"{win} is significantly better than {lose}: {r['metric']} {sw} against {sl} on {r['rows']:,} rows "
            f"(p = {r['p_value']:.2g}, {r['test']}; below {alpha:g} means chance alone would rarely do this).")


def _fmt(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.4g}"
