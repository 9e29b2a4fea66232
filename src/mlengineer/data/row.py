"""The cleaning plan compiled for one record: a converter per column, decided once, applied to a dict.

    clean = compile_row_cleaner(plan)      # None when a step or a column's role has no one-row form
    values = clean(record)                 # {column: float | str | None | datetime64}, or SchemaError

It gives exactly what ``CleaningPlan.apply_arrays`` gives for a batch of one record (the same per-value
conversions of ``clean.py``, the same errors in the same order), without building arrays: what is left for
one row is a dict lookup and a function call per column. Text and picture columns are not compiled.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from .clean import CleaningPlan, Conform, SelectColumns
from .clock import TIME_OF_DAY
from .conform import bool_one, conform_values, float_one
from .values import category_key

__all__ = ["ROW_ROLES", "RowCleaner", "compile_row_cleaner"]

#: the roles whose values the one-row path converts; a plan with any other falls back to arrays
ROW_ROLES = frozenset({"numeric", "boolean", "categorical", "datetime"})

RowCleaner = Callable[[Mapping[str, Any]], dict[str, Any]]


def compile_row_cleaner(plan: CleaningPlan) -> RowCleaner | None:
    """``plan``'s prediction-time steps as one function of a record, or None when it has no one-row form."""
    keep: list[str] | None = None
    converters: list[tuple[str, Callable[[Any], Any]]] = []
    for step in plan.steps:
        if step.training_only:
            continue
        if isinstance(step, SelectColumns) and keep is None and not converters:
            keep = list(step.keep)
        elif isinstance(step, Conform) and not converters:
            for name, role in step.roles.items():
                if role not in ROW_ROLES:
                    return None
                converters.append((name, _converter(name, role, step.datetime_formats.get(name),
                                                    step.placeholders_of(name))))
        else:
            return None
    if keep is None or {n for n, _ in converters} - set(keep):
        return None
    needed = keep
    rest = [c for c in keep if c not in {n for n, _ in converters}]

    def clean(record: Mapping[str, Any]) -> dict[str, Any]:
        for c in needed:
            if c not in record:
                CleaningPlan._check_columns(record, needed)  # the batch path's message, naming every missing one
        out = {name: convert(record[name]) for name, convert in converters}
        for c in rest:
            out[c] = record[c]
        return out

    return clean


def _converter(name: str, role: str, fmt: str | None, placeholders: frozenset[str]) -> Callable[[Any], Any]:
    if role == "numeric":
        clock = fmt == TIME_OF_DAY  # a column of times of day: 08:30:00 read as its seconds since midnight
        return lambda v: float_one(v, name, True, placeholders, clock)
    if role == "boolean":
        return lambda v: bool_one(v, name, True)
    if role == "categorical":
        return category_key
    return lambda v: _date(v, name, fmt)


def _date(v: Any, name: str, fmt: str | None) -> np.datetime64:
    """One date as ``conform_values`` reads it at prediction time (it is that function, on one value)."""
    one = np.empty(1, dtype=object)
    one[0] = v
    return conform_values(one, "datetime", fmt, name=name, strict=True).astype("datetime64[ns]")[0]
