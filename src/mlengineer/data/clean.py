"""The CleaningPlan: steps fitted on training rows only, saved as JSON, and applied by one code path.

Training, batch prediction, the server and Spark scoring all call ``CleaningPlan.apply``; a step that
only makes sense on labelled rows (dropping rows without a target) runs only with ``training=True``.
Each step records what it changed and in how many rows, so the plan can be shown to a user.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from ..errors import DataError, SchemaError
from .schema import ColumnRole, Schema, category_key, parse_datetime

__all__ = ["CleaningPlan", "Conform", "DropMissingTarget", "SelectColumns", "fit_cleaning_plan"]

_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}


class Step(BaseModel):
    """A cleaning step. ``summary`` says in words what it did to the training rows."""

    kind: str
    summary: str = ""
    rows_changed: int = 0
    training_only: bool = False

    def apply(self, df: pd.DataFrame) -> pd.DataFrame:
        raise NotImplementedError


class DropMissingTarget(Step):
    """Drop the rows whose target is missing: they cannot teach anything."""

    kind: Literal["drop_missing_target"] = "drop_missing_target"
    target: str
    training_only: bool = True

    def apply(self, df: pd.DataFrame) -> pd.DataFrame:
        if self.target not in df.columns:
            return df
        return df.loc[df[self.target].notna()]


class SelectColumns(Step):
    """Keep only the feature columns (and the target when present), dropping the rest with a reason each."""

    kind: Literal["select_columns"] = "select_columns"
    keep: list[str]
    dropped: dict[str, str] = Field(default_factory=dict)
    target: str | None = None

    def apply(self, df: pd.DataFrame) -> pd.DataFrame:
        cols = list(self.keep)
        if self.target is not None and self.target in df.columns:
            cols.append(self.target)
        return df[cols]


class Conform(Step):
    """Give every feature column the type of its role: numbers as floats, categories as canonical strings,
    booleans as 0/1, dates parsed. Values that cannot be read as the role's type are an error at prediction
    time (naming the column) and counted at training time."""

    kind: Literal["conform"] = "conform"
    roles: dict[str, str]
    datetime_formats: dict[str, str | None] = Field(default_factory=dict)

    def apply(self, df: pd.DataFrame, *, strict: bool = False) -> pd.DataFrame:
        out = {}
        for name, role in self.roles.items():
            out[name] = conform_column(df[name], role, self.datetime_formats.get(name), name=name, strict=strict)
        rest = [c for c in df.columns if c not in self.roles]
        frame = pd.DataFrame(out, index=df.index)
        if rest:
            frame = pd.concat([frame, df[rest]], axis=1)
        return frame


def conform_column(s: pd.Series, role: str, fmt: str | None = None, *, name: str = "", strict: bool = False) -> pd.Series:
    """One column in the canonical type of ``role``; with ``strict``, unreadable values raise SchemaError."""
    role = ColumnRole(role)
    if role == ColumnRole.numeric:
        if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            return s.astype(np.float64)
        text = s.astype(object).where(s.notna(), None)
        cleaned = pd.Series(text, index=s.index, dtype=object).map(
            lambda v: v.strip().replace(",", "") if isinstance(v, str) else v
        )
        num = pd.to_numeric(cleaned.replace("", None), errors="coerce")
        if strict:
            bad = num.isna() & s.notna() & (cleaned.astype(str) != "")
            if bad.any():
                raise SchemaError(f"Column {name!r} must hold numbers; got {s[bad].iloc[0]!r}.")
        return num.astype(np.float64)
    if role == ColumnRole.boolean:
        if pd.api.types.is_bool_dtype(s):
            return s.astype(np.float64)
        if pd.api.types.is_numeric_dtype(s):
            return s.astype(np.float64)
        def to_bool(v: Any) -> float:
            k = category_key(v)
            if k is None:
                return np.nan
            k = k.lower()
            if k in _TRUE:
                return 1.0
            if k in _FALSE:
                return 0.0
            if strict:
                raise SchemaError(f"Column {name!r} must hold true/false values; got {v!r}.")
            return np.nan
        return s.map(to_bool).astype(np.float64)
    if role == ColumnRole.datetime:
        parsed = parse_datetime(s, fmt)
        if strict:
            bad = parsed.isna() & s.notna()
            if bad.any():
                raise SchemaError(f"Column {name!r} must hold dates; got {s[bad].iloc[0]!r}.")
        return parsed
    if role == ColumnRole.categorical:
        return pd.Series([category_key(v) for v in s.to_numpy(dtype=object)], index=s.index, dtype=object)
    if role == ColumnRole.text:
        return pd.Series([None if (v is None or (isinstance(v, float) and np.isnan(v))) else str(v)
                          for v in s.to_numpy(dtype=object)], index=s.index, dtype=object)
    return s


_STEP_TYPES = DropMissingTarget | SelectColumns | Conform


class CleaningPlan(BaseModel):
    """An ordered list of fitted cleaning steps."""

    steps: list[Annotated[_STEP_TYPES, Field(discriminator="kind")]] = Field(default_factory=list)

    def apply(self, df: pd.DataFrame, *, training: bool = False, strict: bool | None = None) -> pd.DataFrame:
        """Clean ``df``. ``training`` also runs the training-only steps; ``strict`` (default: not training)
        turns values that do not fit a column's type into a SchemaError instead of a missing value."""
        strict = (not training) if strict is None else strict
        for step in self.steps:
            if step.training_only and not training:
                continue
            if isinstance(step, SelectColumns) and not training:
                missing = [c for c in step.keep if c not in df.columns]
                if missing:
                    raise SchemaError(
                        f"Column {missing[0]!r} is missing from the input"
                        f"{f' (and {len(missing) - 1} more)' if len(missing) > 1 else ''}: the model needs "
                        f"{', '.join(step.keep[:12])}{', ...' if len(step.keep) > 12 else ''}."
                    )
            df = step.apply(df, strict=strict) if isinstance(step, Conform) else step.apply(df)
        return df

    @property
    def feature_columns(self) -> list[str]:
        for step in self.steps:
            if isinstance(step, SelectColumns):
                return list(step.keep)
        return []

    def describe(self) -> list[dict[str, Any]]:
        return [{"step": s.kind, "summary": s.summary, "rows_changed": s.rows_changed} for s in self.steps]

    def to_json(self) -> str:
        return self.model_dump_json(indent=1)

    @classmethod
    def from_json(cls, text: str) -> CleaningPlan:
        return cls.model_validate_json(text)


def fit_cleaning_plan(
    df: pd.DataFrame,
    schema: Schema,
    *,
    drop: dict[str, str] | None = None,
    keep: list[str] | None = None,
) -> CleaningPlan:
    """Fit the plan on training rows. ``drop`` maps extra columns to drop to the reason (leakage, the
    user's --drop); ``keep`` names columns to keep as features whatever the audit says."""
    drop = dict(drop or {})
    keep = list(keep or [])
    target = schema.target
    for name in [*drop, *keep]:
        if name not in df.columns:
            raise DataError(f"--drop/--keep names the column {name!r}, which the data does not have.")
    if target is not None and target in keep:
        raise DataError(f"--keep names the target {target!r}: the target cannot also be a feature.")
    steps: list[Any] = []
    if target is not None:
        n_missing = int(df[target].isna().sum())
        steps.append(DropMissingTarget(
            target=target, rows_changed=n_missing,
            summary=f"dropped {n_missing} rows without a value for {target!r}" if n_missing else
            f"every row has a value for {target!r}",
        ))
    features: list[str] = []
    dropped: dict[str, str] = {}
    for col in schema.columns:
        if col.name == target:
            continue
        if col.name in drop and col.name not in keep:
            dropped[col.name] = drop[col.name]
        elif col.is_feature or col.name in keep:
            features.append(col.name)
        else:
            dropped[col.name] = f"{col.role.value}: {col.reason}"
    if not features:
        raise DataError(
            "No column is left to learn from: every column was dropped as an identifier, a constant or "
            "leakage. Use --keep COL or --column-role COL=ROLE to keep one."
        )
    steps.append(SelectColumns(
        keep=features, dropped=dropped, target=target,
        summary=f"kept {len(features)} feature columns; dropped {len(dropped)}"
        + (f" ({', '.join(f'{k}: {v}' for k, v in list(dropped.items())[:6])})" if dropped else ""),
    ))
    roles = {}
    for name in features:
        role = schema[name].role
        roles[name] = (role if role in (ColumnRole.numeric, ColumnRole.categorical, ColumnRole.boolean,
                                         ColumnRole.datetime, ColumnRole.text) else ColumnRole.categorical).value
    conform = Conform(roles=roles, datetime_formats={n: schema[n].datetime_format for n in features
                                                     if roles[n] == "datetime"})
    # count the values that conforming turns into missing ones, column by column
    lost = {}
    for name, role in roles.items():
        before = df[name].notna()
        after = conform_column(df[name], role, conform.datetime_formats.get(name)).notna()
        n = int((before & ~after).sum())
        if n:
            lost[name] = n
    conform.rows_changed = sum(lost.values())
    conform.summary = (
        "typed every feature column by its role"
        + (f"; values unreadable as their type became missing: {', '.join(f'{k} ({v})' for k, v in lost.items())}"
           if lost else "")
    )
    steps.append(conform)
    return CleaningPlan(steps=steps)
