"""Row weights: the user's weight column (``TrainConfig.weight_column``, ``--weight-column``), checked once before
any training, and the class-balancing weights a balanced metric adds to them.

A row of weight 2 counts as two copies of it, one of weight 0 for nothing: in every learner's fit and early
stopping, the out-of-fold scores that rank the candidates, ensemble selection, the calibrator and conformal
scores, and the refit. The column is not a feature, and predicting never needs it.

Rows without a target are dropped before training whatever their weight; a row with a target and no weight is
refused (naming how many there are), since no weight is a safe guess for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ConfigError, DataError

__all__ = ["WeightCounts", "check_metric_weighs", "check_weight_column", "class_factors", "class_weights", "numbered",
           "read_weights", "refuse_bad_weights", "training_weights", "weight_type_error", "weighted_words",
           "weightless_error", "weightless_folds"]


def check_weight_column(df: Any, column: str, *, target: str, keep: list[str] | None = None) -> None:
    """Refuse a weight column the table (a pandas or Spark DataFrame: its ``columns``) lacks, or that is the
    target or a kept feature, before any work on the table (schema, audit): one line naming the column and
    what to do."""
    if column not in df.columns:
        shown = ", ".join(map(str, df.columns[:30])) + (", ..." if len(df.columns) > 30 else "")
        raise DataError(f"The weight column {column!r} (--weight-column) is not in the data; its columns are: {shown}. "
                        "Name one of them, or leave the option out to count every row alike.")
    if column == target:
        raise DataError(f"The weight column {column!r} is the target: weight the rows by another column.")
    if column in (keep or []):
        raise DataError(f"--keep names the weight column {column!r}: a weight column is not a feature; leave it "
                        "out of --keep.")


def numbered(index: pd.Index) -> bool:
    """Whether a table's index is its rows' positions (0, 1, 2, ...), as a file read gets: its rows are then named
    by number from 1, otherwise by their index labels."""
    return isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1


def _row(label: Any, by_number: bool) -> str:
    """A row as a user finds it: "row 3" (a table's rows from 1), or "the row of index 'x'"."""
    if isinstance(label, np.generic):
        label = label.item()  # 20, not np.int64(20)
    return f"row {label + 1}" if by_number and isinstance(label, int) else f"the row of index {label!r}"


def _rows(n: int) -> str:
    return f"{n:,} row" + ("" if n == 1 else "s")


@dataclass
class WeightCounts:
    """What a weight column holds in the rows read, counted: in memory by numpy (``read_weights``), on Spark by
    aggregations (``spark.prepare.check_weights``), so that both engines word each problem alike
    (``refuse_bad_weights``). ``first`` names the first row of each problem (``text``, ``missing``, ``infinite``,
    ``negative``) by its index label, or by its position from 0 where ``by_number``; ``first_text`` is the
    first text value."""

    rows: int
    total: float
    text: int = 0
    missing: int = 0
    infinite: int = 0
    negative: int = 0
    first: dict[str, Any] = field(default_factory=dict)
    first_text: Any = None
    by_number: bool = True


def weight_type_error(name: str, dtype: Any) -> DataError:
    """A weight column of a type that holds no numbers (dates, durations): ``name`` as in ``refuse_bad_weights``."""
    return DataError(f"{name} holds {dtype} values: weights must be numbers of at least 0; name a column of numbers.")


def refuse_bad_weights(counts: WeightCounts, name: str, *, rows: str = "rows that have a target") -> None:
    """Raise the one line that says what is wrong with the weights ``counts`` describes, if anything: text,
    missing values (``rows`` says which rows were read), infinite or negative weights, in that order, or
    weights that add up to nothing. ``name`` names the weights ("The weight column 'w'")."""
    c = counts
    if c.text:
        raise DataError(f"{name} holds text in {_rows(c.text)} (the first: {_row(c.first['text'], c.by_number)}, "
                         f"{c.first_text!r}): weights must be numbers of at least 0; convert them, or name another "
                         "column.")
    for key, n, what, todo in (
            ("missing", c.missing, "no value", "give every row a weight (0 leaves a row out), or drop those rows"),
            ("infinite", c.infinite, "infinity", "give those rows a finite weight"),
            ("negative", c.negative, "a negative weight", "weights must be at least 0 (0: the row counts for nothing)")):
        if n:
            raise DataError(f"{name} has {what} in {n:,} of the {c.rows:,} {rows} "
                             f"(the first: {_row(c.first[key], c.by_number)}): {todo}.")
    if not c.rows or not c.total > 0:
        raise DataError(f"{name} is 0 in every one of the {rows}: at least one row must weigh more than 0.")


def read_weights(values: pd.Series, column: str, *, rows: str = "rows that have a target",
                 subject: str | None = None, by_number: bool = True) -> np.ndarray:
    """The weight column's ``values`` as float64, or one DataError naming the column, the rows and what to do:
    text or dates, missing values (``rows`` says which rows were read), negative or infinite weights, or
    weights that add up to nothing. ``subject`` names the weights in the message (default: the weight column);
    ``by_number``: the index labels are row positions of the table (``numbered``), said from 1."""
    name = subject or f"The weight column {column!r}"
    s = values
    counts = WeightCounts(rows=len(s), total=0.0, by_number=by_number)
    if pd.api.types.is_bool_dtype(s):
        s = s.astype(np.float64)
    elif not pd.api.types.is_numeric_dtype(s) or pd.api.types.is_timedelta64_dtype(s):
        if not (pd.api.types.is_object_dtype(s) or pd.api.types.is_string_dtype(s)
                or isinstance(s.dtype, pd.CategoricalDtype)):
            raise weight_type_error(name, s.dtype)
        numbers = pd.to_numeric(s.astype(object), errors="coerce")
        text = (numbers.isna() & s.notna()).to_numpy()
        if text.any():
            first = s.index[np.argmax(text)]
            counts.text, counts.first["text"], counts.first_text = int(text.sum()), first, s.loc[first]
            refuse_bad_weights(counts, name, rows=rows)
        s = numbers
    w = s.to_numpy(dtype=np.float64, na_value=np.nan)
    for key, bad in (("missing", np.isnan(w)), ("infinite", np.isinf(w)), ("negative", w < 0)):
        setattr(counts, key, int(bad.sum()))
        if bad.any():
            counts.first[key] = s.index[int(np.argmax(bad))]
    counts.total = float(w.sum())
    refuse_bad_weights(counts, name, rows=rows)
    return w


def class_factors(totals: np.ndarray) -> np.ndarray:
    """Each class's factor from its rows' count or total weight (``totals``): the inverse of its share, so that
    every class present weighs the same in all and the rows' total is kept; 0 for a class without rows."""
    totals = np.asarray(totals, dtype=np.float64)
    present = totals > 0
    out = np.zeros(len(totals))
    out[present] = totals.sum() / (totals[present] * np.count_nonzero(present))
    return out


def class_weights(y: np.ndarray, n_classes: int, sample_weight: np.ndarray | None = None) -> np.ndarray:
    """Per-row weights inversely proportional to the row's class frequency, averaging 1; with the user's
    ``sample_weight``, those weights times the inverse of each class's share of the total weight, so that
    every class weighs the same in all and a row keeps its weight within its class."""
    factors = class_factors(np.bincount(y, weights=sample_weight, minlength=n_classes))
    if sample_weight is None:
        return factors[y]
    return np.asarray(sample_weight, dtype=np.float64) * factors[y]


def training_weights(y: np.ndarray, n_classes: int, user: np.ndarray | None, *, balanced: bool) -> np.ndarray | None:
    """The weights the learners fit with: the user's, balanced by class where the metric judges every class alike
    (``Metric.balanced``); None where neither applies (every row counts once)."""
    if balanced:
        return class_weights(y, n_classes, user)
    return None if user is None else np.asarray(user, dtype=np.float64)


def weightless_folds(validation: Any, weights: np.ndarray) -> None:
    """Refuse a validation whose rows to score (a holdout, the newest rows, a fold), or whose rows to train on,
    all weigh 0: no candidate could be scored on them, or learn from them."""
    otherwise = ("split otherwise (validation: kfold in the --config file; without --time-column, which makes the "
                 "newest rows the validation rows)")
    one = len(validation.folds) == 1
    for i, (tr, va) in enumerate(validation.folds):
        if len(va) and not weights[va].sum() > 0:
            where = "the validation rows" if one else f"the rows of validation fold {i + 1}"
            raise weightless_error(where, validation.strategy, otherwise)
        if len(tr) and not weights[tr].sum() > 0:
            where = "the rows to train on" if one else f"the rows to train on of validation fold {i + 1}"
            raise weightless_error(where, validation.strategy, otherwise, learn=True)


def weightless_error(where: str, strategy: str, otherwise: str, *, learn: bool = False) -> DataError:
    """Rows (``where``, picked by ``strategy``) that all weigh 0: validation rows no model can be scored on, or
    (``learn``) rows to train on no model can learn from; ``otherwise``: how else to split."""
    what = "learn from them" if learn else "be scored on them"
    return DataError(f"Every one of {where} ({strategy}) weighs 0, so no model can {what}: give some "
                     f"of them a weight above 0, or {otherwise}.")


def check_metric_weighs(metric: Any, column: str, asked: str | None = None) -> None:
    """Refuse, before training, a metric that cannot count rows by their weights (``Metric.takes_weights``);
    ``asked``: the metric's name as the user gave it (``neg_max_error`` for the metric shown as ``max_error``)."""
    if not metric.takes_weights:
        raise ConfigError(f"--metric {asked or metric.name} cannot count rows by their weights: choose another metric, "
                          f"or leave out --weight-column {column}.")


def weighted_words(column: str) -> str:
    """What the split's words add for weighted training: the leaderboard, the report and the run say it."""
    return f"rows and scores weighted by {column!r}"
