"""The three kinds of task behind one interface, made by one factory.

A Task knows how to encode the target for the learners (class indices 0..k-1, or floats), how to turn the
learners' raw output back into the user's labels, and what its default metric is. Code elsewhere asks the
task instead of branching on its kind.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .errors import DataError
from .written_numbers import text_numbers

__all__ = ["BinaryTask", "MulticlassTask", "RegressionTask", "Task", "infer_task_kind", "make_task"]


class Task:
    """Base of the task kinds. ``classes`` is empty for regression."""

    kind: str = ""
    default_metric: str = ""
    is_classification: bool = False

    def __init__(self, classes: list[Any] | None = None, written: list[str] | None = None) -> None:
        self.classes: list[Any] = list(classes or [])
        #: how the training file wrote the classes of a true/false target ("false", "true" or "FALSE", "TRUE":
        #: what pandas read as booleans), by class; None where it was not a file's true/false text
        self.written: list[str] | None = list(written) if written and len(written) == len(self.classes) else None

    # -- target encoding -------------------------------------------------------------------------------
    def encode(self, y: pd.Series | np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def decode(self, raw: np.ndarray) -> np.ndarray:
        """The user's labels or values from the learners' raw output."""
        raise NotImplementedError

    def labels_at(self, idx: np.ndarray) -> np.ndarray:
        """The class labels of class indices ``idx``: of dtype bool for a true/false target and int64 for whole-number
        classes (0, 1, 2), as the target held them (scikit-learn's metrics refuse whole numbers in an object
        array); objects otherwise (the labels as written)."""
        labels = np.asarray(self.classes, dtype=object)
        if self.classes and all(isinstance(c, bool | np.bool_) for c in self.classes):
            labels = labels.astype(bool)
        elif self.classes and all(isinstance(c, int | np.integer) and not isinstance(c, bool | np.bool_)
                                  and -2**63 <= c < 2**63 for c in self.classes):
            labels = labels.astype(np.int64)
        return labels[idx]

    def as_written(self, labels: pd.Series) -> pd.Series:
        """Predicted labels as the training file wrote them (``written``: 'false'/'true', 'FALSE'/'TRUE'), for a
        table of predictions written as text; the labels as they are where the file said nothing (a model
        saved before it was kept, a target read from typed booleans)."""
        written = getattr(self, "written", None)  # a task pickled before it was kept has none
        if written is None:
            return labels
        spelled = dict(zip(self.classes, written, strict=True))
        return labels.map(lambda v: spelled.get(_plain(v), v)).astype(object)

    @property
    def n_outputs(self) -> int:
        return max(len(self.classes), 1)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "classes": [_plain(c) for c in self.classes],
                **({"written": self.written} if getattr(self, "written", None) else {})}

    @staticmethod
    def from_dict(d: dict[str, Any]) -> Task:
        return _KINDS[d["kind"]](d.get("classes"), d.get("written"))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(classes={self.classes!r})" if self.classes else f"{type(self).__name__}()"


class _ClassificationTask(Task):
    is_classification = True

    def encode(self, y: pd.Series | np.ndarray) -> np.ndarray:
        values = pd.Series(np.asarray(y, dtype=object))
        index = {c: i for i, c in enumerate(self.classes)}
        codes = values.map(lambda v: index.get(_plain(v), -1)).to_numpy(dtype=np.int64)
        if (codes < 0).any():
            unknown = values[codes < 0].iloc[0]
            raise DataError(
                f"The target holds the label {unknown!r}, which the model never saw; "
                f"known labels: {', '.join(map(str, self.classes))}.{_respelt(self, y, values)}"
            )
        return codes

    def decode(self, raw: np.ndarray) -> np.ndarray:
        return self.labels_at(np.asarray(raw).argmax(axis=1))


class BinaryTask(_ClassificationTask):
    kind = "binary"
    default_metric = "roc_auc"


class MulticlassTask(_ClassificationTask):
    kind = "multiclass"
    default_metric = "log_loss"


class RegressionTask(Task):
    kind = "regression"
    default_metric = "rmse"

    def encode(self, y: pd.Series | np.ndarray) -> np.ndarray:
        s = pd.Series(y)
        try:
            return np.asarray(pd.to_numeric(s, errors="raise"), dtype=np.float64)
        except (ValueError, TypeError):
            # numbers as a column's cells are read: '120,000', '$3,007', '18.1%'
            numbers = text_numbers(s)[0]
            bad = numbers.isna() & s.notna()
            if not bad.any():
                return numbers.to_numpy(dtype=np.float64)
            raise DataError(
                f"The target of a regression must be numeric; it holds text such as {s[bad].iloc[0]!r}. "
                "Use --task multiclass to predict categories."
            ) from None

    def decode(self, raw: np.ndarray) -> np.ndarray:
        return np.asarray(raw, dtype=np.float64)


_KINDS: dict[str, type[Task]] = {"binary": BinaryTask, "multiclass": MulticlassTask, "regression": RegressionTask}


def _plain(v: Any) -> Any:
    """A numpy scalar as the Python value it holds, so labels compare and serialise alike."""
    return v.item() if isinstance(v, np.generic) else v


#: the spellings of yes and no read alike, whatever their case
_TRUE_WORDS, _FALSE_WORDS = frozenset({"true", "t", "yes", "y", "1", "1.0"}), frozenset({"false", "f", "no", "n", "0",
                                                                                       "0.0"})


def _truth(v: Any) -> bool | None:
    """A label read as yes or no (True, 1, 'yes', 'Y', 't', '1'...); None where it reads as neither."""
    v = _plain(v)
    if isinstance(v, bool):
        return v
    if isinstance(v, int | float):
        return True if v == 1 else False if v == 0 else None
    text = str(v).strip().lower() if isinstance(v, str) else ""
    return True if text in _TRUE_WORDS else False if text in _FALSE_WORDS else None


def _respelt(task: Task, y: Any, values: pd.Series) -> str:
    """Where a yes/no model's labels and every label of ``values`` are one yes and one no, each differently
    spelt ('yes'/'no' against 'true'/'false' or 1/0): the words telling how to write them as the model's
    labels; "" otherwise (what is yes is then not clear)."""
    found = [_plain(v) for v in pd.unique(values.dropna())]
    truths = {c: _truth(c) for c in task.classes}
    if len(task.classes) != 2 or set(truths.values()) != {True, False} or len(found) > 2 \
            or len({_truth(v) for v in found} - {None}) != len(found):
        return ""
    # how the file and the model write a true/false label read as a boolean ('false'/'true'), else as read
    read = ((getattr(y, "attrs", {}).get("source") or {}).get("booleans") or {}).get(str(getattr(y, "name", "")))
    file_words = dict(zip((False, True), read, strict=True)) if read and len(read) == 2 else {}
    model_words = dict(zip(task.classes, task.written or [str(c) for c in task.classes], strict=True))
    model = {truths[c]: model_words[c] for c in task.classes}
    spelt = {_truth(v): file_words.get(v, str(v)) if isinstance(v, bool) else str(v) for v in found}
    moves = [f"{spelt[t]!r} as {model[t]!r}" for t in (True, False) if t in spelt and spelt[t] != model[t]]
    return (f" The model's labels are {model[True]!r}/{model[False]!r}; this file writes "
            f"{'/'.join(repr(spelt[t]) for t in (True, False) if t in spelt)}: write them as the model's labels "
            f"({', '.join(moves)}).")


def infer_task_kind(y: pd.Series) -> tuple[str, str]:
    """Guess the task from the target's values; returns (kind, reason) so the guess can be explained."""
    y = y.dropna()
    n_unique = y.nunique()
    if n_unique == 2:
        return "binary", "the target has two distinct values"
    if pd.api.types.is_bool_dtype(y):
        return "binary", "the target is boolean"
    if not pd.api.types.is_numeric_dtype(y):
        numeric, units = text_numbers(y)
        if numeric.notna().all() and n_unique > 20:
            written = sorted(set(units) - {""})
            return "regression", "the target holds numbers written as text" + (
                f" (with {' and '.join(written)})" if written else "")
        return "multiclass", f"the target is categorical with {n_unique} values"
    values = y.to_numpy(dtype=float)
    if np.all(np.mod(values, 1) == 0) and n_unique <= 10:
        return "multiclass", f"the target holds {n_unique} distinct whole numbers"
    return "regression", "the target is numeric"


def make_task(y: pd.Series, kind: str = "auto") -> Task:
    """The Task for target ``y``; ``kind='auto'`` infers it. Classes are sorted, as users expect."""
    y = y.dropna()
    if y.empty:
        raise DataError("The target column has no values: every row is missing it.")
    if pd.api.types.is_numeric_dtype(y) and not pd.api.types.is_bool_dtype(y):
        infinite = np.isinf(y.to_numpy(dtype=float))
        if infinite.any():
            first = y.index[infinite.argmax()]
            row = first + 1 if isinstance(first, int | np.integer) else first  # a table's rows count from 1
            raise DataError(f"The target holds infinity in {int(infinite.sum()):,} rows (the first: row {row}): "
                            "remove those rows, or give them a finite value.")
    if kind == "auto":
        kind, _ = infer_task_kind(y)
    if kind == "regression":
        return RegressionTask()
    labels = [_plain(v) for v in pd.unique(y)]
    try:
        labels = sorted(labels)
    except TypeError:
        labels = sorted(labels, key=str)
    if len(labels) < 2:
        raise DataError(
            f"The target has a single value ({labels[0]!r}) in every row: there is nothing to predict. "
            "Choose another target column."
        )
    if kind == "binary" and len(labels) != 2:
        raise DataError(
            f"A binary task needs exactly two target values; this target has {len(labels)}. "
            f"Use --task {infer_task_kind(y)[0] if len(labels) > 2 else 'multiclass'}."
        )
    return _KINDS[kind](labels, _written(y, labels))


def _written(y: pd.Series, labels: list[Any]) -> list[str] | None:
    """How the file ``y`` was read from wrote its true/false labels (the reader's ``booleans`` of its
    ``attrs["source"]``), in the order of ``labels``; None for other labels or a target not read so."""
    found = ((y.attrs.get("source") or {}).get("booleans") or {}).get(str(y.name))
    if not found or len(labels) != 2 or not all(isinstance(c, bool) for c in labels):
        return None
    return [str(found[0]), str(found[1])]
