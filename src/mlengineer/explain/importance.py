"""Global feature importance per input column."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["builtin_importance", "permutation_importance", "shap_importance"]


def builtin_importance(encoder: Any, predictor: Any) -> dict[str, float]:
    """Importance per input column from the learners' own measures (gain, impurity), weighted by each
    member's ensemble weight and summed over the features derived from one column; shares sum to 1.
    Members without a built-in measure are left out; an empty dict if none has one."""
    total: dict[str, float] = {}
    names = list(encoder.feature_names_)
    for _, model, weight in predictor.members:
        imp = model.feature_importance()
        if imp is None or len(imp) != len(names):
            continue
        imp = np.asarray(imp, dtype=float)
        s = imp.sum()
        if not s > 0:
            continue
        for name, v in zip(names, imp / s, strict=True):
            col = encoder.source_column(name)
            total[col] = total.get(col, 0.0) + weight * float(v)
    norm = sum(total.values())
    if not norm:
        return {}
    return dict(sorted(((k, v / norm) for k, v in total.items()), key=lambda kv: -kv[1]))


def shap_importance(model: Any, X: np.ndarray, *, budget_s: float | None = None) -> dict[str, float]:
    """Importance per input column: the mean absolute contribution to the predictions of the encoded rows
    ``X`` (TreeSHAP for tree members, see ``contributions``), as shares that sum to 1, largest first.

    With ``budget_s``, only as many rows as take about that long are explained (at least 2, timed first):
    TreeSHAP on a large multiclass model can cost tens of milliseconds per row."""
    from .contributions import explain_encoded, is_sampled

    members = model.predictor.members
    native = [(n, m, w) for n, m, w in members if not is_sampled(m)]
    if native and len(native) < len(members):
        # sampled Shapley values cost hundreds of predictions per row: rank columns by the members that
        # explain themselves cheaply (``left_out`` names the others)
        from copy import copy

        from ..training.ensemble import Ensemble

        total = sum(w for _, _, w in native)
        model = copy(model)
        model.predictor = Ensemble([(n, m, w / total) for n, m, w in native])
        model.extras = {k: v for k, v in model.extras.items() if k != "calibrator"}
    elif not native:
        X = X[:20]
    if budget_s is not None and len(X) > 2:
        import time

        start = time.perf_counter()
        first = explain_encoded(model, X[:2])
        per_row = (time.perf_counter() - start) / 2
        n = int(np.clip(budget_s / max(per_row, 1e-9), 2, len(X)))
        values = first.values
        if n > 2:
            values = np.concatenate([values, explain_encoded(model, X[2:n]).values])
        contrib = first
    else:
        contrib = explain_encoded(model, X)
        values = contrib.values
    if values.shape[2] == 2:  # binary: the two classes mirror each other
        values = values[:, :, 1:]
    mean_abs = np.abs(values).mean(axis=(0, 2))
    total = float(mean_abs.sum())
    if not total > 0:
        return {}
    pairs = sorted(zip(contrib.columns, mean_abs / total, strict=True), key=lambda kv: -kv[1])
    return {k: float(v) for k, v in pairs}


def permutation_importance(model: Any, data: Any, *, repeats: int = 3, max_rows: int = 2000, seed: int = 0,
                           metric: str | None = None, threshold: float | None = None) -> dict[str, dict[str, float]]:
    """How much ``metric`` (default: the model's primary metric) worsens when one input column's values are
    shuffled across rows (all the features made from that column together), on labelled ``data``; mean and
    spread over ``repeats`` shuffles, largest loss first. Works for any model, tree or not. ``threshold``: a
    binary model's decision threshold, for a metric of labels, which then scores the labels the model answers
    at it (its positive class from that probability on)."""
    from ..metrics import get_metric

    target = model.target
    labelled = data.loc[data[target].notna()]
    if len(labelled) > max_rows:
        labelled = labelled.sample(max_rows, random_state=seed)
    y = model.task.encode(labelled[target])
    X = model.encode(labelled.drop(columns=[target]))
    scorer = get_metric(metric or model.metadata.get("metric"), model.task.kind)
    calibrator = model.extras.get("calibrator")

    def loss(Xm: np.ndarray) -> float:
        raw = model.predictor.predict_raw(Xm)
        if calibrator is not None and model.task.is_classification:
            raw = calibrator.transform(raw)
        if threshold is not None:  # the labels answered, as rows of 0 and 1 a metric of labels reads
            raw = np.eye(2)[(np.asarray(raw)[:, 1] >= threshold).astype(np.int64)]
        return scorer.loss(y, raw)

    base = loss(X)
    sources = [model.encoder.source_column(f) for f in model.encoder.feature_names_]
    rng = np.random.default_rng(seed)
    out: dict[str, dict[str, float]] = {}
    for col in dict.fromkeys(sources):
        idx = [j for j, s in enumerate(sources) if s == col]
        drops = []
        for _ in range(repeats):
            Xp = X.copy()
            Xp[:, idx] = X[rng.permutation(len(X))][:, idx]
            drops.append(loss(Xp) - base)
        out[col] = {"mean": float(np.mean(drops)), "std": float(np.std(drops))}
    return dict(sorted(out.items(), key=lambda kv: -kv[1]["mean"]))
