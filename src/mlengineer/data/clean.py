"""The CleaningPlan: steps fitted on training rows only, saved as JSON, and applied by one code path.

Training, batch prediction, the server and Spark scoring all call ``CleaningPlan.apply``; a step that
only makes sense on labelled rows (dropping rows without a target) runs only with ``training=True``.
Each step records what it changed and in how many rows, so the plan can be shown to a user.

Steps, in order: drop rows without a target (a placeholder such as ``?`` counts as none), keep the feature
columns (dropping identifiers, constants, leaky columns and the user's ``--drop``, each with its reason;
``--keep`` wins), and give every feature the type of its role (placeholders such as ``NA`` in a column of
numbers read as missing; how each value is read is ``conform.py``'s). Plans saved before a field existed load
and apply as they did.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from ..errors import DataError, SchemaError
from .clock import TIME_OF_DAY
from .conform import bool_value, column_array, conform_column, conform_values
from .findings import Finding
from .schema import FEATURE_ROLES, ColumnRole, Schema

__all__ = ["CleaningPlan", "Conform", "DropMissingTarget", "SelectColumns", "bool_value", "check_columns", "column_array",
           "conform_column", "conform_values", "fit_cleaning_plan"]


class Step(BaseModel):
    """A cleaning step. ``summary`` says in words what it did to the training rows."""

    kind: str
    summary: str = ""
    rows_changed: int = 0
    training_only: bool = False
    #: per column, how many training rows the step changed (empty when it changed none, or works on rows)
    details: dict[str, int] = Field(default_factory=dict)

    def apply(self, df: pd.DataFrame) -> pd.DataFrame:
        raise NotImplementedError


def _token_mask(s: pd.Series, tokens: list[str]) -> np.ndarray:
    if isinstance(s.dtype, pd.StringDtype):  # vectorised for columns of text
        return s.str.strip().str.lower().isin(tokens).fillna(False).to_numpy(dtype=bool)
    text = s.astype(object).where(s.notna(), None)
    lowered = pd.Series(text, index=s.index, dtype=object).map(
        lambda v: v.strip().lower() if isinstance(v, str) else v
    )
    return lowered.isin(tokens).to_numpy()


class DropMissingTarget(Step):
    """Drop the rows whose target is missing: they cannot teach anything."""

    kind: Literal["drop_missing_target"] = "drop_missing_target"
    target: str
    training_only: bool = True
    #: placeholders (stripped, lower-cased) that mean "no target" in this target column, such as "?"
    tokens: list[str] = Field(default_factory=list)

    def apply(self, df: pd.DataFrame) -> pd.DataFrame:
        if self.target not in df.columns:
            return df
        keep = df[self.target].notna().to_numpy()
        if self.tokens:
            keep = keep & ~_token_mask(df[self.target], self.tokens)
        return df.loc[keep]


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
    time (naming the column) and counted at training time. Common missing-value tokens ("", "NA", "null",
    "?", ...) read as missing in number, boolean and date columns; in a categorical column they stay a
    category, since there they often mean "none"."""

    kind: Literal["conform"] = "conform"
    roles: dict[str, str]
    #: a date column's format; ``TIME_OF_DAY`` for a number column of times of day (08:30:00 read as 30600)
    datetime_formats: dict[str, str | None] = Field(default_factory=dict)
    #: a number column's few distinct texts that training read as missing ('unknown', 'n.a.'): read so again
    #: when predicting, where other text is an error (plans saved before have none)
    placeholders: dict[str, list[str]] = Field(default_factory=dict)

    def placeholders_of(self, name: str) -> frozenset[str]:
        return frozenset(self.placeholders.get(name, ()))

    def apply(self, df: pd.DataFrame, *, strict: bool = False) -> pd.DataFrame:
        out = {name: conform_column(df[name], role, self.datetime_formats.get(name), name=name, strict=strict,
                                    placeholders=self.placeholders_of(name))
               for name, role in self.roles.items()}
        frame = pd.DataFrame(out, index=df.index)
        rest = [c for c in df.columns if c not in self.roles]
        if rest:
            frame = pd.concat([frame, df[rest]], axis=1)
        return frame

    def apply_arrays(self, cols: dict[str, np.ndarray], *, strict: bool = False) -> dict[str, np.ndarray]:
        """The same conversion on a mapping of column name to array (the small-batch path)."""
        out = dict(cols)
        for name, role in self.roles.items():
            out[name] = conform_values(cols[name], role, self.datetime_formats.get(name), name=name, strict=strict,
                                       placeholders=self.placeholders_of(name))
        return out



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
                self._check_columns(df.columns, step.keep)
            df = step.apply(df, strict=strict) if isinstance(step, Conform) else step.apply(df)
        return df

    def apply_arrays(self, cols: dict[str, np.ndarray], *, strict: bool = True) -> dict[str, np.ndarray]:
        """Clean a small batch held as column arrays, as ``apply`` cleans a DataFrame at prediction time.

        Steps without an array path of their own go through a DataFrame, so every step works here."""
        for step in self.steps:
            if step.training_only:
                continue
            if isinstance(step, SelectColumns):
                self._check_columns(cols, step.keep)
                cols = {c: cols[c] for c in step.keep}
            elif isinstance(step, Conform):
                cols = step.apply_arrays(cols, strict=strict)
            else:
                frame = step.apply(pd.DataFrame(cols))
                cols = {c: frame[c].to_numpy() for c in frame.columns}
        return cols

    @staticmethod
    def _check_columns(available: Any, needed: list[str]) -> None:
        check_columns(available, needed)

    @property
    def feature_columns(self) -> list[str]:
        for step in self.steps:
            if isinstance(step, SelectColumns):
                return list(step.keep)
        return []

    def describe(self) -> list[dict[str, Any]]:
        """Each step in words, with the training rows it changed (in all and per column)."""
        return [{"step": s.kind, "summary": s.summary, "rows_changed": s.rows_changed, "details": dict(s.details)}
                for s in self.steps]

    @property
    def dropped_columns(self) -> dict[str, str]:
        """Columns left out of the features, each with the reason."""
        for step in self.steps:
            if isinstance(step, SelectColumns):
                return dict(step.dropped)
        return {}

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
    findings: list[Finding] | None = None,
) -> CleaningPlan:
    """Fit the plan on training rows. ``drop`` maps extra columns to drop to the reason (the user's --drop,
    the group column); ``keep`` names columns to keep as features whatever the audit says; ``findings``
    (the audit's) drop the columns it found leaking the target."""
    drop = dict(drop or {})
    keep = list(dict.fromkeys(keep or []))
    target = schema.target
    for name in [*drop, *keep]:
        if name not in df.columns:
            raise DataError(f"--drop/--keep names the column {name!r}, which the data does not have.")
    if target is not None and target in keep:
        raise DataError(f"--keep names the target {target!r}: the target cannot also be a feature.")
    for f in findings or []:
        if f.action == "drop_column" and f.column and f.column != target and f.column not in drop \
                and f.severity == "error":
            drop[f.column] = f"target leakage: {f.message}"
    steps: list[Any] = []
    if target is not None:
        y = df[target]
        tokens = sorted(TARGET_MISSING_TOKENS) if not pd.api.types.is_numeric_dtype(y) else []
        if tokens and not _token_mask(y, tokens).any():
            tokens = []
        n_missing = int(y.isna().sum() + (_token_mask(y, tokens).sum() if tokens else 0))
        steps.append(DropMissingTarget(
            target=target, rows_changed=n_missing, tokens=tokens,
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
        + (f" ({'; '.join(f'{k}: {_short(v)}' for k, v in list(dropped.items())[:6])}"
           f"{'; ...' if len(dropped) > 6 else ''})" if dropped else ""),
    ))
    steps.append(_fit_conform(df, schema, features))
    return CleaningPlan(steps=steps)


def _fit_conform(df: pd.DataFrame, schema: Schema, features: list[str]) -> Conform:
    """The step that types each feature by its role, with what it turns into missing values on ``df``."""
    roles = {n: (schema[n].role if schema[n].role in FEATURE_ROLES else ColumnRole.categorical).value
             for n in features}
    conform = Conform(roles=roles, datetime_formats={n: schema[n].datetime_format for n in features
                                                     if roles[n] == "datetime" or (roles[n] == "numeric" and
                                                     schema[n].datetime_format == TIME_OF_DAY)})
    # count the values that conforming turns into missing ones (placeholders among them), column by column
    lost = {}
    for name, role_name in roles.items():
        s = df[name]
        read = conform_column(s, role_name, conform.datetime_formats.get(name))
        n = int((s.notna() & read.isna()).sum())
        if n:
            lost[name] = n
        if n and role_name == "numeric" and not pd.api.types.is_numeric_dtype(s):  # its few texts read as missing
            texts = pd.unique(s[s.notna() & read.isna()].map(lambda v: str(v).strip()))
            if len(texts) <= MAX_PLACEHOLDERS:
                conform.placeholders[name] = sorted(str(t) for t in texts)
    conform.rows_changed = sum(lost.values())
    conform.details = lost
    conform.summary = (
        "typed every feature column by its role"
        + (f"; values unreadable as their type became missing: {', '.join(f'{k} ({v})' for k, v in lost.items())}"
           if lost else "")
    )
    return conform


#: a number column with more distinct texts than this read as missing in training keeps none as placeholders
MAX_PLACEHOLDERS = 20
#: what stands for "no target" in a column of labels, besides an empty cell
TARGET_MISSING_TOKENS = frozenset({"?", ""})


def _short(reason: str, limit: int = 60) -> str:
    return reason if len(reason) <= limit else reason[: limit - 3].rstrip() + "..."


def check_columns(available: Any, needed: list[str]) -> None:
    """The one-line SchemaError naming the first of the columns ``needed`` that ``available`` lacks, and a name of
    ``available`` that differs from one of them only in case or surrounding spaces; nothing where none lacks."""
    missing = [c for c in needed if c not in available]
    if missing:
        # a name the rows spell in another case or with spaces around it is named, never read in its place
        near = {c.strip().casefold(): c for c in available if isinstance(c, str) and c not in needed}
        hints = [(c, near[c.strip().casefold()]) for c in missing if c.strip().casefold() in near]
        hint = (f" (the rows have {hints[0][1]!r}: did you mean {hints[0][0]!r}? rename "
                f"{'it' if len(hints) == 1 else f'it and {len(hints) - 1} more alike'} to the model's name)"
                if hints else "")
        raise SchemaError(
            f"Column {missing[0]!r} is missing from the input"
            f"{f' (and {len(missing) - 1} more)' if len(missing) > 1 else ''}{hint}: the model needs "
            f"{', '.join(needed[:12])}{', ...' if len(needed) > 12 else ''}."
        )
