"""Is the live data sound? Checks that need no outcomes and no statistics, only the training table's facts:

- categories the model never saw in training (or saw too rarely to learn from);
- numbers and dates outside the range seen in training;
- values that cannot be read as their column's type (text in a column of numbers): a schema mismatch;
- columns much more often missing than in training; one missing in most rows (a broken feed, a renamed field)
  is a data problem, listed first and flagged ``mostly_missing``;
- columns the model does not know (in a table of new rows).

Each finding is a short phrase for the summary and a row of the report's table.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .columns import Prepared

__all__ = ["MOSTLY_MISSING", "check_quality", "mostly_missing", "mostly_missing_phrase"]

#: a column missing this many points more often than in training is reported
MISSING_POINTS = 0.05
#: values outside the training range in at least this share of rows are reported
OUT_OF_RANGE_SHARE = 0.01
#: a column missing in at least this share of live rows, and in at least half that share more than in training,
#: has (nearly) gone: a data problem, not a change of the world
MOSTLY_MISSING = 0.5


def _known_categories(model: Any, column: str, reference: Prepared) -> set[str]:
    """Every category training knew: the encoder's, the schema's most frequent ones and the reference's."""
    from ..features.encoder import RARE

    known = {c for c in getattr(model.encoder, "categories_", {}).get(column, []) if c != RARE}
    col = model.schema[column]
    known |= set(col.categories or [])
    known |= set(reference.categories)
    return known


def _range(model: Any, column: str, reference: Prepared) -> tuple[float, float] | None:
    """The training range of a number or date column (dates in days since 1970, as ``Prepared`` holds them)."""
    col = model.schema[column]
    if reference.role == "boolean":
        return None
    if reference.role == "numeric" and isinstance(col.min, int | float) and isinstance(col.max, int | float):
        return float(col.min), float(col.max)
    values = reference.present()
    return (float(values.min()), float(values.max())) if len(values) else None


def _column(model: Any, ref: Prepared, cur: Prepared, missing_training: float) -> dict[str, Any]:
    n = max(len(cur), 1)
    out: dict[str, Any] = {"column": cur.name, "kind": cur.kind, "missing_training": missing_training,
                           "missing_current": float(cur.missing.sum() / n), "unreadable": cur.unreadable,
                           "unreadable_example": None if cur.unreadable_example is None else str(
                               cur.unreadable_example)[:60]}
    out["mostly_missing"] = mostly_missing(out["missing_current"], missing_training)
    if cur.kind == "categorical":
        known = _known_categories(model, cur.name, ref)
        counts = np.bincount(cur.values[cur.values >= 0], minlength=len(cur.categories))
        new = [(cur.categories[i], int(c)) for i, c in enumerate(counts) if c and cur.categories[i] not in known]
        new.sort(key=lambda t: -t[1])
        out["new_categories"] = {"share": sum(c for _, c in new) / n, "count": len(new),
                                 "examples": [v for v, _ in new[:5]]}
    elif cur.kind == "numeric":
        bounds = _range(model, cur.name, ref)
        if bounds is not None:
            v = cur.present()
            out["out_of_range"] = {"min": bounds[0], "max": bounds[1], "below": float(np.sum(v < bounds[0]) / n),
                                   "above": float(np.sum(v > bounds[1]) / n)}
    return out


def _problems(col: dict[str, Any], fmt: Any) -> list[str]:
    name, found = col["column"], []
    if col["unreadable"] and not col["mostly_missing"]:  # else said with the missing values
        found.append(f"{name}: {col['unreadable']:,} values cannot be read as its type "
                     f"(for example {col['unreadable_example']!r}); they were treated as missing")
    new = col.get("new_categories")
    if new and new["share"] > 0:
        found.append(f"{name}: {new['share']:.1%} of rows hold categories never seen in training "
                     f"({', '.join(map(repr, new['examples'][:3]))})")
    rng = col.get("out_of_range")
    if rng and rng["below"] + rng["above"] >= OUT_OF_RANGE_SHARE:
        side = "above" if rng["above"] >= rng["below"] else "below"
        found.append(f"{name}: {rng['below'] + rng['above']:.1%} of values lie outside the training range "
                     f"({fmt(name, rng['min'])} to {fmt(name, rng['max'])}), mostly {side} it")
    if col["mostly_missing"]:
        found.append(mostly_missing_phrase(col))
    elif col["missing_current"] - col["missing_training"] >= MISSING_POINTS:
        found.append(f"{name}: missing in {col['missing_current']:.0%} of rows, against "
                     f"{col['missing_training']:.0%} in training")
    return found


def mostly_missing(current: float, training: float) -> bool:
    """Whether a column missing in the share ``current`` of live rows (``training`` in training) has
    (nearly) gone."""
    return current >= MOSTLY_MISSING and current - training >= MOSTLY_MISSING / 2


def mostly_missing_phrase(col: dict[str, Any]) -> str:
    """A (nearly) gone column in words: the data problem, and what to check."""
    unreadable = (f" ({col['unreadable']:,} of them unreadable as its type, for example "
                  f"{col['unreadable_example']!r})" if col["unreadable"] else "")
    return (f"missing values in column {col['column']!r}: {col['missing_current']:.0%} of rows against "
            f"{col['missing_training']:.0%} in training{unreadable}; a broken feed or a renamed field? The model's "
            "answers for those rows rest on values it never learnt from")


def check_quality(model: Any, reference: dict[str, Prepared], current: dict[str, Prepared], *,
                  unknown_columns: list[str] | None = None) -> dict[str, Any]:
    """The quality checks of the live columns ``current`` against the reference's and the schema's facts."""
    columns = []
    problems: list[str] = []
    for name, cur in current.items():
        ref = reference[name]
        missing_training = float(model.schema[name].missing_fraction or ref.missing.mean())
        col = _column(model, ref, cur, missing_training)
        columns.append(col)
        problems += _problems(col, lambda c, v: _format(reference[c], v))
    # data problems first: a column that has gone explains much of what the other findings show
    gone = {mostly_missing_phrase(c) for c in columns if c["mostly_missing"]}
    problems = [p for p in problems if p in gone] + [p for p in problems if p not in gone]
    unknown = list(unknown_columns or [])
    if unknown:
        problems.append(f"the rows have {len(unknown)} column{'s' if len(unknown) > 1 else ''} the model does not "
                        f"know ({', '.join(map(repr, unknown[:4]))}); a server would refuse them")
    return {"columns": columns, "problems": problems, "unknown_columns": unknown}


def _format(ref: Prepared, v: float) -> str:
    if ref.role == "datetime":
        import pandas as pd

        return f"{pd.Timestamp(v * 86_400, unit='s'):%Y-%m-%d}"
    return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.4g}"
