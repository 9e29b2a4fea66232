"""Request validation built from the model's Schema and CleaningPlan.

Each protocol decodes its body into columns of raw JSON values; ``RequestValidator.validate`` checks them
against what the model was trained on and answers with typed columns, or raises an error that names the
column, the row and what to send instead:

- a feature column that is missing, or a column the model has never heard of (``extra_columns`` policy;
  columns the schema knows but the model does not use, such as an identifier or the target, are dropped);
- a value of the wrong type for the column's role (text in a number column; a list anywhere but in a category or text column, read as its JSON text); text that means
  no value ("NA", "", the column's placeholders learnt in training) is missing, as the cleaning plan reads it;
- NaN or infinity (JSON has ``null`` for a missing value);
- an object under the name of a column the model learnt from nested JSON ('meta' for 'meta.a'), in any body
  (records, ``dataframe_split``, CSV, OIP): read as its keys, as its JSON text, or as every key missing for null;
  any other value there is refused naming the column (``data/nested.py``);
- a time of day (``08:30:00``) or its seconds since midnight, in a column of times of day;
- a picture that is not base64 of a PNG, JPEG or other image (or is too large);
- a category the model never saw (``unseen_categories`` policy: accept, warn in the answer, or reject), with
  how many rows hold one;
- a number far outside the column's training range (``bundle/notes.py``, the rule ``mlengineer predict`` says it
  by): predicted, and said in the answer's warnings;
- an empty batch.

The typed columns then go through the model's own CleaningPlan, so validation adds checks and never a
second conversion path.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from ..bundle.model import Model
from ..bundle.notes import DateNotes, far_bounds, far_note, rows_holding, training_ranges
from ..data.clean import Conform, bool_value
from ..data.clock import TIME_OF_DAY, clock_seconds
from ..data.images import ImageProblem, image_bytes, is_image_bytes
from ..data.jsontable import plain_cell
from ..data.nested import flat_columns, nested_prefixes
from ..data.schema import Column
from ..data.values import (
    DATETIME_MAX,
    DATETIME_MIN,
    MISSING_TOKENS,
    basic_date_text,
    dateless,
    digit_twins,
    number_from_text,
    strptime,
    twin_key,
)
from ..errors import DataError, SchemaError
from .protocols import shown
from .settings import ExtraColumns, UnseenCategories

__all__ = ["RequestValidator", "Validated"]

_NAN = float("nan")


@dataclass
class Validated:
    """Typed feature columns of one request: float64 arrays for numbers and booleans, lists of str/None
    for the rest; ``warnings`` says what was accepted but is worth knowing."""

    columns: dict[str, Any]
    n_rows: int
    warnings: list[str] = field(default_factory=list)
    #: columns holding a category the model never saw (accepted by policy): how many rows hold one
    unseen: dict[str, int] = field(default_factory=dict)
    #: number columns holding values far outside their training range: how many rows hold one
    far: dict[str, int] = field(default_factory=dict)


def schema_column(model: Model, name: str) -> Column | None:
    """The schema's entry for ``name``, or None."""
    try:
        return model.schema[name]
    except KeyError:
        return None


def _kind(v: Any) -> str:
    if isinstance(v, Mapping):
        return "an object"
    if isinstance(v, list | tuple):
        return "a list"
    if isinstance(v, bytes):  # a binary tensor's BYTES element that is not UTF-8
        return f"{shown(v)}, which is not UTF-8 text (send text encoded as UTF-8)"
    return repr(v)[:60]


class RequestValidator:
    """Checks request columns against one model; built once per served model."""

    def __init__(self, model: Model, *, unseen_categories: UnseenCategories = UnseenCategories.warn,
                 extra_columns: ExtraColumns = ExtraColumns.reject) -> None:
        self.unseen_categories = UnseenCategories(unseen_categories)
        self.extra_columns = ExtraColumns(extra_columns)
        conform = next((s for s in model.plan.steps if isinstance(s, Conform)), None)
        roles = dict(conform.roles) if conform else {}
        self.features: list[str] = list(model.feature_names)
        #: names under which a record's objects are flattened (the model's nested JSON columns)
        self.nested = nested_prefixes(self.features)
        self.roles: dict[str, str] = {c: roles.get(c, "numeric") for c in self.features}
        self.datetime_formats: dict[str, str | None] = dict(conform.datetime_formats) if conform else {}
        #: a number column's texts that training read as missing, read so here too (``Conform.placeholders``)
        self.placeholders: dict[str, frozenset[str]] = {c: conform.placeholders_of(c) for c in self.features} \
            if conform else {}
        self.known = {c.name for c in model.schema.columns} | {model.target}
        #: categories seen in training, for the columns whose schema kept every one of them
        self.categories: dict[str, frozenset[str]] = {}
        for name in self.features:
            col = schema_column(model, name)
            if col is not None and self.roles[name] == "categorical" and col.categories is not None \
                    and len(col.categories) >= col.n_unique:
                self.categories[name] = frozenset(col.categories)
        self.twins = {name: digit_twins(known) for name, known in self.categories.items()}
        #: each number column's training range, and the bounds beyond which a value is far outside it
        self.ranges = training_ranges(model, self.roles)
        self._far = {name: far_bounds(*span) for name, span in self.ranges.items()}
        self._dates = DateNotes(model)  # each date column's training range: dates far outside it are noted too
        self._check: dict[str, Callable[[str, Sequence[Any], Validated, bool], Any]] = {
            "numeric": self._numeric, "boolean": self._boolean, "categorical": self._categorical,
            "datetime": self._datetime, "text": self._text, "image": self._image,
        }

    def validate(self, columns: Mapping[str, Sequence[Any]], n_rows: int, *, nan_is_missing: bool = False) -> Validated:
        """Typed feature columns from raw ``columns`` (each ``n_rows`` long), or a SchemaError naming the fault.

        ``nan_is_missing`` reads NaN as a missing value instead of refusing it: MLflow's clients send pandas
        frames, where NaN is how a missing value is written."""
        absent: dict[str, str] = getattr(columns, "absent", None) or {}  # records lacking a column (protocols.py)
        if self.nested and not self.nested.isdisjoint(columns):  # objects, their JSON text or null: as records are read
            columns = flat_columns(columns, self.nested)
        unknown = [c for c in columns if c not in self.known]
        if unknown and len(unknown) == len(columns) and (n_rows == 0 or self.extra_columns == ExtraColumns.reject):
            named = ", ".join(repr(c) for c in unknown[:6]) + (", ..." if len(unknown) > 6 else "")
            raise SchemaError(f"None of the columns the request names ({named}) is one the model knows: its input "
                              f"columns are {self._names()} (a CSV body starts with a header row naming them).")
        if n_rows == 0:
            raise SchemaError("The request has no rows: send at least one.")
        if unknown and self.extra_columns == ExtraColumns.reject:
            raise SchemaError(f"Column {shown(unknown[0])} is not one the model knows"
                              f"{f' (nor {len(unknown) - 1} more)' if len(unknown) > 1 else ''}; "
                              f"its input columns are {self._names()}.")
        missing = [c for c in self.features if c not in columns]
        if missing:
            raise SchemaError(f"Column {missing[0]!r} is missing"
                              f"{f' (and {len(missing) - 1} more)' if len(missing) > 1 else ''}: "
                              f"the model needs {self._names()}.")
        lacking = [c for c in (*self.features, *self.nested) if c in absent] if absent else []
        if lacking:
            head = lacking[0].split(".", 1)[0]  # a nested key as the name the record lacks ('meta' for 'meta.a')
            raise SchemaError(f"{absent[lacking[0]]} has no column {head if head in self.nested else lacking[0]!r}, "
                              "which other records have: send every column in every record, with null for a missing "
                              "value.")
        notes = Validated({}, n_rows)
        notes.columns = {name: self._check[self.roles[name]](name, columns[name], notes, nan_is_missing)
                         for name in self.features}
        return notes

    def _names(self) -> str:
        return ", ".join(self.features[:12]) + (", ..." if len(self.features) > 12 else "")

    # -- one function per role; each returns the typed column ------------------------------------------------
    @staticmethod
    def _not_finite(name: str, i: int, v: float) -> SchemaError:
        what = "NaN" if v != v else "infinite"
        return SchemaError(f"Column {name!r}, row {i}: the value is {what}; send null for a missing value.")

    def _numeric(self, name: str, values: Sequence[Any], notes: Validated, nan_ok: bool) -> np.ndarray:
        out = np.empty(len(values), dtype=np.float64)
        clock = self.datetime_formats.get(name) == TIME_OF_DAY  # times of day: "08:30:00" or its seconds, 30600
        for i, v in enumerate(values):
            t = type(v)
            if t is float:
                if not math.isfinite(v) and not (nan_ok and v != v):
                    raise self._not_finite(name, i, v)
                out[i] = v
            elif t is int:
                try:
                    out[i] = float(v)
                except OverflowError:
                    raise SchemaError(f"Column {name!r}, row {i}: {str(v)[:30]}... is too large a number.") from None
            elif v is None:
                out[i] = _NAN
            elif t is str:
                try:  # as the cleaning plan reads it: "NA" and the column's placeholders are missing
                    seconds = clock_seconds(v) if clock else None
                    f = number_from_text(v, self.placeholders.get(name, ())) if seconds is None else seconds
                except ValueError:
                    need = "a time of day (08:30:00) or seconds since midnight" if clock else "a number"
                    raise SchemaError(f"Column {name!r}, row {i}: must be {need}; got {_kind(v)}.") from None
                if f != f:
                    out[i] = _NAN
                    continue
                if not math.isfinite(f):
                    raise self._not_finite(name, i, f)
                out[i] = f
            else:
                need = "a time of day (08:30:00) or seconds since midnight" if clock else "a number"
                raise SchemaError(f"Column {name!r}, row {i}: must be {need}; got {_kind(v)}.")
        bounds = self._far.get(name)
        if bounds is not None:
            self._note_far(name, out, bounds, notes)
        return out

    def _note_far(self, name: str, out: np.ndarray, bounds: tuple[float, float], notes: Validated) -> None:
        """Note the rows of a number column far outside its training range (NaN is not)."""
        lo, hi = bounds
        if len(out) <= 16:  # a few rows: plain comparisons cost less than NumPy's calls
            rows: Any = [i for i, x in enumerate(out.tolist()) if x < lo or x > hi]
        else:
            rows = np.flatnonzero((out < lo) | (out > hi))
        if len(rows):
            first = int(rows[0])
            notes.far[name] = len(rows)
            notes.warnings.append(far_note(name, len(rows), self.ranges[name], float(out[first]), row=first))

    def _boolean(self, name: str, values: Sequence[Any], notes: Validated, nan_ok: bool) -> np.ndarray:
        out = np.empty(len(values), dtype=np.float64)
        for i, v in enumerate(values):
            t = type(v)
            if t is bool:
                out[i] = 1.0 if v else 0.0
            elif v is None or (nan_ok and t is float and v != v):
                out[i] = _NAN
            elif t is int or t is float or t is str:
                if t is float and not math.isfinite(v):
                    raise self._not_finite(name, i, v)
                b = bool_value(v)  # the cleaning plan's reading, so the server accepts what training accepted
                if b is None:
                    raise SchemaError(f"Column {name!r}, row {i}: must be true or false; got {_kind(v)}.")
                out[i] = b
            else:
                raise SchemaError(f"Column {name!r}, row {i}: must be true or false; got {_kind(v)}.")
        return out

    def _categorical(self, name: str, values: Sequence[Any], notes: Validated, nan_ok: bool) -> list[str | None]:
        out: list[str | None] = []
        known = self.categories.get(name)
        unseen: tuple[int, str] | None = None
        n_unseen = 0
        for i, v in enumerate(values):
            t = type(v)
            if t is str:
                k: str | None = v.strip() or None
            elif v is None:
                k = None
            elif t is int:
                k = str(v)
            elif t is float:
                if not math.isfinite(v):
                    if nan_ok and v != v:
                        out.append(None)
                        continue
                    raise self._not_finite(name, i, v)
                k = str(int(v)) if v.is_integer() else repr(v)
            elif t is bool:
                k = "true" if v else "false"
            elif t is list:  # a list of tags, as the readers write one: its JSON text
                k = _list_text(name, i, v)
            else:
                raise SchemaError(f"Column {name!r}, row {i}: must be a category (text or a number); got {_kind(v)}.")
            if known is not None and k is not None and k not in known:
                twin = twin_key(k, self.twins[name])  # the same code with or without leading zeros
                if twin is not None:
                    k = twin
                else:
                    n_unseen += 1
                    if unseen is None:
                        unseen = (i, k)
            out.append(k)
        if unseen is not None:
            self._unseen(name, unseen, n_unseen, known, notes)
        return out

    def _unseen(self, name: str, first: tuple[int, str], n: int, known: frozenset[str] | None,
                notes: Validated) -> None:
        """Note (or refuse, by policy) a column's categories the model never saw: ``n`` rows, the first ``first``."""
        i, k = first
        notes.unseen[name] = n
        if self.unseen_categories == UnseenCategories.accept:
            return
        if self.unseen_categories == UnseenCategories.reject:
            seen = sorted(known or ())
            listed = ", ".join(seen[:10]) + (", ..." if len(seen) > 10 else "")
            raise SchemaError(f"Column {name!r}, row {i}: the model never saw the category {shown(k)}; "
                              f"it knows {listed}.")
        if n == 1:
            notes.warnings.append(f"Column {name!r}, row {i}: the model never saw the category {shown(k)}; "
                                  "it was predicted as a rare category.")
        else:
            notes.warnings.append(f"Column {name!r}: {rows_holding(n, 'a category', 'categories')} the model never "
                                  f"saw (the first, row {i}: {shown(k)}); each was predicted as a rare category.")

    def _datetime(self, name: str, values: Sequence[Any], notes: Validated, nan_ok: bool) -> list[str | None]:
        fmt = self.datetime_formats.get(name)
        out: list[str | None] = []
        for i, v in enumerate(values):
            if v is None or (nan_ok and type(v) is float and v != v):
                out.append(None)
                continue
            if type(v) is int or type(v) is float:  # 20240131 (ISO 8601's basic form) read as a number, as the plan
                # reads it (20240131.0 too: a CSV column of them with an empty cell is read as decimals)
                v = basic_date_text(v) or v
            if type(v) is not str:
                raise SchemaError(f"Column {name!r}, row {i}: must be a date written as text; got {_kind(v)}.")
            s = v.strip()
            if s.lower() in MISSING_TOKENS:  # "NA", "null": missing, as the cleaning plan reads a date column
                s = ""
            elif s[:1].isdigit():  # "1704067200" as the number is read: digit text by the plan's one rule
                s = basic_date_text(s) or s
            if s and not _parses(s, fmt):
                like = f" like {datetime(2024, 1, 31).strftime(fmt)} or in ISO 8601" if fmt and fmt.startswith("%") else ""
                raise SchemaError(f"Column {name!r}, row {i}: must be a date{like}, between {DATETIME_MIN.year} and "
                                  f"{DATETIME_MAX.year}; got {_kind(v)}.")
            out.append(s or None)
        if name in self._dates.spans and (far := self._dates.far_in(name, out))[0].size:
            notes.far[name] = len(far[0])
            notes.warnings.append(self._dates.note(name, len(far[0]), float(far[1][far[0][0]]), row=int(far[0][0])))
        return out

    def _text(self, name: str, values: Sequence[Any], notes: Validated, nan_ok: bool) -> list[str | None]:
        out: list[str | None] = []
        for i, v in enumerate(values):
            t = type(v)
            if t is str or v is None:
                out.append(v)
            elif t is int or t is bool:
                out.append(str(v))
            elif t is float:
                if not math.isfinite(v):
                    if nan_ok and v != v:
                        out.append(None)
                        continue
                    raise self._not_finite(name, i, v)
                out.append(str(v))
            elif t is list:  # as the readers write a list: its JSON text
                out.append(_list_text(name, i, v))
            else:
                raise SchemaError(f"Column {name!r}, row {i}: must be text; got {_kind(v)}.")
        return out


    def _image(self, name: str, values: Sequence[Any], notes: Validated, nan_ok: bool) -> list[bytes | None]:
        """Pictures as base64 text (or a ``data:image/...;base64,`` URI) in JSON, raw bytes in OIP's binary
        BYTES; the server reads no file paths. Decoding waits for the model's cleaning plan, which names a
        picture it cannot read by row."""
        out: list[bytes | None] = []
        for i, v in enumerate(values):
            t = type(v)
            if v is None or (nan_ok and t is float and v != v) or (t is str and not v.strip()):
                out.append(None)
                continue
            if t is not str and t is not bytes:
                raise SchemaError(f"Column {name!r}, row {i}: must be a picture as base64 text; got {_kind(v)}.")
            try:
                out.append(image_bytes(v, paths=False))
            except ImageProblem as e:
                raw = v.encode("utf-8") if t is str else b""
                if not is_image_bytes(raw):  # (a picture whose bytes happen to read as UTF-8 came as text)
                    raise SchemaError(f"Column {name!r}, row {i}: {e}.") from None
                out.append(raw)
        return out


def _list_text(name: str, i: int, v: list[Any]) -> str:
    """A list's JSON text, as the readers write one; a list nested too deeply to write is refused by name."""
    try:
        return str(plain_cell(v))
    except DataError:
        raise SchemaError(f"Column {name!r}, row {i}: must be text, a number or a list of them; got a list "
                          "nested too deeply to read.") from None


def _parses(s: str, fmt: str | None) -> bool:
    """Whether ``s`` reads as a date the way the cleaning plan will read it, inside the days pandas can hold
    (``DATETIME_MIN`` to ``DATETIME_MAX``: 1677-09-22 to 2262-04-11; a date beyond them cannot reach the model).
    A time of day alone is no date: pandas would complete it with today's."""
    if dateless(s):
        return False
    try:
        if fmt and fmt.startswith("%"):
            return _in_range(strptime(s, fmt))
    except ValueError:
        pass  # the plan reads ISO 8601 where the training's format does not take a value
    try:
        return _in_range(datetime.fromisoformat(s))
    except ValueError:
        if fmt and fmt.startswith("%"):
            return False
    import pandas as pd

    try:
        ts = pd.Timestamp(s)
    except (ValueError, TypeError, OverflowError):
        return False
    return ts is not pd.NaT


def _in_range(d: datetime) -> bool:
    return _MIN_DATE <= d.replace(tzinfo=None) <= _MAX_DATE


_MIN_DATE = DATETIME_MIN.to_pydatetime()
_MAX_DATE = DATETIME_MAX.to_pydatetime()
