"""``AutoClassifier`` and ``AutoRegressor``: the whole search behind scikit-learn's estimator contract.

They can be cloned, put in a Pipeline and passed to ``cross_val_score`` like any estimator; constructors
only store their arguments, and what fitting learns ends in ``_``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from ..bundle.model import Model
from ..errors import DataError

__all__ = ["AutoClassifier", "AutoRegressor"]

_TARGET = "__target__"

_PARAMETERS = """
    Parameters
    ----------
    time_budget : float, default=60
        Seconds the whole search may take (more than 0, at most 7 days).
    metric : str or None, default=None
        Metric to optimise; the task's default if None.
    seed : int, default=0
        Seed of every random choice: the same seed, data and budget repeat a fit on one machine.
    families : list of str or None, default=None
        Model families to try (e.g. ``["linear", "lightgbm"]``); all if None.
    max_predict_ms_per_row : float or None, default=None
        Only keep models that predict one row within this many milliseconds.
    n_jobs : int, default=0
        Threads for training; 0 uses every core.

    Attributes
    ----------
    model_ : mlengineer.Model
        The fitted bundle: ``model_.save(path)`` writes it for ``mlengineer serve`` or ``mlengineer.load``.
    n_features_in_ : int
        Number of columns seen in ``fit``.
    feature_names_in_ : ndarray of str
        Column names seen in ``fit``; only set when X was a DataFrame with text column names.

    ``fit(X, y, sample_weight=w)`` weights rows (numbers of at least 0: a row of weight 2 counts as two, one
    of 0 for nothing) in every fit, score, ensemble and calibration of the search. ``fit`` is not recorded
    in MLflow: ``mlengineer.train`` is the tracked way (``weight_column=`` there).
"""


def _frame(X: Any) -> pd.DataFrame:
    """X as a DataFrame with text column names; arrays' columns are named x0, x1, ..."""
    if hasattr(X, "toarray") and not isinstance(X, pd.DataFrame):  # scipy sparse (OneHotEncoder's default)
        X = X.toarray()
    if isinstance(X, pd.DataFrame):
        df = X.reset_index(drop=True)
        if not all(isinstance(c, str) for c in df.columns):
            df = df.set_axis([str(c) for c in df.columns], axis=1)
    else:
        arr = np.asarray(X)
        if arr.ndim == 1:
            arr = arr.reshape(-1, 1)
        if arr.ndim != 2:
            raise DataError(f"X must be a table (a DataFrame, or a 2-D array or list of rows); got an array of "
                            f"shape {arr.shape}.")
        df = pd.DataFrame(arr, columns=[f"x{i}" for i in range(arr.shape[1])])
    twice = sorted({str(c) for c in df.columns[df.columns.duplicated()]})
    if twice:
        raise DataError(f"X must have distinct column names; {', '.join(map(repr, twice))} appears more than once.")
    return df


def _named(X: Any) -> bool:
    """Whether X names its columns the way scikit-learn counts as feature names (a DataFrame, text names)."""
    return isinstance(X, pd.DataFrame) and all(isinstance(c, str) for c in X.columns)


def _weights(sample_weight: Any, y: np.ndarray) -> np.ndarray | None:
    """``sample_weight`` as one float per row of X (a number: the same for every row), checked on the rows with
    a target (the others are not trained on) as the weight column is."""
    from ..training.weights import read_weights

    if sample_weight is None:
        return None
    arr = np.asarray(sample_weight)
    if arr.ndim == 0:
        arr = np.full(len(y), arr.item())
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr.ravel()
    if arr.ndim != 1 or len(arr) != len(y):
        raise DataError(f"sample_weight must hold one weight per row of X ({len(y)}); got an array of shape "
                        f"{arr.shape}.")
    series = pd.Series(arr)
    read_weights(series[~pd.isna(y)], "sample_weight", rows="rows with a target", subject="sample_weight")
    return np.asarray(pd.to_numeric(series, errors="coerce"), dtype=np.float64)


def _target(y: Any, n_rows: int) -> np.ndarray:
    """y as a 1-D array with one value per row of X."""
    arr = np.asarray(y)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr.ravel()
    if arr.ndim != 1:
        raise DataError(f"y must hold one target per row (a 1-D array or a Series); got an array of shape {arr.shape}.")
    if n_rows == 0:
        raise DataError("X has no rows: fit needs at least one row per class (regression: a few rows).")
    if len(arr) != n_rows:
        raise DataError(f"X and y must have the same number of rows; X has {n_rows}, y has {len(arr)}.")
    return arr


class _AutoBase(BaseEstimator):
    _task = "auto"

    def __init__(self, *, time_budget: float = 60.0, metric: str | None = None, seed: int = 0,
                 families: list[str] | None = None, max_predict_ms_per_row: float | None = None,
                 n_jobs: int = 0) -> None:
        self.time_budget = time_budget
        self.metric = metric
        self.seed = seed
        self.families = families
        self.max_predict_ms_per_row = max_predict_ms_per_row
        self.n_jobs = n_jobs

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # missing values are cleaned like any table's
        return tags

    def _fit_model(self, X: Any, df: pd.DataFrame, y: np.ndarray, task: str, weights: np.ndarray | None = None) -> Model:
        """Train on ``df`` (``X`` as a frame) and ``y`` (rows weighted by ``weights``), remembering X's columns."""
        from .public import train  # the Python face: its messages name the arguments, not the CLI's flags

        target = _TARGET
        while target in df.columns:  # a feature of that name keeps it; the target takes another
            target += "_"
        self._columns = [str(c) for c in df.columns]
        if _named(X):
            self.feature_names_in_ = np.asarray(self._columns, dtype=object)
        elif hasattr(self, "feature_names_in_"):  # a refit on an array: the earlier names no longer hold
            del self.feature_names_in_
        self.n_features_in_ = len(self._columns)
        weight = None
        if weights is not None:  # a column of its own, which no feature's name takes
            weight = target + "weight"
            while weight in df.columns:
                weight += "_"
            df[weight] = weights
        df[target] = y
        # every column of X is a feature: an estimator inside a Pipeline has no say on identifiers
        roles = {c: "numeric" for c in self._columns if pd.api.types.is_numeric_dtype(df[c])}
        return train(df, target, task=task, time_budget=self.time_budget, metric=self.metric, seed=self.seed,
                     families=self.families, max_predict_ms_per_row=self.max_predict_ms_per_row,
                     n_jobs=self.n_jobs, track=False, name=type(self).__name__, column_roles=roles,
                     weight_column=weight)

    def _X(self, X: Any) -> pd.DataFrame:
        check_is_fitted(self, "model_")
        df = _frame(X)
        if _named(X) and hasattr(self, "feature_names_in_"):
            return df  # matched by name: another column order or extra columns are fine
        if df.shape[1] != self.n_features_in_:
            raise DataError(f"X has {df.shape[1]} features, but {type(self).__name__} is expecting "
                            f"{self.n_features_in_} features as input.")
        return df.set_axis(self._columns, axis=1)


class AutoClassifier(ClassifierMixin, _AutoBase):
    __doc__ = """Searches model families within ``time_budget`` seconds and keeps the best ensemble of classifiers.

    ``classes_`` holds the labels of y in sorted order, the order of ``predict_proba``'s columns.
    """ + _PARAMETERS

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> AutoClassifier:
        """Search for the best classifier of ``y`` (labels: text, integers, booleans) from ``X``, each row
        counting for its ``sample_weight`` (None: once)."""
        df = _frame(X)
        y = _target(y, len(df))
        weights = _weights(sample_weight, y)
        if y.dtype.kind == "f":
            finite = y[np.isfinite(y)]
            if (finite != np.round(finite)).any():
                example = finite[finite != np.round(finite)][0]
                raise DataError(f"AutoClassifier needs class labels in y; got continuous values (such as {example:g}):"
                                " use AutoRegressor to predict numbers, or bin y into classes.")
        n_classes = len(np.unique(y[~pd.isna(y)].astype(str)))
        self.model_ = self._fit_model(X, df, y, "binary" if n_classes == 2 else "multiclass", weights)
        self.classes_ = np.asarray(self.model_.classes)
        return self

    def predict(self, X: Any) -> np.ndarray:
        """The most likely label of each row of ``X``; rows the model may answer badly (a category it never saw,
        a number far outside its training range, a column it does not know) with an ``InputWarning``, as
        ``Model.predict`` warns."""
        rows = self._X(X)
        labels = np.asarray(self.model_.predict(rows), dtype=self.classes_.dtype)
        self.model_.warn_inputs(rows)  # at the caller's line
        return labels

    def predict_proba(self, X: Any) -> np.ndarray:
        """Probabilities, shape (n_rows, n_classes), columns in the order of ``classes_``; an ``InputWarning``
        as ``predict``'s."""
        rows = self._X(X)
        raw = self.model_.predict_raw(rows)
        self.model_.warn_inputs(rows)
        return raw


class AutoRegressor(RegressorMixin, _AutoBase):
    __doc__ = """Searches model families within ``time_budget`` seconds and keeps the best ensemble of regressors.
    """ + _PARAMETERS

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> AutoRegressor:
        """Search for the best regressor of ``y`` (numbers) from ``X``, each row counting for its
        ``sample_weight`` (None: once)."""
        df = _frame(X)
        y = _target(y, len(df))
        weights = _weights(sample_weight, y)
        if y.dtype.kind not in "biuf":
            values = pd.Series(y, dtype=object)
            numbers = pd.to_numeric(values, errors="coerce")
            wrong = values[numbers.isna() & values.notna()]
            if len(wrong):
                raise DataError(f"AutoRegressor needs numbers in y; got {wrong.iloc[0]!r}: use AutoClassifier to "
                                "predict classes.")
            y = numbers.to_numpy(dtype=float)
        self.model_ = self._fit_model(X, df, np.asarray(y, dtype=float), "regression", weights)
        return self

    def predict(self, X: Any) -> np.ndarray:
        """The predicted value of each row of ``X``; rows the model may answer badly with an ``InputWarning``, as
        ``AutoClassifier.predict``'s."""
        rows = self._X(X)  # first: an unfitted estimator raises NotFittedError
        values = np.asarray(self.model_.predict(rows), dtype=float)
        self.model_.warn_inputs(rows)  # at the caller's line
        return values
