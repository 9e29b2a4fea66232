"""Regression on a transformed target: a log or Yeo-Johnson power transform of a skewed target, learned on
and inverted after, chosen on validation like any other configuration.

A skewed target (prices, counts, durations) puts most of a squared-error learner's effort on its few largest
values; learning its logarithm instead evens that out, and the search keeps whichever scores better in the
user's metric, on the original scale. A configuration asks for it with ``params["target_transform"]``
(``"log"`` or ``"power"``); ``ModelFamily.fit`` fits the transform on the training rows, fits the family on
the transformed values, and wraps the result in ``TransformedTargetModel``, which answers on the original
scale (``predict_raw`` and the one-row ``row_function`` alike); both classes live in ``base.py``, beside the
``fit`` that uses them. ``target_transforms(y)``, here, says which kinds are worth a candidate for a target.
"""

from __future__ import annotations

import numpy as np

from .base import TargetTransform, TransformedTargetModel

__all__ = ["SKEW", "TargetTransform", "TransformedTargetModel", "target_transforms"]

#: a target whose skewness is beyond this (in absolute value) is worth a transformed candidate
SKEW = 0.75
#: at least this many distinct values: a target of a few levels (a 1-10 grade) gains nothing from a transform
MIN_DISTINCT = 20


def _skew(v: np.ndarray) -> float:
    v = np.asarray(v, dtype=np.float64)
    s = v.std()
    return 0.0 if not np.isfinite(s) or s == 0 else float(np.mean(((v - v.mean()) / s) ** 3))


def target_transforms(y: np.ndarray) -> list[str]:
    """The transforms worth a candidate for the regression target ``y``: ``["log"]`` for a skewed target
    of values at least 0 whose logarithm is less skewed, ``["power"]`` for a skewed target with negative
    values; none for a symmetric one, one with few distinct values, or one with missing values."""
    y = np.asarray(y, dtype=np.float64)
    if len(y) < 2 or not np.isfinite(y).all() or len(np.unique(y[: 100_000])) < MIN_DISTINCT:
        return []
    s = _skew(y)
    if abs(s) <= SKEW:
        return []
    if y.min() >= 0:
        t = TargetTransform.fitted("log", y)
        return ["log"] if abs(_skew(t.forward(y))) < abs(s) else []
    return ["power"]
