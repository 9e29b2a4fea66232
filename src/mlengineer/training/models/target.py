"""Regression on a transformed target: a log or Yeo-Johnson power transform of a skewed target, learned on
and inverted after, chosen on validation like any other configuration.

A skewed target (prices, counts, durations) puts most of a squared-error learner's effort on its few largest
values; learning its logarithm instead evens that out, and the search keeps whichever scores better in the
user's metric, on the original scale. A configuration asks for it with ``params["target_transform"]``
(``"log"`` or ``"power"``); ``ModelFamily.fit`` fits the transform on the training rows, fits the family on
the transformed values, and wraps the result in ``TransformedTargetModel``, which answers on the original
scale (``predict_raw`` and the one-row ``row_function`` alike). ``target_transforms(y)`` says which kinds are
worth a candidate for a target.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .base import FittedModel

__all__ = ["SKEW", "TargetTransform", "TransformedTargetModel", "target_transforms"]

#: a target whose skewness is beyond this (in absolute value) is worth a transformed candidate
SKEW = 0.75
#: at least this many distinct values: a target of a few levels (a 1-10 grade) gains nothing from a transform
MIN_DISTINCT = 20
#: an inverted prediction is clipped to the transformed training range widened by this share of it on each
#: side: a learner's value far outside it (a network's, early in training) must not overflow ``exp``
MARGIN = 0.25


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


@dataclass
class TargetTransform:
    """``forward`` and ``inverse`` of one transform, fitted on training values.

    ``log``: ``log(y + shift)``, with ``shift`` 0 for positive targets and the smallest positive value where
    the target holds zeros (1 for counts: ``log1p``). ``power``: Yeo-Johnson with the ``lam`` that makes the
    training values most normal (SciPy's estimate), defined for any sign."""

    kind: str
    shift: float = 0.0
    lam: float = 1.0
    low: float = -np.inf   # the clip range of transformed predictions (``MARGIN``)
    high: float = np.inf

    @classmethod
    def fitted(cls, kind: str, y: np.ndarray) -> TargetTransform:
        y = np.asarray(y, dtype=np.float64)
        if kind == "log":
            if y.min() < 0:
                raise ValueError("a log transform needs a target of values at least 0; use 'power'")
            positive = y[y > 0]
            t = cls("log", shift=0.0 if y.min() > 0 else float(positive.min()) if len(positive) else 1.0)
        elif kind == "power":
            from scipy.stats import yeojohnson_normmax

            t = cls("power", lam=float(yeojohnson_normmax(y)))
        else:
            raise ValueError(f"unknown target transform {kind!r}: choose 'log' or 'power'")
        z = t.forward(y)
        span = float(z.max() - z.min()) if len(z) else 0.0
        t.low, t.high = float(z.min()) - MARGIN * span, float(z.max()) + MARGIN * span
        return t

    def forward(self, y: np.ndarray) -> np.ndarray:
        y = np.asarray(y, dtype=np.float64)
        if self.kind == "log":
            return np.log(y + self.shift)
        lam, out = self.lam, np.empty_like(y)
        pos = y >= 0
        out[pos] = np.log1p(y[pos]) if abs(lam) < 1e-12 else ((y[pos] + 1) ** lam - 1) / lam
        neg = ~pos
        out[neg] = -np.log1p(-y[neg]) if abs(lam - 2) < 1e-12 else -((1 - y[neg]) ** (2 - lam) - 1) / (2 - lam)
        return out

    def inverse(self, z: np.ndarray) -> np.ndarray:
        z = np.clip(np.asarray(z, dtype=np.float64), self.low, self.high)
        if self.kind == "log":
            return np.exp(z) - self.shift
        lam, out = self.lam, np.empty_like(z)
        pos = z >= 0
        if abs(lam) < 1e-12:
            out[pos] = np.expm1(z[pos])
        else:  # the base stays positive within the clip range; the floor guards the range's far edge
            out[pos] = np.maximum(z[pos] * lam + 1, 1e-300) ** (1 / lam) - 1
        neg = ~pos
        if abs(lam - 2) < 1e-12:
            out[neg] = -np.expm1(-z[neg])
        else:
            out[neg] = 1 - np.maximum(1 - (2 - lam) * z[neg], 1e-300) ** (1 / (2 - lam))
        return out

    def describe(self) -> str:
        if self.kind == "log":
            return "log(y)" if self.shift == 0 else f"log(y + {self.shift:g})"
        return f"Yeo-Johnson power (lambda {self.lam:.3g})"


class TransformedTargetModel(FittedModel):
    """A family's model fitted on a transformed target, answering on the original scale. It stands for the
    inner model everywhere (its family, estimator, rounds, compiled form); only explanations differ: the
    inverse is not additive, so ``contributions`` is None and the explain stage samples Shapley values."""

    def __init__(self, inner: FittedModel, transform: TargetTransform) -> None:
        super().__init__(inner.estimator, {**inner.params, "target_transform": transform.kind}, inner.task)
        self.inner, self.transform = inner, transform
        self.family = inner.family
        self.best_iteration, self.rounds_run = inner.best_iteration, inner.rounds_run

    def predict_raw(self, X: np.ndarray) -> np.ndarray:
        return self.transform.inverse(self.inner.predict_raw(X))

    def row_function(self) -> Callable[[np.ndarray], np.ndarray] | None:
        make = getattr(self.inner, "row_function", None)
        fn = (make() if callable(make) else None) or self.inner.predict_raw
        inverse = self.transform.inverse
        return lambda X: inverse(fn(X))

    def prepare(self) -> None:
        self.inner.prepare()

    def feature_importance(self) -> np.ndarray | None:
        return self.inner.feature_importance()

    def __getattr__(self, name: str) -> Any:
        # what only some families have (``compile``/``attach_compiled``, ``compiled_suffix``): the inner's;
        # never for private names, or unpickling (which looks them up before ``inner`` is set) would recurse
        if name.startswith("_") or name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)
