"""The labels a classifier answers, as ``Model.decide`` answers them: the class of the highest probability, or, for
a binary model with a decision threshold (``mlengineer calibrate``), its positive class from that probability on.
Metrics of labels (accuracy, balanced accuracy, F1, the confusion matrix, McNemar's test) count these answers;
metrics of probabilities (ROC AUC, log loss, Brier) score the probabilities as they are.

    >>> labels = decided_labels(raw, 0.76)                    # doctest: +SKIP
    >>> as_decided("binary", "accuracy", raw, 0.76)           # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["LABEL_METRICS", "as_decided", "decided_labels", "decision_threshold", "decision_words",
           "answering_words", "scores_labels"]

#: mlengineer's own metrics that score predicted labels (the others score probabilities or values)
LABEL_METRICS = frozenset({"accuracy", "balanced_accuracy", "f1", "f1_macro"})


def decision_threshold(model: Any) -> float | None:
    """The probability of its positive class from which a binary ``model`` answers that class (its decision
    threshold), or None where it answers the class of the highest probability."""
    threshold = (getattr(model, "extras", None) or {}).get("threshold")
    if threshold is None or model.task.kind != "binary":
        return None
    return float(threshold["value"])


def answering_words(model: Any) -> str:
    """How a binary ``model`` with a decision threshold answers, in words about the class its threshold is about
    (``calibrate --positive-class``; the second class in sorted order by default), or "" where it has none."""
    from .threshold import positive_side

    side = positive_side(model)
    return "" if side is None else decision_words(str(side[0]), side[1])


def scores_labels(name: str, kind: str) -> bool:
    """Whether the metric ``name`` of a ``kind`` task scores predicted labels rather than probabilities."""
    if kind == "regression":
        return False
    from ..metrics import METRICS, get_metric

    key = get_metric(name, kind).name
    if key in LABEL_METRICS:
        return True
    if key in METRICS:
        return False
    from sklearn import metrics as skm

    try:  # a scikit-learn scorer: it scores labels where it asks the estimator to predict
        response = getattr(skm.get_scorer(key), "_response_method", None)
    except ValueError:
        return False
    return response == "predict" or (isinstance(response, tuple | list) and tuple(response)[:1] == ("predict",))


def decided_labels(raw: np.ndarray, threshold: float | None = None) -> np.ndarray:
    """The class index each row of probabilities ``raw`` (n, k) is answered with: the positive class (1) where
    its probability reaches ``threshold`` (binary models with one), else the class of the highest probability."""
    raw = np.asarray(raw, dtype=float)
    if threshold is not None and raw.ndim == 2 and raw.shape[1] == 2:
        return (raw[:, 1] >= threshold).astype(np.int64)
    return raw.argmax(axis=1)


def as_decided(kind: str, name: str, raw: np.ndarray, threshold: float | None) -> np.ndarray:
    """What the metric ``name`` should score: for a metric of labels and a model with a decision ``threshold``,
    the answered labels as rows of 0 and 1 (their highest entry is the answer, as every metric of labels reads
    it); otherwise ``raw`` as it is."""
    if threshold is None or kind != "binary" or not scores_labels(name, kind):
        return raw
    raw = np.asarray(raw, dtype=float)
    return np.eye(raw.shape[1])[decided_labels(raw, threshold)]


def decision_words(positive: str, threshold: float) -> str:
    """How a model with a decision threshold answers, in words."""
    return f"answering {positive} from a probability of {threshold:.4g} on (its decision threshold), not from 50%"
