"""What rows hold that a model never learnt from, in the one set of words every door says it in: the server's
``warnings`` (``serving.validation.RequestValidator``), ``mlengineer predict``'s notes (``serving.batch.InputNotes``,
Spark's too) and the Python face's ``InputWarning`` (``RecordNotes``, for ``Model.predict``).

Numbers far outside a column's training range share one rule here (``far_bounds``).
A number is far when it lies beyond the schema's ``min`` or ``max`` by more than the distance between them
(the range's width; for a column that held one value, that value's size, or 1): an Excel percent cell learnt
as 0.181 sent as a CSV's 18.1, grams where kilograms were learnt. Numbers merely beyond the range are not:
a model meets some every day.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError
from .rowpath import plan_roles

__all__ = ["MOST_LINES", "DateNotes", "RecordNotes", "far_bounds", "far_date_note", "far_note", "new_tally", "note_lines", "number_text", "rows_holding",
           "shown", "some_of", "training_ranges", "unknown_columns_note"]


def training_ranges(model: Any, roles: Mapping[str, str]) -> dict[str, tuple[float, float]]:
    """The training ``(min, max)`` of each number column of ``roles`` whose schema records both."""
    by_name = {c.name: c for c in model.schema.columns}
    out = {}
    for name, role in roles.items():
        col = by_name.get(name)
        if role == "numeric" and col is not None and all(
                isinstance(b, int | float) and not isinstance(b, bool) for b in (col.min, col.max)):
            out[name] = (float(col.min), float(col.max))
    return out


def far_bounds(low: float, high: float) -> tuple[float, float]:
    """The numbers below the first or above the second are far outside the training range ``low`` to ``high``."""
    width = high - low or max(abs(low), abs(high), 1.0)
    return low - width, high + width


def far_note(name: str, rows: int, span: tuple[float, float], example: float, *, row: int | None = None) -> str:
    """The line saying a column's numbers are far outside its training range ``span`` (``row``: where the
    example is, in a request)."""
    low, high = span
    at = f" in row {row}" if row is not None else ""
    return (f"Column {name!r}: {rows_holding(rows, 'a number', 'numbers')} far outside the training range "
            f"({number_text(low)} to {number_text(high)}; e.g. {number_text(example)}{at}): check their unit or scale.")


def rows_holding(n: int, one: str, many: str) -> str:
    """``1 row holds a number``, ``1,200 rows hold numbers``."""
    return f"1 row holds {one}" if n == 1 else f"{n:,} rows hold {many}"


def number_text(v: float) -> str:
    """A number as a note says it: ``12,345``, ``0.1812``, and ``1e+308`` rather than 309 digits."""
    return f"{v:,.0f}" if 1e4 <= abs(v) < 1e15 else f"{v:.4g}"


def some_of(items: Sequence[str], most: int = 1, sep: str = "; ") -> str:
    """The first ``most`` of ``items`` joined by ``sep``, then how many more there are: ``a; b (and 83 more)``."""
    more = f" (and {len(items) - most:,} more)" if len(items) > most else ""
    return sep.join(items[:most]) + more

#: the most column lines a note says; the rest are counted in one more
MOST_LINES = 4


def note_lines(*, unseen: Mapping[str, tuple[int, Any]], far: Mapping[str, tuple[int, float]],
               spans: Mapping[str, tuple[float, float]], read_as: Mapping[str, str],
               unknown: list[str] | None = None) -> list[str]:
    """What rows held that the model never learnt from, one line a column (at most ``MOST_LINES``, then one
    counting the rest): the ``unknown`` columns (``unknown_columns_note``), each column's rows holding a category
    it never saw (``unseen``: rows and an example; ``read_as``: what the encoder reads it as, rare or missing)
    and each column's numbers far outside its training range (``far``: rows and an example; ``spans``: the
    range). None when nothing was found."""
    out = [line] if unknown and (line := unknown_columns_note(unknown)) else []
    for name, (rows, example) in unseen.items():
        out.append(f"Column {name!r}: {rows_holding(rows, 'a category', 'categories')} the model never saw "
                   f"(e.g. {shown(example)}): read as {read_as[name]}.")
    for name, (rows, value) in far.items():
        out.append(far_note(name, rows, spans[name], value))
    if len(out) > MOST_LINES:
        rest = len(out) - MOST_LINES + 1
        out = out[:MOST_LINES - 1] + [f"... and {rest} more columns hold values the model never saw or far "
                                      "outside its training range."]
    return out


def unknown_columns_note(unknown: list[str]) -> str | None:
    """One line naming the columns the model has never heard of (the server refuses a request holding them),
    or None where there are none."""
    if not unknown:
        return None
    more = f" (nor {len(unknown) - 1} more: {', '.join(unknown[1:6])}{', ...' if len(unknown) > 6 else ''})" \
        if len(unknown) > 1 else ""
    return (f"Column {unknown[0]!r} is not one the model knows{more}: predict leaves "
            f"{'them' if len(unknown) > 1 else 'it'} out (the server refuses such a request).")


def shown(value: Any, limit: int = 60) -> str:
    """A value as a note or an answer may echo it: its repr, cut to about ``limit`` characters with an ellipsis
    and its length where it is longer (a 100,000-character category would otherwise make a 100 KB answer)."""
    text = value if isinstance(value, str) else repr(value)
    if len(text) <= limit:
        return repr(value)
    return f"{text[:limit - 1] + '…'!r} ({len(text):,} characters)"


class RecordNotes:
    """What rows given to ``Model.predict`` hold that ``model`` never learnt from (the Python face's
    ``InputWarning``), counted as ``mlengineer predict`` counts them and said in its words (``note_lines``): a
    category it never saw, a number far outside the training range, a column it does not know (left out).
    Built once a model; ``plain`` and ``of_record`` are the one-record path's check, a membership test or two a
    column; ``of_frame`` reads a frame's columns once each."""

    def __init__(self, model: Any) -> None:
        from ..data.values import digit_twins
        from ..features.encoder import RARE

        roles = plan_roles(model.plan) or {}
        by_name = {c.name: c for c in model.schema.columns}
        self.known = frozenset(by_name) | {model.target} | set(getattr(model, "nested", ()))
        self.categories: dict[str, frozenset[str]] = {}
        self.far: dict[str, tuple[float, float, float, float]] = {}  # column: far below, far above, min, max
        for name in model.plan.feature_columns:
            col = by_name.get(name)
            role = roles.get(name, "numeric")
            if col is None:
                continue
            if role == "categorical" and col.categories is not None and len(col.categories) >= col.n_unique:
                self.categories[name] = frozenset(col.categories)
            elif role == "numeric" and all(type(b) in (int, float) for b in (col.min, col.max)):
                low, high = float(col.min), float(col.max)
                self.far[name] = (*far_bounds(low, high), low, high)
        self.twins = {name: digit_twins(known) for name, known in self.categories.items()}
        self._categories = tuple(self.categories.items())
        self._bounds = tuple((name, lo, hi) for name, (lo, hi, _, _) in self.far.items())
        cats = getattr(model.encoder, "categories_", {})
        self.read_as = {c: "rare" if RARE in cats.get(c, [RARE]) else "missing" for c in self.categories}

    def plain(self, record: Mapping[str, Any]) -> bool:
        """Whether ``record`` surely holds nothing to say: its keys known, its categories seen as written, its
        numbers inside the far bounds (a few hundred nanoseconds; ``of_record`` looks closer where not)."""
        if not self.known.issuperset(record):
            return False
        get = record.get
        for name, known in self._categories:
            v = get(name)
            if v is not None and (type(v) is not str or v not in known):
                return False
        for name, lo, hi in self._bounds:
            v = get(name)
            if (type(v) is float or type(v) is int) and not lo <= v <= hi:
                return False
        return True

    def of_record(self, record: Mapping[str, Any], tally: dict[str, dict[str, list[Any]]]) -> None:
        """Add what one record holds to ``tally`` (``of_frame``'s shape)."""
        for k in record:
            if k not in self.known:
                tally["unknown"].setdefault(str(k), [1, None])
        for name, known in self.categories.items():
            v = record.get(name)
            if v is not None and not (type(v) is str and v in known):
                key = self._unseen_key(name, v)
                if key is not None:
                    _count(tally["unseen"], name, 1, key)
        for name, (lo, hi, _, _) in self.far.items():
            v = record.get(name)
            if (type(v) is float or type(v) is int) and (v < lo or v > hi):
                _count(tally["far"], name, 1, float(v))

    def of_frame(self, df: Any) -> dict[str, dict[str, list[Any]]]:
        """What the rows of the DataFrame ``df`` hold: per kind (unknown, unseen, far), column -> [rows, example].
        Only the columns checked are read, each once as an array (categories: one set difference), which keeps
        a small frame's check to tens of microseconds."""
        tally = new_tally()
        present = set(df.columns)
        if not self.known.issuperset(present):
            for k in df.columns:
                if k not in self.known:
                    tally["unknown"].setdefault(str(k), [1, None])
        for name, known in self._categories:
            s = df[name] if name in present else None
            if not isinstance(s, pd.Series):
                continue
            values = s.to_numpy().tolist()
            try:
                odd: Any = set(values) - known
            except TypeError:  # lists (of tags), which no hash takes: each read
                odd = values
            new = [k for k in map(partial(self._unseen_key, name), odd) if k is not None]
            if new:  # now each row (rarely): how many hold one
                _count(tally["unseen"], name, sum(self._unseen_key(name, v) is not None for v in values), new[0])
        for name, lo, hi in self._bounds:
            s = df[name] if name in present else None
            if not isinstance(s, pd.Series) or s.dtype.kind in "bM":
                continue  # true/false, dates: not numbers a unit can be wrong in
            v = s.to_numpy()
            if v.dtype.kind not in "iuf":  # durations as the plan reads them, in seconds; text of numbers as numbers
                v = (s.dt.total_seconds() if s.dtype.kind == "m" else pd.to_numeric(s, errors="coerce")).to_numpy()
            v = v.astype(float, copy=False)
            far = (v < lo) | (v > hi)
            if far.any():
                _count(tally["far"], name, int(far.sum()), float(v[far][0]))
        return tally

    def _unseen_key(self, name: str, v: Any) -> str | None:
        """The category key of ``v`` (as the server reads one) where the model never saw it, else None."""
        from ..data.values import twin_key

        if v is None or v is pd.NA or v is pd.NaT:
            return None
        if isinstance(v, float):
            if v != v:
                return None
            k = str(int(v)) if v.is_integer() else repr(v)
        elif isinstance(v, bool):
            k = "true" if v else "false"
        elif isinstance(v, list | tuple | set | dict | np.ndarray):  # a list of tags is read as its JSON text
            from ..data.jsontable import plain_cell

            try:
                k = str(plain_cell(v))
            except DataError:  # nested too deeply to read: predicting has refused it already
                return None
        else:
            k = str(v).strip()
        if not k or k in self.categories[name] or twin_key(k, self.twins[name]) is not None:
            return None
        return k

    def lines(self, tally: dict[str, dict[str, list[Any]]]) -> list[str]:
        """One line a column, as ``mlengineer predict`` says them (``note_lines``); none when nothing was found."""
        return note_lines(unknown=list(tally["unknown"]),
                          unseen={name: (rows, example) for name, (rows, example) in tally["unseen"].items()},
                          far={name: (rows, value) for name, (rows, value) in tally["far"].items()},
                          spans={name: bounds[2:] for name, bounds in self.far.items()}, read_as=self.read_as)


def new_tally() -> dict[str, dict[str, list[Any]]]:
    return {"unknown": {}, "unseen": {}, "far": {}}


def _count(kind: dict[str, list[Any]], name: str, rows: int, example: Any) -> None:
    seen = kind.setdefault(name, [0, example])
    seen[0] += rows


#: days since 1970 within which a schema's recorded date range is numbers read as nanoseconds (one minute)
NANOSECOND_MISREAD = 60 / 86_400


class DateNotes:
    """Dates far outside a date column's training range (``far_bounds``' rule on days: before the first date or
    after the last by more than the time between them, as 1850 for a column of 2022 to 2024), counted over the
    rows given (``add``) and said in ``far_note``'s words (``lines``). The dates are read as the cleaning plan
    reads them; one that cannot be read is left to predicting, which names it."""

    def __init__(self, model: Any) -> None:
        roles = plan_roles(model.plan) or {}
        by_name = {c.name: c for c in model.schema.columns}
        #: column: (its format, first and last training dates as days since 1970)
        self.spans: dict[str, tuple[str | None, float, float]] = {}
        for name in model.plan.feature_columns:
            col = by_name.get(name)
            if roles.get(name) == "datetime" and col is not None and col.min is not None and col.max is not None:
                low, high = _days(np.array([col.min, col.max], dtype=object), None)
                # a range within 1970's first minute is numbers (20240101, Unix seconds) an older mlengineer read as
                # nanoseconds into the schema: no range to measure against
                if low == low and high == high and not (abs(low) < NANOSECOND_MISREAD and abs(high) < NANOSECOND_MISREAD):
                    self.spans[name] = (col.datetime_format, float(low), float(high))
        self.far: dict[str, tuple[int, float]] = {}  # column: (rows, an example in days)

    def far_in(self, name: str, values: Any) -> tuple[np.ndarray, np.ndarray]:
        """The positions of the far dates among a date column's ``values`` (as a table or a request holds
        them), and all the values as days since 1970."""
        fmt, low, high = self.spans[name]
        days = _days(np.asarray(values, dtype=object) if not isinstance(values, np.ndarray) else values, fmt)
        lo, hi = far_bounds(low, high)
        return np.flatnonzero((days < lo) | (days > hi)), days

    def note(self, name: str, rows: int, example: float, *, row: int | None = None) -> str:
        """``far_date_note`` for the column ``name``: ``rows`` far dates, ``example`` one (days since 1970)."""
        return far_date_note(name, rows, self.spans[name][1:], example, row=row)

    def add(self, rows: Any) -> None:
        """Count the far dates of ``rows``: a DataFrame, one record or a list of records."""
        for name in self.spans:
            if isinstance(rows, pd.DataFrame):
                if name not in rows.columns or not isinstance(rows[name], pd.Series):
                    continue
                values = rows[name].to_numpy(dtype=object, na_value=None) if rows[name].dtype.kind != "M" \
                    else rows[name].to_numpy()
            else:
                records = [rows] if isinstance(rows, Mapping) else [r for r in rows if isinstance(r, Mapping)]
                values = np.array([r.get(name) for r in records if name in r], dtype=object)
            if not len(values):
                continue
            far, days = self.far_in(name, values)
            if len(far):
                count, example = self.far.get(name, (0, float(days[far[0]])))
                self.far[name] = (count + len(far), example)

    def lines(self) -> list[str]:
        """One line a column holding far dates; none where none does."""
        return [self.note(name, rows, example) for name, (rows, example) in self.far.items()]


def far_date_note(name: str, rows: int, span: tuple[float, float], example: float, *, row: int | None = None) -> str:
    """``far_note``'s line for a date column: the training range ``span`` and the ``example``, days since 1970,
    written as dates (``row``: where the example is, in a request)."""
    low, high = (_date_text(d) for d in span)
    at = f" in row {row}" if row is not None else ""
    return (f"Column {name!r}: {rows_holding(rows, 'a date', 'dates')} far outside the training range "
            f"({low} to {high}; e.g. {_date_text(example)}{at}): check their year and format.")


def _days(values: np.ndarray, fmt: str | None) -> np.ndarray:
    """Dates as the cleaning plan reads them, as days since 1970 (NaN where missing or unreadable)."""
    from ..data.conform import conform_values

    parsed = conform_values(values, "datetime", fmt).astype("datetime64[ns]")
    days = parsed.astype(np.int64).astype(np.float64) / 86_400e9
    days[np.isnat(parsed)] = np.nan
    return days


def _date_text(days: float) -> str:
    """Days since 1970 as the date they fall on, with the time of day where it is not midnight."""
    moment = pd.Timestamp(0) + pd.Timedelta(days=days)
    return str(moment.date()) if moment == moment.normalize() else moment.isoformat(timespec="seconds")
